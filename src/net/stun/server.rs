//! The built-in STUN server's sockets and tasks: UDP and TCP on up to four addresses
//! (2 IPs x 2 ports, RFC 5780 §4 / RFC 3489 §8), each request answered as `respond` decides.
//! The TCP side, with its defences against hostile peers, is `tcp_server.rs`.
//! Shaped like mini-redis `server::run`: `ServerSockets::bind` then `run_until(shutdown)`, so
//! tests bind port 0; `StunServer` wraps that in a spawned task that closes on `close` or drop.

use super::framing::MAX_REQUEST_LEN;
use super::respond::{ServerConfig, Transport, respond};
use super::tcp_server::{Table, serve_tcp};
use crate::net::icmp::is_transient;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinSet;

/// How many times to retry when port 0 was asked for and a chosen port was taken on the
/// other IP.
const PORT_PICK_ATTEMPTS: usize = 32;

/// Bound, not yet serving. Dropping it closes everything.
#[derive(Debug)]
pub struct ServerSockets {
    config: ServerConfig,
    udp: Vec<UdpSocket>,
    tcp: Vec<TcpListener>,
}

impl ServerSockets {
    /// Binds UDP and TCP on every address of `primary`/`alternate` (see `ServerConfig`). Port 0
    /// in either picks a port free on both IPs. Must run inside a tokio runtime.
    pub fn bind(primary: SocketAddr, alternate: Option<SocketAddr>) -> io::Result<ServerSockets> {
        Self::bind_config(ServerConfig::new(primary, alternate))
    }

    /// `bind` with a full configuration (SOFTWARE, TCP timeout and connection cap).
    pub fn bind_config(config: ServerConfig) -> io::Result<ServerSockets> {
        if let Some(a) = config.alternate {
            let p = config.primary;
            let same_port = p.port() == a.port() && p.port() != 0;
            if p.ip() == a.ip() || same_port || p.is_ipv4() != a.is_ipv4() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "STUN alternate {a} must differ from primary {p} in IP and port, same family"
                    ),
                ));
            }
        }
        let wants_pick =
            config.primary.port() == 0 || config.alternate.is_some_and(|a| a.port() == 0);
        let mut last_err = None;
        for _ in 0..PORT_PICK_ATTEMPTS {
            match Self::try_bind(&config) {
                Ok(s) => return Ok(s),
                Err(e) if wants_pick && e.kind() == io::ErrorKind::AddrInUse => last_err = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last_err.unwrap_or_else(|| io::Error::from(io::ErrorKind::AddrInUse)))
    }

    /// One attempt: ports chosen by binding the primary IP first, then reused on the other IP.
    fn try_bind(config: &ServerConfig) -> io::Result<ServerSockets> {
        let bind_udp = |addr: SocketAddr| -> io::Result<UdpSocket> {
            let s = std::net::UdpSocket::bind(addr)?;
            s.set_nonblocking(true)?;
            UdpSocket::from_std(s)
        };
        let primary = bind_udp(config.primary)?;
        let p = primary.local_addr()?;
        let mut resolved = ServerConfig {
            primary: p,
            ..config.clone()
        };
        let mut udp = vec![primary];
        if let Some(a) = config.alternate {
            let second = bind_udp(SocketAddr::new(p.ip(), a.port()))?;
            let alt_port = second.local_addr()?.port();
            resolved.alternate = Some(SocketAddr::new(a.ip(), alt_port));
            udp.push(second);
            udp.push(bind_udp(SocketAddr::new(a.ip(), p.port()))?);
            udp.push(bind_udp(SocketAddr::new(a.ip(), alt_port))?);
        }
        let tcp = resolved
            .local_addrs()
            .into_iter()
            .map(|addr| {
                let l = std::net::TcpListener::bind(addr)?;
                l.set_nonblocking(true)?;
                TcpListener::from_std(l)
            })
            .collect::<io::Result<Vec<_>>>()?;
        Ok(ServerSockets {
            config: resolved,
            udp,
            tcp,
        })
    }

    /// Addresses served, ports resolved: one, or four in `ServerConfig` order.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.config.local_addrs()
    }

    pub fn config(&self) -> &ServerConfig {
        &self.config
    }
}

/// Serves until `shutdown` completes, then closes every socket before returning.
pub async fn run_until<F: Future>(sockets: ServerSockets, shutdown: F) {
    let table = Table::new(sockets.config.tcp_max_connections);
    serve(sockets, table, shutdown).await;
}

async fn serve<F: Future>(sockets: ServerSockets, table: Table, shutdown: F) {
    let ServerSockets { config, udp, tcp } = sockets;
    let config = Arc::new(config);
    let udp: Arc<Vec<UdpSocket>> = Arc::new(udp);
    let mut tasks = JoinSet::new();
    for index in 0..udp.len() {
        tasks.spawn(serve_udp(Arc::clone(&udp), index, Arc::clone(&config)));
    }
    drop(udp);
    for listener in tcp {
        tasks.spawn(serve_tcp(listener, Arc::clone(&config), table.clone()));
    }
    shutdown.await;
    // Aborting and awaiting every task drops the last socket handles: ports are free on return.
    tasks.shutdown().await;
}

/// Receive loop of one UDP socket; the reply may leave from a sibling socket (change request).
async fn serve_udp(sockets: Arc<Vec<UdpSocket>>, index: usize, config: Arc<ServerConfig>) {
    let Some(socket) = sockets.get(index) else {
        return;
    };
    // Bound addresses never change: asked once, not per reply.
    let Ok(addrs) = sockets
        .iter()
        .map(UdpSocket::local_addr)
        .collect::<io::Result<Vec<_>>>()
    else {
        return;
    };
    let Some(&local) = addrs.get(index) else {
        return;
    };
    let mut buf = vec![0u8; MAX_REQUEST_LEN];
    loop {
        let (n, from) = match socket.recv_from(&mut buf).await {
            Ok(r) => r,
            // ICMP errors from earlier replies, or a signal: keep serving.
            Err(e) if is_transient(&e) => continue,
            Err(_) => return,
        };
        let Some(reply) = respond(
            buf.get(..n).unwrap_or(&[]),
            from,
            local,
            &config,
            Transport::Udp,
        ) else {
            continue;
        };
        let sender = addrs
            .iter()
            .position(|a| *a == reply.from)
            .and_then(|i| sockets.get(i));
        if let Some(sender) = sender {
            // A failed send (unreachable client) concerns that client only.
            let _ = sender.send_to(&reply.bytes, reply.to).await;
        }
    }
}

/// A running server. `close` (or dropping it) stops it.
#[derive(Debug)]
pub struct StunServer {
    addrs: Vec<SocketAddr>,
    connections: Table,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl StunServer {
    /// Binds (see `ServerSockets::bind`; port 0 picks free ports) and starts serving on a
    /// spawned task.
    pub async fn start(
        primary: SocketAddr,
        alternate: Option<SocketAddr>,
    ) -> io::Result<StunServer> {
        Self::start_config(ServerConfig::new(primary, alternate)).await
    }

    pub async fn start_config(config: ServerConfig) -> io::Result<StunServer> {
        let sockets = ServerSockets::bind_config(config)?;
        let addrs = sockets.local_addrs();
        let connections = Table::new(sockets.config.tcp_max_connections);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(serve(sockets, connections.clone(), async move {
            // A dropped sender also means stop.
            let _ = rx.await;
        }));
        Ok(StunServer {
            addrs,
            connections,
            shutdown: Some(tx),
            task: Some(task),
        })
    }

    /// Addresses served: `[primary]`, or `[primary, primary IP + alt port, alt IP + primary
    /// port, alternate]`.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// TCP connections open right now, across every address.
    pub fn tcp_connections(&self) -> usize {
        self.connections.len()
    }

    /// Stops serving; every port is free when this returns. Calling it again does nothing.
    pub async fn close(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    pub fn is_closed(&self) -> bool {
        self.task.is_none()
    }
}

impl Drop for StunServer {
    /// Without an `.await` the best a drop can do is signal and abort: the runtime releases the
    /// sockets as soon as it next polls the task. Use `close` when the ports must be free now.
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
