//! How long an idle UDP mapping survives (RFC 4787 §4.3 REQ-5, RFC 5780 §4.6), measured
//! without refreshing it. Slow by nature (it waits out the lifetime), so `load_nat` runs
//! it only when asked and never past the caller's maximum.
//!
//! Each check has its own socket X: X makes a mapping with a binding to the server, then
//! stays silent. After an idle time t a second socket Y sends a binding request carrying
//! RESPONSE-PORT = X's external port (RFC 5780 §7.5); the server answers from the address
//! X talked to, to (our public IP, X's port). X hears it only if the mapping (and its
//! filter entry) is still there. Y's request is outbound traffic on Y's mapping, not X's,
//! so nothing refreshes X (REQ-6 allows inbound refresh; checking spends the socket, which
//! is why each check gets a fresh one). All mappings are made at the start and checked at
//! times growing geometrically up to the maximum; the first expired check ends the run.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::task::JoinSet;

use super::window::window_timing;
use crate::net::stun::client::send_due;
use crate::net::stun::{self, RequestOptions, Transaction};

/// What the lifetime checks established: the mapping survived `alive` of silence and was
/// gone after `expired`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MappingLifetime {
    /// Longest idle time after which the mapping still let a reply in (`None`: not even
    /// the shortest check did).
    pub alive: Option<Duration>,
    /// Shortest idle time after which it did not (`None`: it outlived the maximum).
    pub expired: Option<Duration>,
}

/// The idle times to check: `checks` points halving down from `max` (max/2^(n-1) .. max).
pub fn lifetime_schedule(max: Duration, checks: usize) -> Vec<Duration> {
    let n = checks.clamp(1, 16);
    (0..n)
        .map(|i| {
            let halvings = u32::try_from(n - 1 - i).unwrap_or(0);
            max / 2u32.pow(halvings)
        })
        .collect()
}

/// Measures the lifetime of mappings made from `local_ip` towards `server`, checking
/// after each idle time of `lifetime_schedule(max, checks)`. `rto` paces the bindings that
/// make the mappings; `window` is how long a check listens. `None` when nothing could be
/// measured: no socket, no binding answered, or the server ignored RESPONSE-PORT.
pub async fn mapping_lifetime(
    local_ip: IpAddr,
    server: SocketAddr,
    max: Duration,
    checks: usize,
    rto: Duration,
    window: Duration,
) -> Option<MappingLifetime> {
    let schedule = lifetime_schedule(max, checks);
    let mut made = JoinSet::new();
    for (i, idle) in schedule.iter().copied().enumerate() {
        made.spawn(async move {
            let x = UdpSocket::bind(SocketAddr::new(local_ip, 0)).await.ok()?;
            let reply = stun::binding(&x, server, RequestOptions::binding(), rto, window * 4)
                .await
                .ok()
                .filter(|r| super::observations::usable_mapped(local_ip, r.mapped))?;
            Some((i, idle, x, reply.mapped.port(), Instant::now()))
        });
    }
    let mut mappings = Vec::new();
    while let Some(joined) = made.join_next().await {
        if let Ok(Some(m)) = joined {
            mappings.push(m);
        }
    }
    mappings.sort_by_key(|(i, ..)| *i);
    let mut result = MappingLifetime {
        alive: None,
        expired: None,
    };
    let mut tried = false;
    for (_, idle, x, port, made_at) in mappings {
        tokio::time::sleep_until(tokio::time::Instant::from_std(made_at + idle)).await;
        tried = true;
        if check(local_ip, server, Arc::new(x), port, window).await? {
            result.alive = Some(idle);
        } else {
            result.expired = Some(idle);
            break;
        }
    }
    tried.then_some(result)
}

/// One check: does a reply sent to `port` still reach `x`? `None` when the check itself
/// failed (no socket, or the reply came to the requesting socket: RESPONSE-PORT ignored).
async fn check(
    local_ip: IpAddr,
    server: SocketAddr,
    x: Arc<UdpSocket>,
    port: u16,
    window: Duration,
) -> Option<bool> {
    let y = UdpSocket::bind(SocketAddr::new(local_ip, 0)).await.ok()?;
    let options = RequestOptions {
        response_port: Some(port),
        ..RequestOptions::binding()
    };
    let mut tx = Transaction::new(Instant::now(), server, options, window_timing(window)).ok()?;
    let (mut at_x, mut at_y) = (vec![0u8; 2048], vec![0u8; 2048]);
    loop {
        send_due(&mut tx, &y, Instant::now()).await;
        if let Some(outcome) = tx.outcome() {
            return Some(outcome.is_ok());
        }
        let wake = tx.poll_timeout()?;
        tokio::select! {
            Ok((n, from)) = x.recv_from(&mut at_x) => {
                tx.handle_datagram(Instant::now(), from, at_x.get(..n).unwrap_or(&[]));
            }
            Ok((n, from)) = y.recv_from(&mut at_y) => {
                if tx.handle_datagram(Instant::now(), from, at_y.get(..n).unwrap_or(&[])) {
                    return None;
                }
            }
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(wake)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_halves_down_from_max() {
        let s = lifetime_schedule(Duration::from_secs(8), 4);
        let secs: Vec<u64> = s.iter().map(Duration::as_secs).collect();
        assert_eq!(secs, [1, 2, 4, 8]);
        assert_eq!(lifetime_schedule(Duration::from_secs(8), 0).len(), 1);
        assert_eq!(lifetime_schedule(Duration::from_secs(8), 99).len(), 16);
    }
}
