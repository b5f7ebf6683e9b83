//! Errors a UDP socket reports that are not about the socket: an ICMP "port unreachable"
//! or "reset" left behind by an earlier datagram to some peer, or a signal. Every UDP
//! receive loop (pipes, the STUN client and server) keeps going through them.

use std::io;

/// True for errors a UDP receive loop should skip rather than end on.
pub(crate) fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    )
}
