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
    let io = |op, source| Error::Io {
        op,
        addr: local,
        source,
    };
    let socket = Socket::new(Domain::for_address(local), ty, Some(protocol))
        .map_err(|e| io("create socket for", e))?;
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
pub(super) fn tcp_client(local: SocketAddr) -> Result<TcpSocket, Error> {
    let socket = bound(local, Type::STREAM, Protocol::TCP)?;
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

/// A UDP socket bound to `local` and OS-connected to `dest`, so the kernel reuses one route
/// per datagram instead of looking it up, and replies skip the input route lookup. Returns
/// `None` in place of the socket when it could only bind a kernel-chosen port: see
/// [`disconnect`], which must keep the port, so connecting is then not worth the risk.
///
/// For a `local` port of 0 the port is picked here, at random from the kernel's ephemeral
/// range, because the kernel forgets a port it chose itself when the socket disconnects.
pub(super) fn udp_connected(
    local: SocketAddr,
    dest: SocketAddr,
) -> Result<(AsyncFd<UdpSocket>, bool), Error> {
    let socket = match local.port() {
        0 => match bind_ephemeral(local) {
            Some(socket) => socket,
            None => return udp(local).map(|s| (s, false)),
        },
        _ => bound(local, Type::DGRAM, Protocol::UDP)?,
    };
    let socket: UdpSocket = socket.into();
    let connected = socket.connect(dest).is_ok();
    let fd = readiness(socket, Interest::READABLE).map_err(|source| Error::Io {
        op: "register UDP socket",
        addr: local,
        source,
    })?;
    Ok((fd, connected))
}

/// Attempts at a random free port before leaving the choice to the kernel.
const EPHEMERAL_TRIES: usize = 32;

fn bind_ephemeral(local: SocketAddr) -> Option<Socket> {
    let (low, high) = ephemeral_range();
    for _ in 0..EPHEMERAL_TRIES {
        let mut seed = [0u8; 2];
        getrandom::fill(&mut seed).ok()?;
        let span = u32::from(high - low) + 1;
        let port = low + u16::try_from(u32::from(u16::from_ne_bytes(seed)) % span).ok()?;
        match bound(
            SocketAddr::new(local.ip(), port),
            Type::DGRAM,
            Protocol::UDP,
        ) {
            Ok(socket) => return Some(socket),
            Err(Error::AddrInUse { .. }) => continue,
            Err(_) => return None,
        }
    }
    None
}

/// The kernel's ephemeral port range (it applies to IPv6 too), or Linux's default.
fn ephemeral_range() -> (u16, u16) {
    let parse = |text: String| {
        let mut ports = text.split_whitespace().map(str::parse::<u16>);
        match (ports.next()?.ok()?, ports.next()?.ok()?) {
            (low, high) if 0 < low && low <= high => Some((low, high)),
            _ => None,
        }
    };
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(parse)
        .unwrap_or((32768, 60999))
}

/// Undo `connect` on a UDP socket (connect to AF_UNSPEC): it hears every sender again.
/// The socket keeps its port only because it was bound to an explicit one.
pub(super) fn disconnect(socket: &UdpSocket) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let unspec = libc::sockaddr {
        sa_family: libc::AF_UNSPEC as libc::sa_family_t,
        sa_data: [0; 14],
    };
    let len = libc::socklen_t::try_from(std::mem::size_of::<libc::sockaddr>())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: the descriptor is open for as long as `socket` is borrowed, and `connect`
    // reads only `len` bytes of `unspec` during the call.
    match unsafe { libc::connect(socket.as_raw_fd(), &unspec, len) } {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}
