//! UDP pipes: one socket, read as `reader.rs` says, and `send_to` anywhere.
//!
//! A UDP "client" is not OS-connected (P2PD's UDP_CON): its destination is only the default
//! target of `send`, and datagrams from anyone are received. ICMP errors surfacing on the
//! socket (refused, reset) concern one earlier datagram, so they never end the pipe.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, Weak};

use std::net::UdpSocket;

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use super::events::Observers;
use super::reader::{self, Reader, Source};
use super::{Error, Io, Kind, Pipe, PipeOptions, Proto, Spec, lock, socket};

/// Largest UDP payload.
const MAX_DATAGRAM: usize = 64 * 1024;

/// The socket, shared with the reader; `None` once closed.
pub(super) struct Sender {
    socket: Mutex<Option<Arc<AsyncFd<UdpSocket>>>>,
}

/// Bind `local` and start reading.
pub(super) fn open(
    local: SocketAddr,
    dest: Option<SocketAddr>,
    opts: PipeOptions,
    observers: Arc<Observers>,
    subscribe_all: bool,
) -> Result<Pipe, Error> {
    let socket = Arc::new(socket::udp(local)?);
    let bound = socket.get_ref().local_addr().unwrap_or(local);
    let pipe = Pipe::build(Spec {
        proto: Proto::Udp,
        kind: if dest.is_some() {
            Kind::Client
        } else {
            Kind::Server
        },
        local: bound,
        dest,
        opts,
        io: Io::Datagram(Sender {
            socket: Mutex::new(Some(socket.clone())),
        }),
        reader: Some(Reader::new(Source::Datagram(socket), MAX_DATAGRAM)),
        observers,
        parent: Weak::new(),
        subscribe_all,
        clients_subscribe_all: false,
    });
    reader::spawn(&pipe);
    Ok(pipe)
}

impl Sender {
    pub(super) async fn send_to(
        &self,
        pipe: &Pipe,
        data: &[u8],
        peer: SocketAddr,
    ) -> Result<(), Error> {
        let local = pipe.inner.local;
        if peer.is_ipv4() != local.is_ipv4() {
            return Err(Error::FamilyMismatch { local, dest: peer });
        }
        // Cloned out so the lock is not held across the send.
        let socket = lock(&self.socket).clone();
        let Some(socket) = socket else {
            return Err(pipe.closed_error());
        };
        let io_error = |source| Error::Io {
            op: "send to",
            addr: peer,
            source,
        };
        // Usually the socket has room: send at once, without arming a timer.
        match socket.get_ref().send_to(data, peer) {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(io_error(e)),
        }
        let timeout = pipe.inner.opts.send_timeout;
        match tokio::time::timeout(timeout, send_when_writable(&socket, data, peer)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(source)) => Err(io_error(source)),
            Err(_) => Err(Error::TimedOut {
                op: "send to",
                addr: peer,
                timeout,
            }),
        }
    }

    /// Drop our reference; with the reader's already dropped, the socket closes here.
    pub(super) fn close(&self) {
        lock(&self.socket).take();
    }
}

/// Send once the socket has buffer space. The socket is registered for reading only, so
/// this waits on a duplicate of it registered for writing, just for as long as it takes.
async fn send_when_writable(
    socket: &AsyncFd<UdpSocket>,
    data: &[u8],
    peer: SocketAddr,
) -> io::Result<()> {
    let writer = socket::readiness(socket.get_ref().try_clone()?, Interest::WRITABLE)?;
    loop {
        let mut ready = writer.writable().await?;
        if let Ok(sent) = ready.try_io(|w| w.get_ref().send_to(data, peer)) {
            return sent.map(|_| ());
        }
    }
}
