//! Silence windows: how long a NAT probe listens before "no reply" becomes evidence, and
//! the retransmission schedule inside that window. Pure arithmetic, so the rules can be
//! checked without a clock.
//!
//! The window is `clamp(k * rtt, floor, ceiling)` with the RTT measured on the same path
//! (same socket, same server) by test I. P2PD waits a fixed 0.5 s per phase instead
//! (inventory §2.3), which is both too long on a LAN and too short on a slow uplink.
//! Inside a window the request is sent at 0, W/5 and 3W/5 (RFC 5389 §7.2.1 doubling from
//! an RTO of W/5): the last copy still has 2W/5 (over one RTT when k >= 3) to come back,
//! so one lost datagram in either direction is not read as filtering.

use std::time::Duration;

use crate::net::stun::Timing;

/// Copies of a request sent inside one window (0, W/5, 3W/5).
pub const WINDOW_TRANSMITS: u32 = 3;

/// The three parameters of a silence window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowRule {
    /// `k`: the window is this many RTTs.
    pub rtt_factor: u32,
    /// Shortest window: below it scheduler noise, not the network, decides.
    pub floor: Duration,
    /// Longest window, whatever the RTT says.
    pub ceiling: Duration,
}

impl WindowRule {
    /// `clamp(k * rtt, floor, ceiling)`. Never panics: a floor above the ceiling gives the
    /// ceiling (the caller's hard bound wins).
    pub fn window(&self, rtt: Duration) -> Duration {
        rtt.saturating_mul(self.rtt_factor)
            .max(self.floor)
            .min(self.ceiling)
    }

    /// The window for `rtt`, cut short by `left` (time until the run's deadline).
    pub fn window_within(&self, rtt: Duration, left: Duration) -> Duration {
        self.window(rtt).min(left)
    }
}

/// Transaction timing that retransmits inside `window` and gives up when it closes.
pub fn window_timing(window: Duration) -> Timing {
    let rto = window / 5;
    Timing {
        rto,
        max_transmits: WINDOW_TRANSMITS,
        // The deadline ends the wait; this only has to reach past it.
        last_wait_factor: 5,
        deadline: window,
    }
}

/// When the copies of a window's request go out, as offsets from its start (the same
/// schedule `window_timing` gives a `Transaction`, for probes that are not STUN).
pub fn window_sends(window: Duration) -> [Duration; WINDOW_TRANSMITS as usize] {
    let rto = window / 5;
    [Duration::ZERO, rto, rto * 3]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::stun::{RequestOptions, Transaction};
    use std::time::Instant;

    const MS: Duration = Duration::from_millis(1);

    fn rule() -> WindowRule {
        WindowRule {
            rtt_factor: 3,
            floor: 50 * MS,
            ceiling: 2000 * MS,
        }
    }

    #[test]
    fn window_is_k_rtt_between_floor_and_ceiling() {
        assert_eq!(rule().window(MS / 10), 50 * MS);
        assert_eq!(rule().window(40 * MS), 120 * MS);
        assert_eq!(rule().window(900 * MS), 2000 * MS);
        assert_eq!(rule().window_within(40 * MS, 70 * MS), 70 * MS);
    }

    #[test]
    fn floor_above_ceiling_does_not_panic() {
        let odd = WindowRule {
            rtt_factor: 3,
            floor: 5000 * MS,
            ceiling: 100 * MS,
        };
        assert_eq!(odd.window(MS), 100 * MS);
        assert_eq!(odd.window(Duration::MAX), 100 * MS);
    }

    /// A transaction on `window_timing` sends exactly at the `window_sends` offsets and
    /// gives up when the window closes, not before.
    #[test]
    fn transaction_follows_the_window_schedule() {
        let w = 100 * MS;
        let t0 = Instant::now();
        let server = "203.0.113.1:3478".parse().unwrap();
        let mut tx =
            Transaction::new(t0, server, RequestOptions::binding(), window_timing(w)).unwrap();
        let mut sent = Vec::new();
        let mut now = t0;
        while tx.outcome().is_none() {
            while tx.poll_transmit(now).is_some() {
                sent.push(now - t0);
            }
            let Some(next) = tx.poll_timeout() else { break };
            now = next;
            tx.handle_timeout(now);
        }
        assert_eq!(sent, window_sends(w).to_vec());
        assert_eq!(now - t0, w);
    }
}
