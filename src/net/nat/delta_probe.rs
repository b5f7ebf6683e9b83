//! The port lookups behind P2PD's delta test (inventory §2.4), made concurrently with the
//! other NAT probes. Scoring is pure and lives in `delta.rs`; this only collects
//! [`DeltaSamples`].
//!
//! Two rounds of lookups, each one binding request from a fresh socket to one server:
//! round 1 from random local ports in [4000, 65535), round 2 from consecutive ports from a
//! random start. The first copy of every request goes out back to back in slot order,
//! round 1 then round 2, before any reply is awaited: a NAT that counts new flows then
//! hands out its ports in slot order, and the other probes' flows rarely land between two
//! samples (a stray one spoils one neighbour pair; P2PD's threshold is 5 of 11).
//! Each lookup listens for one silence window; a port that cannot be bound or a lookup
//! that stays silent is a `None` slot kept in place, as P2PD's scoring expects.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::task::JoinSet;

use super::observations::{DeltaSamples, PortSample};
use super::window::window_timing;
use crate::net::stun::client::send_due;
use crate::net::stun::{RequestOptions, Transaction};

/// Lowest local port P2PD draws from.
const LOW_PORT: u16 = 4000;
/// Random ports tried per round-1 slot before the slot is given up.
const BIND_ATTEMPTS: usize = 4;

/// A random u32 from the OS; the clock if the OS has none (ports need not be secret).
fn random_u32() -> u32 {
    getrandom::u32().unwrap_or_else(|_| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos())
    })
}

/// A random port in [low, high).
fn random_port(low: u16, high: u16) -> u16 {
    let span = u32::from(high.saturating_sub(low)).max(1);
    low.saturating_add(u16::try_from(random_u32() % span).unwrap_or(0))
}

async fn bind(ip: IpAddr, port: u16) -> Option<UdpSocket> {
    UdpSocket::bind(SocketAddr::new(ip, port)).await.ok()
}

/// Round 1's sockets: `n` random local ports.
async fn random_sockets(ip: IpAddr, n: usize) -> Vec<Option<UdpSocket>> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let mut socket = None;
        for _ in 0..BIND_ATTEMPTS {
            socket = bind(ip, random_port(LOW_PORT, u16::MAX)).await;
            if socket.is_some() {
                break;
            }
        }
        out.push(socket);
    }
    out
}

/// Round 2's sockets: `n` consecutive local ports from a random start.
async fn consecutive_sockets(ip: IpAddr, n: usize) -> Vec<Option<UdpSocket>> {
    let count = u16::try_from(n).unwrap_or(u16::MAX);
    let start = random_port(LOW_PORT, u16::MAX.saturating_sub(count));
    let mut out = Vec::with_capacity(n);
    for i in 0..count {
        out.push(bind(ip, start.saturating_add(i)).await);
    }
    out
}

/// One started lookup: its socket, local port and transaction.
type Lookup = (UdpSocket, u16, Transaction);

/// Runs both rounds of `n` lookups against `server`, each listening for `window`.
pub(super) async fn collect_delta(
    ip: IpAddr,
    server: SocketAddr,
    n: usize,
    window: Duration,
) -> DeltaSamples {
    let mut slots: Vec<Option<UdpSocket>> = random_sockets(ip, n).await;
    slots.extend(consecutive_sockets(ip, n).await);
    // First copies in slot order, before anything is awaited (see the module docs).
    let mut started: Vec<Option<Lookup>> = Vec::with_capacity(slots.len());
    for socket in slots {
        started.push(start_lookup(socket, server, window).await);
    }
    let mut running = JoinSet::new();
    for (i, lookup) in started.into_iter().enumerate() {
        if let Some(lookup) = lookup {
            running.spawn(async move { (i, finish_lookup(lookup).await) });
        }
    }
    let mut samples: Vec<Option<PortSample>> = vec![None; 2 * n];
    while let Some(joined) = running.join_next().await {
        if let Ok((i, Some(sample))) = joined
            && let Some(slot) = samples.get_mut(i)
        {
            *slot = Some(sample);
        }
    }
    let consecutive = samples.split_off(n.min(samples.len()));
    DeltaSamples {
        random: samples,
        consecutive,
    }
}

/// Sends the first copy of a lookup from `socket`.
async fn start_lookup(
    socket: Option<UdpSocket>,
    server: SocketAddr,
    window: Duration,
) -> Option<Lookup> {
    let socket = socket?;
    let local = socket.local_addr().ok()?.port();
    let now = Instant::now();
    let mut tx = Transaction::new(
        now,
        server,
        RequestOptions::binding(),
        window_timing(window),
    )
    .ok()?;
    let first = tx.poll_transmit(now)?;
    socket
        .send_to(&first.contents, first.destination)
        .await
        .ok()?;
    Some((socket, local, tx))
}

/// Runs a started lookup to its end: the mapped port, or `None` on silence.
async fn finish_lookup((socket, local, mut tx): Lookup) -> Option<PortSample> {
    let mut buf = vec![0u8; 2048];
    loop {
        send_due(&mut tx, &socket, Instant::now()).await;
        if let Some(outcome) = tx.outcome() {
            let mapped = outcome.as_ref().ok()?.message.mapped()?;
            return Some(PortSample {
                local,
                mapped: mapped.port(),
            });
        }
        let wake = tx.poll_timeout()?;
        tokio::select! {
            Ok((n, from)) = socket.recv_from(&mut buf) => {
                tx.handle_datagram(Instant::now(), from, buf.get(..n).unwrap_or(&[]));
            }
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(wake)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ports_stay_in_range() {
        for _ in 0..1000 {
            let p = random_port(LOW_PORT, u16::MAX);
            assert!((LOW_PORT..u16::MAX).contains(&p), "{p}");
        }
        assert_eq!(random_port(7, 7), 7);
    }
}
