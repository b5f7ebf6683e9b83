//! Bound sockets for pipes, made with socket2 because tokio cannot set every option we need
//! before `bind` (rust-stack-notes §5(g)).
//!
//! - TCP sockets get SO_REUSEADDR, so a port freed by `close()` can be bound again at once
//!   even while old connections sit in TIME_WAIT. UDP sockets do not: on Linux two UDP
//!   sockets with SO_REUSEADDR may share a port and silently split its traffic.
//! - IPv6 sockets are IPv6-only, so `[::]:P` and `0.0.0.0:P` can be two separate pipes, as
//!   routes are per family.

use std::io;
use std::net::{SocketAddr, UdpSocket};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::net::{TcpListener, TcpSocket};

use super::error::Error;

/// Queue of connections the kernel completes before `accept`.
const LISTEN_BACKLOG: i32 = 1024;

fn bound(local: SocketAddr, ty: Type, protocol: Protocol) -> Result<Socket, Error> {
    bound_with(local, ty, protocol, |_| Ok(()))
}

fn bound_with(
    local: SocketAddr,
    ty: Type,
    protocol: Protocol,
    before_bind: impl FnOnce(&Socket) -> std::io::Result<()>,
) -> Result<Socket, Error> {
    let io = |op, source| Error::Io {
        op,
        addr: local,
        source,
    };
    let socket = Socket::new(Domain::for_address(local), ty, Some(protocol))
        .map_err(|e| io("create socket for", e))?;
    before_bind(&socket).map_err(|e| io("set IP_BIND_ADDRESS_NO_PORT on", e))?;
    if protocol == Protocol::TCP {
        socket
            .set_reuse_address(true)
            .map_err(|e| io("set SO_REUSEADDR on", e))?;
    }
    if local.is_ipv6() {
        socket
            .set_only_v6(true)
            .map_err(|e| io("set IPV6_V6ONLY on", e))?;
    }
    socket
        .set_nonblocking(true)
        .map_err(|e| io("set non-blocking on", e))?;
    socket
        .bind(&SockAddr::from(local))
        .map_err(|e| Error::bind(local, e))?;
    Ok(socket)
}

/// A TCP socket bound to `local`, ready to connect.
///
/// With port 0 the port is picked at `connect` (IP_BIND_ADDRESS_NO_PORT), as for a socket
/// that connects without binding: `bind` would pick one by scanning every port in use,
/// which made opening 10,000 pipes take seconds, and could not share a port between
/// connections to different destinations.
pub(super) fn tcp_client(local: SocketAddr) -> Result<TcpSocket, Error> {
    let socket = bound_with(local, Type::STREAM, Protocol::TCP, |s| {
        if local.port() != 0 {
            return Ok(());
        }
        let on: libc::c_int = 1;
        // SAFETY: a valid socket descriptor and a c_int option value of the right size.
        let rc = unsafe {
            libc::setsockopt(
                std::os::fd::AsRawFd::as_raw_fd(s),
                libc::IPPROTO_IP,
                libc::IP_BIND_ADDRESS_NO_PORT,
                (&on as *const libc::c_int).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    })?;
    Ok(TcpSocket::from_std_stream(socket.into()))
}

/// A TCP socket listening on `local`. Must run inside the tokio runtime.
pub(super) fn tcp_listener(local: SocketAddr) -> Result<TcpListener, Error> {
    let socket = bound(local, Type::STREAM, Protocol::TCP)?;
    socket
        .listen(LISTEN_BACKLOG)
        .map_err(|e| Error::bind(local, e))?;
    TcpListener::from_std(socket.into()).map_err(|source| Error::Io {
        op: "register listener",
        addr: local,
        source,
    })
}

/// A UDP socket bound to `local`, registered with the reactor for reading only. Must run
/// inside the tokio runtime.
///
/// Not tokio's `UdpSocket`, which also registers for writability: the kernel then signals
/// write space after every datagram sent, waking the reactor thread once per `send` for
/// nothing. Sends go straight to the socket instead; the rare send that finds the buffer
/// full waits on its own registration (see `udp.rs`).
pub(super) fn udp(local: SocketAddr) -> Result<AsyncFd<UdpSocket>, Error> {
    let socket: UdpSocket = bound(local, Type::DGRAM, Protocol::UDP)?.into();
    readiness(socket, Interest::READABLE).map_err(|source| Error::Io {
        op: "register UDP socket",
        addr: local,
        source,
    })
}

/// Register `socket` (non-blocking already) with the reactor for `interest`.
pub(super) fn readiness(socket: UdpSocket, interest: Interest) -> io::Result<AsyncFd<UdpSocket>> {
    // SAFETY: the `AsyncFd` owns the socket, so its descriptor stays open and names the
    // same socket until the `AsyncFd` is dropped.
    unsafe { AsyncFd::register_with_interest(socket, interest) }.map_err(io::Error::from)
}
