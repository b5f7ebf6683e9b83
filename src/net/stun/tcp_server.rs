//! The STUN server's TCP side (RFC 5389 §7.2.2): accept, read framed requests, answer on
//! the same connection. Thin on purpose: what to make of the first bytes is
//! `framing::check_prefix`, which connection to close when too many are open is
//! `Connections`, the reply is `respond`.
//!
//! Hostile peers cost little: bytes that cannot start a STUN request close the connection
//! as soon as they arrive, no body is kept before its header passed (and none above
//! `MAX_REQUEST_LEN`), a connection waits at most `tcp_timeout` for a request to start and
//! as long again for it to finish, and past `tcp_max_connections` the connection idle
//! longest is closed to make room.

use super::connections::{ConnectionId, Connections};
use super::framing::read_request;
use super::respond::{ServerConfig, Transport, respond};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
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
        let Ok(message) = read_request(stream, timeout, timeout).await else {
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
