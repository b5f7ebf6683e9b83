//! The STUN server's TCP side (RFC 5389 §7.2.2): accept, read framed requests, answer on
//! the same connection. Thin on purpose: what to make of the first bytes is
//! `framing::check_prefix`, which connection to close when too many are open is
//! `Connections`, the reply is `respond`.
//!
//! Hostile peers cost little: bytes that cannot start a STUN request close the connection
//! as soon as they arrive, no body is read before its header passed (none above
//! `MAX_REQUEST_LEN`, and none before all of it has arrived), a connection waits at most
//! `tcp_timeout` for a request to start and as long again for it to finish, and past
//! `tcp_max_connections` the connection idle longest is closed to make room.

use super::connections::{ConnectionId, Connections};
use super::framing::read_header;
use super::packet::HEADER_LEN;
use super::respond::{ServerConfig, Transport, respond};
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinSet;

/// Every open connection of one server, across its listeners. A connection's entry holds
/// the sender of its close signal: dropping the entry closes it.
#[derive(Clone, Debug)]
pub(super) struct Table(Arc<Mutex<Connections<oneshot::Sender<()>>>>);

impl Table {
    pub(super) fn new(cap: usize) -> Table {
        Table(Arc::new(Mutex::new(Connections::new(cap))))
    }

    /// Nothing is awaited while the lock is held, so the std mutex is the right one; a
    /// panic elsewhere cannot leave the table half-updated, so poisoning is ignored.
    fn lock(&self) -> MutexGuard<'_, Connections<oneshot::Sender<()>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn len(&self) -> usize {
        self.lock().len()
    }
}

/// The next request: its header as `framing` reads it, then its body, which is read only
/// once all of it is in the kernel's buffer. A peer that stops half way through a body
/// (the cheapest attack there is) then costs the kernel's memory, not ours: this process
/// holds 20 header bytes for it, not a 2 KiB buffer.
async fn next_request(stream: &mut TcpStream, timeout: Duration) -> io::Result<Vec<u8>> {
    let header = read_header(stream, timeout, timeout).await?;
    let body = header.len - HEADER_LEN;
    tokio::time::timeout_at(header.deadline, buffered(stream, body))
        .await
        .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
    let mut message = header.bytes.to_vec();
    message.resize(header.len, 0);
    stream.read_exact(&mut message[HEADER_LEN..]).await?;
    Ok(message)
}

/// Waits until `bytes` bytes can be read from `stream` without waiting, or the peer ended
/// its side (an error then: the message can never be complete).
async fn buffered(stream: &TcpStream, bytes: usize) -> io::Result<()> {
    if bytes == 0 {
        return Ok(());
    }
    loop {
        let ready = stream.ready(Interest::READABLE).await?;
        // Returning WouldBlock clears the readiness, so the next wait lasts until more
        // bytes (or the end) arrive, instead of spinning on what is already there.
        let enough = stream.try_io(Interest::READABLE, || {
            if unread(stream)? >= bytes {
                Ok(true)
            } else if ready.is_read_closed() {
                Ok(false)
            } else {
                Err(io::ErrorKind::WouldBlock.into())
            }
        });
        match enough {
            Ok(true) => return Ok(()),
            Ok(false) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Bytes waiting in the socket's receive buffer (`FIONREAD`).
fn unread(stream: &TcpStream) -> io::Result<usize> {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one c_int through the pointer, on a socket we own.
    let rc = unsafe { libc::ioctl(stream.as_raw_fd(), libc::FIONREAD, &mut n) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(usize::try_from(n).unwrap_or(0))
}

/// A connection's place in the table, given back when its task ends however it ends
/// (closed, evicted, aborted by the server's shutdown).
struct Seat {
    table: Table,
    id: ConnectionId,
}

impl Drop for Seat {
    fn drop(&mut self) {
        self.table.lock().remove(self.id);
    }
}

/// Accept loop of one listener. Connections live in a `JoinSet` owned by this task, so
/// aborting the task closes them too.
pub(super) async fn serve_tcp(listener: TcpListener, config: Arc<ServerConfig>, table: Table) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, from)) => {
                    let (close, closed) = oneshot::channel();
                    let (id, evicted) = table.lock().admit(Instant::now(), close);
                    // Dropping the evicted sender is what closes that connection.
                    drop(evicted);
                    let seat = Seat { table: table.clone(), id };
                    connections.spawn(serve_connection(stream, from, Arc::clone(&config), seat, closed));
                }
                // Out of file descriptors and the like: wait a little instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn serve_connection(
    mut stream: TcpStream,
    from: SocketAddr,
    config: Arc<ServerConfig>,
    seat: Seat,
    closed: oneshot::Receiver<()>,
) {
    tokio::select! {
        // Evicted: the table dropped our sender.
        _ = closed => {}
        () = answer_requests(&mut stream, from, &config, &seat) => {}
    }
}

/// Answers requests until the peer closes, stalls past the timeout, or sends something
/// that is not STUN.
async fn answer_requests(
    stream: &mut TcpStream,
    from: SocketAddr,
    config: &ServerConfig,
    seat: &Seat,
) {
    let Ok(local) = stream.local_addr() else {
        return;
    };
    let timeout = config.tcp_timeout;
    loop {
        let Ok(message) = next_request(stream, timeout).await else {
            return;
        };
        seat.table.lock().touch(seat.id, Instant::now());
        let Some(reply) = respond(&message, from, local, config, Transport::Tcp) else {
            continue;
        };
        // A peer that never reads would otherwise hold the write forever.
        match tokio::time::timeout(timeout, stream.write_all(&reply.bytes)).await {
            Ok(Ok(())) => {}
            _ => return,
        }
    }
}
