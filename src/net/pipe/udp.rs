//! UDP pipes: one socket, read as `reader.rs` says, and `send_to` anywhere.
//!
//! In P2PD a UDP "client" (UDP_CON) is not OS-connected: its destination is only the
//! default target of `send`, and datagrams from anyone are received. Here the socket is
//! OS-connected to the destination while the pipe talks only to it, because an unconnected
//! socket costs the kernel a route lookup for every datagram sent and received (on loopback
//! here, a third of the throughput). The moment the pipe shows interest in anyone else, by
//! sending elsewhere or subscribing to another peer, or when asked ([`Pipe::hear_all`],
//! `PipeOptions::udp_hear_all`), the socket is disconnected, keeping its port, and hears
//! every sender from then on, as in P2PD.
//!
//! ICMP errors surfacing on the socket (refused, reset) concern one earlier datagram, so
//! they never end the pipe, and a send that meets one is retried once.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
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
    /// True while the socket is OS-connected to the pipe's destination.
    connected: AtomicBool,
}

/// Bind `local` and start reading.
pub(super) fn open(
    local: SocketAddr,
    dest: Option<SocketAddr>,
    opts: PipeOptions,
    observers: Arc<Observers>,
    subscribe_all: bool,
) -> Result<Pipe, Error> {
    let (socket, connected) = match dest {
        Some(dest) if !opts.udp_hear_all => socket::udp_connected(local, dest)?,
        _ => (socket::udp(local)?, false),
    };
    let socket = Arc::new(socket);
    // Taken before connecting would narrow a wildcard to one source address: a
    // disconnect widens it again.
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
            connected: AtomicBool::new(connected),
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
        // An explicit address on a connected socket would cost the route lookup that
        // connecting saves.
        let target = if pipe.inner.dest == Some(peer) && self.connected.load(Ordering::SeqCst) {
            None
        } else {
            self.hear_all(&socket);
            Some(peer)
        };
        // Usually the socket has room: send at once, without arming a timer.
        match send_now(socket.get_ref(), data, target) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(io_error(e)),
        }
        let timeout = pipe.inner.opts.send_timeout;
        match tokio::time::timeout(timeout, send_when_writable(&socket, data, target)).await {
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

    /// Stop filtering on the destination, if the socket was connected to it.
    pub(super) fn widen(&self) {
        let socket = lock(&self.socket).clone();
        if let Some(socket) = socket {
            self.hear_all(&socket);
        }
    }

    fn hear_all(&self, socket: &AsyncFd<UdpSocket>) {
        // A failed disconnect leaves the socket connected; sends with an explicit address
        // still work, so keep the flag to try again next time.
        if self.connected.swap(false, Ordering::SeqCst)
            && socket::disconnect(socket.get_ref()).is_err()
        {
            self.connected.store(true, Ordering::SeqCst);
        }
    }

    /// Whether the socket still hears only the destination.
    pub(super) fn is_connected(&self) -> bool {
        self.connected.load(Ordering::SeqCst)
    }
}

/// One non-blocking send to `target`, or to the connected peer for `None`. An ICMP error
/// left on the socket by an earlier datagram fails the next send without sending it: that
/// send is retried once.
fn send_now(socket: &UdpSocket, data: &[u8], target: Option<SocketAddr>) -> io::Result<()> {
    let once = || match target {
        Some(peer) => socket.send_to(data, peer),
        None => socket.send(data),
    };
    match once() {
        Err(e) if reader::is_transient(&e) => once().map(drop),
        sent => sent.map(drop),
    }
}

/// Send once the socket has buffer space. The socket is registered for reading only, so
/// this waits on a duplicate of it registered for writing, just for as long as it takes.
async fn send_when_writable(
    socket: &AsyncFd<UdpSocket>,
    data: &[u8],
    target: Option<SocketAddr>,
) -> io::Result<()> {
    let writer = socket::readiness(socket.get_ref().try_clone()?, Interest::WRITABLE)?;
    loop {
        let mut ready = writer.writable().await?;
        if let Ok(sent) = ready.try_io(|w| send_now(w.get_ref(), data, target)) {
            return sent;
        }
    }
}
