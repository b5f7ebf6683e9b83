//! TCP connections: connecting a client, adopting an accepted stream (whose read half goes
//! to `reader.rs`, its write half to `outbox.rs`).
//!
//! TCP has no message boundaries: every successful read (up to [`READ_CHUNK`] bytes) is
//! delivered as one message, so a sender's one `send` may arrive as several messages or
//! several sends as one. Framing, if needed, belongs to the protocol above.
//! `TCP_NODELAY` is set, as asyncio does for P2PD, so small request/response exchanges are
//! not held back by Nagle's algorithm.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Weak};

use tokio::net::TcpStream;

use super::events::Observers;
use super::outbox::Writer;
use super::reader::{Reader, Source};
use super::{Error, Inner, Io, Kind, Pipe, PipeOptions, Proto, Spec, socket};

/// Largest single read, P2PD's `reader_limit` (64 KiB).
const READ_CHUNK: usize = 64 * 1024;

/// Connect from `local` to `dest` within `opts.connect_timeout`. The caller starts the
/// reader (`reader::spawn`) once the pipe's `Up` is out.
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
/// As with `connect`, the caller starts the reader after `Up`.
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
    let writer = Writer::start(write, spec.opts.send_timeout);
    Pipe::build(Spec {
        proto: Proto::Tcp,
        kind: spec.kind,
        local,
        dest: Some(spec.peer),
        opts: spec.opts,
        io: Io::Stream(writer),
        reader: Some(Reader::new(Source::Stream(read, spec.peer), READ_CHUNK)),
        observers: spec.observers,
        parent: spec.parent,
        subscribe_all: spec.subscribe_all,
        clients_subscribe_all: false,
    })
}
