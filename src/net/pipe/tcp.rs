//! TCP connections: connecting a client, adopting an accepted stream, the read loop and
//! the writer.
//!
//! TCP has no message boundaries: every successful read (up to [`READ_CHUNK`] bytes) is
//! delivered as one message, so a sender's one `send` may arrive as several messages or
//! several sends as one. Framing, if needed, belongs to the protocol above.
//! `TCP_NODELAY` is set, as asyncio does for P2PD, so small request/response exchanges are
//! not held back by Nagle's algorithm.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Weak};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::Mutex as AsyncMutex;

use super::events::Observers;
use super::inbound::take_read;
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
        observers: spec.observers,
        parent: spec.parent,
        subscribe_all: spec.subscribe_all,
        clients_subscribe_all: false,
    });
    let task = tokio::spawn(read_loop(Arc::downgrade(&pipe.inner), read, spec.peer));
    pipe.add_task(task);
    pipe
}

/// Read until EOF or error, then end the pipe. Holds the pipe only while handing a chunk
/// over, so dropping every handle stops it.
async fn read_loop(pipe: Weak<Inner>, mut read: OwnedReadHalf, peer: SocketAddr) {
    let mut buf = Vec::with_capacity(READ_CHUNK);
    loop {
        match read.read_buf(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let Some(inner) = pipe.upgrade() else { return };
        Pipe { inner }.on_message(peer, take_read(&mut buf)).await;
    }
    if let Some(inner) = pipe.upgrade() {
        Pipe { inner }.reader_finished();
    }
}

impl Writer {
    pub(super) async fn write(&self, pipe: &Pipe, data: &[u8]) -> Result<(), Error> {
        let mut half = self.half.lock().await;
        let Some(writer) = half.as_mut() else {
            return Err(pipe.closed_error());
        };
        let dest = pipe.inner.dest.unwrap_or(pipe.inner.local);
        let timeout = pipe.inner.opts.send_timeout;
        match tokio::time::timeout(timeout, writer.write_all(data)).await {
            Ok(Ok(())) => Ok(()),
            Err(_) => Err(Error::TimedOut {
                op: "send to",
                addr: dest,
                timeout,
            }),
            Ok(Err(source)) if is_broken(&source) => Err(Error::Broken {
                pipe: pipe.to_string(),
                source,
            }),
            Ok(Err(source)) => Err(Error::Io {
                op: "send to",
                addr: dest,
                source,
            }),
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
