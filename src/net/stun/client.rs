//! The thin tokio driver for client transactions: it owns no decisions, only moves bytes and
//! time between a socket and `Transaction`s (RFC 5389 §7.2.1 over UDP, §7.2.2 over TCP).
//! `bindings` runs several transactions on one UDP socket at once (NAT probes share a socket and
//! are told apart by transaction id); `binding` is the single case; `lookup` is the
//! "what is my external address" convenience.

use super::framing::read_message;
use super::transaction::{RequestOptions, Response, Timing, Transaction};
use super::{Class, Repr};
use crate::net::icmp::is_transient;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream, UdpSocket};

/// Why a STUN exchange gave no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A socket operation failed; `addr` is the peer or local address involved.
    #[error("STUN {op} {addr}: {source}")]
    Io {
        op: &'static str,
        addr: SocketAddr,
        source: io::Error,
    },
    /// No accepted reply before the deadline. Check the server address, firewalls, and (for
    /// change requests) that the server really has an alternate address.
    #[error(
        "no STUN reply from {server} after {transmits} transmission(s) in {:.2} s",
        .elapsed.as_secs_f64()
    )]
    Timeout {
        server: SocketAddr,
        transmits: u32,
        elapsed: Duration,
    },
    /// The server answered with a Binding error response.
    #[error("STUN server {server} answered error {code}: {reason}")]
    ErrorResponse {
        server: SocketAddr,
        code: u16,
        reason: String,
    },
    /// A success response without MAPPED-ADDRESS or XOR-MAPPED-ADDRESS: the server is broken.
    #[error("STUN server {server} sent a success response without a mapped address")]
    NoMappedAddress { server: SocketAddr },
    /// The request could not be built, or (TCP) the stream carried a malformed message.
    #[error("STUN message for {server}: {source}")]
    Codec {
        server: SocketAddr,
        source: super::Error,
    },
}

/// A successful Binding exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingResponse {
    /// Our address as the server saw it (XOR-MAPPED-ADDRESS, else MAPPED-ADDRESS).
    pub mapped: SocketAddr,
    /// Where the reply actually came from.
    pub from: SocketAddr,
    /// Where the server says it answered from (RESPONSE-ORIGIN, else SOURCE-ADDRESS).
    pub response_origin: Option<SocketAddr>,
    /// The server's alternate address (OTHER-ADDRESS, else CHANGED-ADDRESS).
    pub other_address: Option<SocketAddr>,
    pub rtt: Duration,
    /// Our socket's local address.
    pub local: SocketAddr,
    /// The whole reply, for anything not summarised above.
    pub message: Repr,
}

fn io_err(op: &'static str, addr: SocketAddr) -> impl FnOnce(io::Error) -> Error {
    move |source| Error::Io { op, addr, source }
}

/// Turns a transaction's ending into the public result.
fn finish(
    server: SocketAddr,
    local: SocketAddr,
    outcome: Result<Response, super::TimedOut>,
) -> Result<BindingResponse, Error> {
    let r = outcome.map_err(|t| Error::Timeout {
        server,
        transmits: t.transmits,
        elapsed: t.elapsed,
    })?;
    if r.message.class == Class::ErrorResponse {
        let (code, reason) = r
            .message
            .error_code
            .clone()
            .map_or((0, String::new()), |e| (e.code, e.reason));
        return Err(Error::ErrorResponse {
            server,
            code,
            reason,
        });
    }
    let mapped = r
        .message
        .mapped()
        .ok_or(Error::NoMappedAddress { server })?;
    Ok(BindingResponse {
        mapped,
        from: r.from,
        response_origin: r.message.origin(),
        other_address: r.message.alternate(),
        rtt: r.rtt,
        local,
        message: r.message,
    })
}

/// Sends from `socket` every copy of `tx` that is due at `now`. A copy that fails to go
/// out is a lost copy: the transaction's retransmissions and deadline decide what follows.
pub(crate) async fn send_due(tx: &mut Transaction, socket: &UdpSocket, now: Instant) {
    tx.handle_timeout(now);
    while let Some(t) = tx.poll_transmit(now) {
        let _ = socket.send_to(&t.contents, t.destination).await;
    }
}

/// Runs one Binding transaction per `(server, options)` on `socket`, all at once, and returns
/// their results in the same order. Replies are matched by transaction id and source, so the
/// caller must not read from `socket` meanwhile. `rto` is the initial retransmission timeout,
/// `timeout` the deadline of each transaction.
pub async fn bindings(
    socket: &UdpSocket,
    requests: &[(SocketAddr, RequestOptions)],
    rto: Duration,
    timeout: Duration,
) -> Vec<Result<BindingResponse, Error>> {
    // Only reported back to the caller; an unnamed socket still works for sending.
    let local = socket
        .local_addr()
        .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)));
    let now = Instant::now();
    let mut slots: Vec<Result<Transaction, Error>> = requests
        .iter()
        .map(|(server, opts)| {
            Transaction::new(now, *server, opts.clone(), Timing::new(rto, timeout)).map_err(
                |source| Error::Codec {
                    server: *server,
                    source,
                },
            )
        })
        .collect();
    let mut buf = vec![0u8; 2048];
    loop {
        let now = Instant::now();
        let mut wake: Option<Instant> = None;
        for slot in slots.iter_mut() {
            let Ok(tx) = slot else { continue };
            tx.handle_timeout(now);
            let mut failed = None;
            while let Some(t) = tx.poll_transmit(now) {
                if let Err(e) = socket.send_to(&t.contents, t.destination).await {
                    // E.g. no route to this server: this request fails, the others go on.
                    failed = Some(io_err("send", t.destination)(e));
                    break;
                }
            }
            if let Some(e) = failed {
                *slot = Err(e);
                continue;
            }
            wake = match (wake, tx.poll_timeout()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        let Some(wake) = wake else {
            return slots
                .into_iter()
                .map(|slot| finish_slot(slot, local, None))
                .collect();
        };
        tokio::select! {
            r = socket.recv_from(&mut buf) => match r {
                Ok((n, from)) => {
                    let at = Instant::now();
                    let data = buf.get(..n).unwrap_or(&[]);
                    for tx in slots.iter_mut().filter_map(|s| s.as_mut().ok()) {
                        if tx.handle_datagram(at, from, data) {
                            break;
                        }
                    }
                }
                // ICMP errors surface here on some systems; they are not our reply.
                Err(e) if is_transient(&e) => {}
                Err(e) => {
                    return slots.into_iter().map(|slot| finish_slot(slot, local, Some(&e))).collect();
                }
            },
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(wake)) => {}
        }
    }
}

/// One slot's public result. `failure` is a receive error that ended the run early; it is
/// charged to the transactions still open.
fn finish_slot(
    slot: Result<Transaction, Error>,
    local: SocketAddr,
    failure: Option<&io::Error>,
) -> Result<BindingResponse, Error> {
    let tx = slot?;
    match (tx.outcome().cloned(), failure) {
        (Some(o), _) => finish(tx.server(), local, o),
        (None, Some(e)) => Err(io_err("recv", local)(io::Error::new(
            e.kind(),
            e.to_string(),
        ))),
        // Unreachable: the loop only ends once every transaction has an outcome.
        (None, None) => Err(Error::Timeout {
            server: tx.server(),
            transmits: 0,
            elapsed: Duration::ZERO,
        }),
    }
}

/// One Binding transaction over UDP on `socket` (see `bindings`).
pub async fn binding(
    socket: &UdpSocket,
    server: SocketAddr,
    req: RequestOptions,
    rto: Duration,
    timeout: Duration,
) -> Result<BindingResponse, Error> {
    let mut results = bindings(socket, &[(server, req)], rto, timeout).await;
    results.pop().unwrap_or(Err(Error::Timeout {
        server,
        transmits: 0,
        elapsed: Duration::ZERO,
    }))
}

/// One Binding transaction over an already connected TCP stream (RFC 5389 §7.2.2: one
/// transmission, the transport retransmits). CHANGE-REQUEST makes no sense here, so replies
/// are accepted from the stream's peer only. Messages with other ids are skipped.
pub async fn binding_tcp_stream(
    stream: &mut TcpStream,
    req: RequestOptions,
    timeout: Duration,
) -> Result<BindingResponse, Error> {
    let unspecified = SocketAddr::from(([0, 0, 0, 0], 0));
    let server = stream
        .peer_addr()
        .map_err(io_err("peer_addr", unspecified))?;
    let local = stream.local_addr().map_err(io_err("local_addr", server))?;
    let req = RequestOptions {
        accept: super::Accept::Exactly(server),
        ..req
    };
    let timing = Timing {
        max_transmits: 1,
        last_wait_factor: 1,
        ..Timing::new(timeout, timeout)
    };
    let mut tx = Transaction::new(Instant::now(), server, req, timing)
        .map_err(|source| Error::Codec { server, source })?;
    let exchange = async {
        while let Some(t) = tx.poll_transmit(Instant::now()) {
            stream
                .write_all(&t.contents)
                .await
                .map_err(io_err("write", server))?;
        }
        loop {
            // The whole exchange is bounded below.
            let message = read_message(stream, None)
                .await
                .map_err(io_err("read", server))?;
            if tx.handle_datagram(Instant::now(), server, &message) {
                return Ok(());
            }
            // A stream cannot resynchronise after a non-STUN message: give up on it.
            if let Err(source) =
                super::Packet::new_checked(&message[..]).and_then(|p| Repr::parse(&p))
            {
                return Err(Error::Codec { server, source });
            }
        }
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e),
        Err(_) => tx.handle_timeout(Instant::now() + timeout),
    }
    let outcome = tx.outcome().cloned().unwrap_or(Err(super::TimedOut {
        transmits: 1,
        elapsed: timeout,
    }));
    finish(server, local, outcome)
}

/// Connects to `server` over TCP (from `local` when given, port 0 = any) and runs one Binding
/// transaction; connect and exchange together are bounded by `timeout`.
pub async fn binding_tcp(
    local: Option<SocketAddr>,
    server: SocketAddr,
    req: RequestOptions,
    timeout: Duration,
) -> Result<BindingResponse, Error> {
    let started = Instant::now();
    let socket = if server.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(io_err("socket", server))?;
    if let Some(local) = local {
        socket.bind(local).map_err(io_err("bind", local))?;
    }
    let mut stream = match tokio::time::timeout(timeout, socket.connect(server)).await {
        Ok(r) => r.map_err(io_err("connect", server))?,
        Err(_) => {
            return Err(Error::Timeout {
                server,
                transmits: 0,
                elapsed: started.elapsed(),
            });
        }
    };
    let left = timeout.saturating_sub(started.elapsed());
    binding_tcp_stream(&mut stream, req, left).await
}

/// Our external address as one server sees it (`interface::external::query`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lookup {
    pub mapped: SocketAddr,
    pub rtt: Duration,
    pub server: SocketAddr,
    pub local: SocketAddr,
}
