//! TCP connections: connecting a client, adopting an accepted stream (whose read half goes
//! to `reader.rs`) and the writer.
//!
//! TCP has no message boundaries: every successful read (up to [`READ_CHUNK`] bytes) is
//! delivered as one message, so a sender's one `send` may arrive as several messages or
//! several sends as one. Framing, if needed, belongs to the protocol above.
//! `TCP_NODELAY` is set, as asyncio does for P2PD, so small request/response exchanges are
//! not held back by Nagle's algorithm.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Weak};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::Mutex as AsyncMutex;

use super::events::Observers;
use super::reader::{self, Reader, Source};
use super::{Error, Inner, Io, Kind, Pipe, PipeOptions, Proto, Spec, socket};

/// Largest single read, P2PD's `reader_limit` (64 KiB).
const READ_CHUNK: usize = 64 * 1024;

/// The write half of a connection; `None` once ended.
pub(super) struct Writer {
    half: AsyncMutex<Option<OwnedWriteHalf>>,
}

/// Connect from `local` to `dest` within `opts.connect_timeout` and start reading.
pub(super) async fn connect(
    local: SocketAddr,
    dest: SocketAddr,
    opts: PipeOptions,
    observers: Arc<Observers>,
    subscribe_all: bool,
) -> Result<Pipe, Error> {
    let socket = socket::tcp_client(local)?;
    let stream = match tokio::time::timeout(opts.connect_timeout, socket.connect(dest)).await {
        Err(_) => {
            return Err(Error::TimedOut {
                op: "connect to",
                addr: dest,
                timeout: opts.connect_timeout,
            });
        }
        Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => {
            return Err(Error::Refused { addr: dest });
        }
        Ok(Err(source)) => {
            return Err(Error::Io {
                op: "connect to",
                addr: dest,
                source,
            });
        }
        Ok(Ok(stream)) => stream,
    };
    let spec = StreamSpec {
        kind: Kind::Client,
        peer: dest,
        local,
        opts,
        observers,
        parent: Weak::new(),
        subscribe_all,
    };
    Ok(start(stream, spec))
}

/// Wrap a connection accepted by `server` in its own pipe sharing the server's observers.
pub(super) fn adopt(stream: TcpStream, peer: SocketAddr, server: &Pipe) -> Pipe {
    let spec = StreamSpec {
        kind: Kind::Accepted,
        peer,
        local: server.inner.local,
        opts: server.inner.opts.clone(),
        observers: server.inner.observers.clone(),
        parent: Arc::downgrade(&server.inner),
        subscribe_all: server.inner.clients_subscribe_all,
    };
    start(stream, spec)
}

struct StreamSpec {
    kind: Kind,
    peer: SocketAddr,
    /// Used only if the kernel cannot tell us the bound address.
    local: SocketAddr,
    opts: PipeOptions,
    observers: Arc<Observers>,
    parent: Weak<Inner>,
    subscribe_all: bool,
}

fn start(stream: TcpStream, spec: StreamSpec) -> Pipe {
    // Only a latency optimisation; the connection works without it.
    let _ = stream.set_nodelay(true);
    let local = stream.local_addr().unwrap_or(spec.local);
    let (read, write) = stream.into_split();
    let pipe = Pipe::build(Spec {
        proto: Proto::Tcp,
        kind: spec.kind,
        local,
        dest: Some(spec.peer),
        opts: spec.opts,
        io: Io::Stream(Writer {
            half: AsyncMutex::new(Some(write)),
        }),
        reader: Some(Reader::new(Source::Stream(read, spec.peer), READ_CHUNK)),
        observers: spec.observers,
        parent: spec.parent,
        subscribe_all: spec.subscribe_all,
        clients_subscribe_all: false,
    });
    reader::spawn(&pipe);
    pipe
}

impl Writer {
    pub(super) async fn write(&self, pipe: &Pipe, data: &[u8]) -> Result<(), Error> {
        let mut half = self.half.lock().await;
        let Some(writer) = half.as_mut() else {
            return Err(pipe.closed_error());
        };
        let dest = pipe.inner.dest.unwrap_or(pipe.inner.local);
        let failed = |source: io::Error| {
            if is_broken(&source) {
                Error::Broken {
                    pipe: pipe.to_string(),
                    source,
                }
            } else {
                Error::Io {
                    op: "send to",
                    addr: dest,
                    source,
                }
            }
        };
        // Usually the socket buffer has room: write without arming a timer.
        let mut rest = data;
        while !rest.is_empty() {
            match writer.try_write(rest) {
                // Zero is left to `write_all`, which reports it.
                Ok(0) => break,
                Ok(n) => rest = rest.get(n..).unwrap_or_default(),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(failed(e)),
            }
        }
        if rest.is_empty() {
            return Ok(());
        }
        let timeout = pipe.inner.opts.send_timeout;
        match tokio::time::timeout(timeout, writer.write_all(rest)).await {
            Ok(Ok(())) => Ok(()),
            Err(_) => Err(Error::TimedOut {
                op: "send to",
                addr: dest,
                timeout,
            }),
            Ok(Err(source)) => Err(failed(source)),
        }
    }

    /// Send FIN and drop the write half; the socket closes once the reader is gone too.
    pub(super) async fn shutdown(&self) {
        if let Some(mut writer) = self.half.lock().await.take() {
            let _ = writer.shutdown().await;
        }
    }
}

fn is_broken(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::NotConnected
    )
}
