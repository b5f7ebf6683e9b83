//! Errors of the pipe layer. Each names the address or pipe involved, because a script
//! juggling several pipes needs to know which one failed. P2PD swallowed most of these
//! (`pipe_open` returned `None`, `send` returned 0; inventory §5.1, §9 item 8).

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use super::subscription::SubId;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Nothing listens at the destination (TCP RST).
    #[error("connection to {addr} refused")]
    Refused { addr: SocketAddr },
    /// No answer within the given time; raise `PipeOptions::connect_timeout` or
    /// `send_timeout` on slow paths.
    #[error("{op} {addr} timed out after {:.1} s", timeout.as_secs_f64())]
    TimedOut {
        op: &'static str,
        addr: SocketAddr,
        timeout: Duration,
    },
    /// Another socket holds this local address; pick port 0 or close the other pipe.
    #[error("address {addr} is already in use")]
    AddrInUse { addr: SocketAddr },
    /// The local IP is not one of this host's addresses.
    #[error("cannot bind {addr}: address not available on this host")]
    AddrNotAvailable { addr: SocketAddr },
    /// `close()` was called, or the peer ended the connection.
    #[error("pipe {pipe} is closed")]
    Closed { pipe: String },
    /// The connection broke while writing (reset by peer, broken pipe).
    #[error("pipe {pipe} broke: {source}")]
    Broken {
        pipe: String,
        #[source]
        source: io::Error,
    },
    /// `send` on a pipe without a default destination (a server); use `send_to`.
    #[error("pipe {pipe} has no destination; use send_to")]
    NoDestination { pipe: String },
    /// `send_to` a peer this TCP pipe is not connected to.
    #[error("pipe {pipe} has no connection to {peer}")]
    UnknownPeer { pipe: String, peer: SocketAddr },
    /// A v4 destination from a v6 local address or the reverse: use a route of the
    /// destination's family.
    #[error("destination {dest} and local address {local} are not the same address family")]
    FamilyMismatch { local: SocketAddr, dest: SocketAddr },
    #[error("invalid subscription regex {}: {}", crate::text::quoted(.pattern), crate::text::cut(.reason))]
    BadRegex { pattern: String, reason: String },
    #[error("no subscription {id} on pipe {pipe}")]
    NoSuchSubscription { id: SubId, pipe: String },
    /// `accept` on a pipe that is not a TCP server.
    #[error("pipe {pipe} is not a TCP server")]
    NotAServer { pipe: String },
    /// Any other socket error, with the operation and the address it concerned.
    #[error("{op} {addr} failed: {source}")]
    Io {
        op: &'static str,
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
}

impl Error {
    /// Classify a bind failure on `addr`.
    pub(crate) fn bind(addr: SocketAddr, source: io::Error) -> Error {
        match source.kind() {
            io::ErrorKind::AddrInUse => Error::AddrInUse { addr },
            io::ErrorKind::AddrNotAvailable => Error::AddrNotAvailable { addr },
            _ => Error::Io {
                op: "bind",
                addr,
                source,
            },
        }
    }
}
