//! When a NAT probe sends copies of a request, and when its silence becomes evidence.
//! Pure arithmetic over send times, RTTs and a loss count, so the rules are tested without
//! a clock (and the simulator in `sim.rs` can check them against thousands of lossy runs).
//!
//! Every copy of a request is its own transaction (a fresh transaction id), so the prober
//! knows exactly which copies were answered: that gives an exact RTT per copy and a count
//! of lost round trips on paths that are known to answer ([`LossCount`]). Silence is then
//! judged by probability, not by a fixed wait: a filtering test concludes "silent" once
//! enough copies have had time to come back that all of them being lost is less likely
//! than [`SilenceRule::epsilon`] at the loss rate seen so far (an upper estimate), and not
//! before one RTT plus a margin after the test started. A clean path therefore concludes
//! after a burst of a few copies and one RTT; a lossy one sends more copies and waits for
//! them. Positive tests (a binding that must be answered) simply keep sending copies, on
//! the same schedule, until they are answered or the run ends.
//!
//! A run has about ten tests that conclude on silence, so each may be wrong at most once
//! in 10,000 runs: the run's answer then stays right in 99.9% of runs at any loss rate
//! the copies can outnumber.
//!
//! The schedule: three copies at the start (0, 5 and 10 ms, so a lost datagram costs no
//! RTT and a clean path needs no more),
//! then, while the path's RTT is unknown, gaps doubling from the initial RTO (RFC 5389
//! §7.2.1 style). Once it is known, a silence test sends a copy every RTT/4 (between 5 and
//! 50 ms), so that enough copies have had time to return by the time silence may count; a
//! test that waits for an answer sends its next copy only when the last one should have
//! been answered (one RTT plus jitter), so a clean path costs two datagrams per test.

use std::time::{Duration, Instant};

/// Copies sent at once when a probe starts, 5 ms apart.
const BURST: usize = 3;
const BURST_GAP: Duration = Duration::from_millis(5);
/// Bounds on the gap between later copies once the RTT is known.
const MIN_GAP: Duration = Duration::from_millis(5);
const MAX_GAP: Duration = Duration::from_millis(50);
/// Shortest gap between copies of a test that waits for an answer: on a LAN the RTT is
/// below the time a busy host takes to read a reply.
const MIN_ANSWER_GAP: Duration = Duration::from_millis(10);

/// Round trips on answering paths whose fate is known: `expired` copies had time to come
/// back, `lost` of them did not.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LossCount {
    pub lost: u32,
    pub expired: u32,
}

impl LossCount {
    /// An upper estimate of the round-trip loss rate: (lost + 1) / (expired + 2). With no
    /// samples it is 1/2, so an unknown path is treated as a bad one.
    pub fn upper(&self) -> f64 {
        (f64::from(self.lost) + 1.0) / (f64::from(self.expired) + 2.0)
    }

    /// The measured rate, if anything was measured.
    pub fn rate(&self) -> Option<f64> {
        (self.expired > 0).then(|| f64::from(self.lost) / f64::from(self.expired))
    }
}

/// How a test paces its copies once the RTT is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    /// Silence is evidence: several copies per RTT, so that enough can return in time.
    Silence,
    /// Only an answer ends the test: the next copy when the last should have been answered.
    Answer,
}

/// How copies are spaced and when silence counts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SilenceRule {
    /// Silence never concludes before the test's start plus one RTT plus this.
    pub margin: Duration,
    /// Accepted chance that every copy of a test was lost and its silence is wrong.
    pub epsilon: f64,
    /// Fewest copies that must have had time to return before silence counts.
    pub min_copies: u32,
    /// Most copies of one request.
    pub max_copies: u32,
    /// Silence concludes after this long whatever the copies say.
    pub ceiling: Duration,
    /// First gap after the burst while the RTT is unknown; doubles after each copy.
    pub rto: Duration,
}

impl Default for SilenceRule {
    fn default() -> Self {
        SilenceRule {
            margin: Duration::from_millis(40),
            epsilon: 1e-4,
            min_copies: 2,
            max_copies: 16,
            ceiling: Duration::from_secs(2),
            rto: Duration::from_millis(100),
        }
    }
}

/// How long the reply to one copy may take, by the path it travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// A round trip through the internet to a server, its RTT as measured: jitter grows
    /// with it, and silence counts no earlier than the RTT plus the rule's margin.
    Internet(Duration),
    /// A NAT's hairpin turnaround, with the RTT to a server. That path runs through the
    /// NAT, so its RTT bounds the turnaround and is slack enough by itself, past the
    /// margin that covers a stalled host; the internet's jitter is not on this path.
    /// Waiting an RTT plus the margin would put the silence of a NAT without hairpinning
    /// past 2 RTT + 50 ms.
    Hairpin(Duration),
}

impl Wait {
    fn whole(self) -> Duration {
        match self {
            Wait::Internet(rtt) => rtt + SilenceRule::jitter(rtt),
            Wait::Hairpin(rtt) => rtt + SilenceRule::jitter(Duration::ZERO),
        }
    }

    /// The earliest a test that started at `started` may be called silent.
    fn floor(self, started: Instant, margin: Duration) -> Instant {
        match self {
            Wait::Internet(rtt) => started + rtt + margin,
            Wait::Hairpin(_) => started + self.whole().max(margin),
        }
    }
}

impl SilenceRule {
    /// How many copies must have had time to return before silence is believed, at the
    /// loss rate `loss` shows (its upper estimate).
    pub fn copies_needed(&self, loss: LossCount) -> u32 {
        let q = loss.upper().clamp(1e-6, 0.999);
        let n = (self.epsilon.ln() / q.ln()).ceil();
        // `n` is finite and positive here; the cast saturates if it were not.
        (n as u32).clamp(self.min_copies, self.max_copies)
    }

    /// Slack for jitter on a path of `rtt`: an eighth of it plus 2 ms.
    pub fn jitter(rtt: Duration) -> Duration {
        rtt / 8 + Duration::from_millis(2)
    }

    /// Copies sent early enough to have come back by `now`.
    pub fn eligible(sent: &[Instant], now: Instant, wait: Wait) -> u32 {
        let n = sent.iter().filter(|&&s| s + wait.whole() <= now).count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// Whether a test that started at `started`, sent copies at `sent` and heard nothing
    /// may now be called silent.
    pub fn is_silent(
        &self,
        started: Instant,
        sent: &[Instant],
        now: Instant,
        wait: Wait,
        loss: LossCount,
    ) -> bool {
        if now >= started + self.ceiling {
            return true;
        }
        now >= wait.floor(started, self.margin)
            && Self::eligible(sent, now, wait) >= self.copies_needed(loss)
    }

    /// When a silence test can next change its mind: the later of its floor and the
    /// moment the copy that completes the needed count becomes eligible.
    pub fn silent_at(
        &self,
        started: Instant,
        sent: &[Instant],
        wait: Wait,
        loss: LossCount,
    ) -> Option<Instant> {
        let floor = wait.floor(started, self.margin);
        let needed = usize::try_from(self.copies_needed(loss)).unwrap_or(usize::MAX);
        let copy = sent.get(needed.checked_sub(1)?)?;
        Some(floor.max(*copy + wait.whole()).min(started + self.ceiling))
    }

    /// When the next copy of a request is due: `None` when no more should be sent.
    /// `rtt` is the path's RTT if known; `wanted` caps the copies (the silence need plus
    /// one for a silence test, `max_copies` for a test that waits for an answer).
    pub fn next_copy(
        &self,
        started: Instant,
        sent: &[Instant],
        rtt: Option<Duration>,
        wanted: u32,
        pace: Pace,
    ) -> Option<Instant> {
        let count = sent.len();
        let cap = usize::try_from(wanted.min(self.max_copies)).unwrap_or(usize::MAX);
        if count >= cap {
            return None;
        }
        let Some(&last) = sent.last() else {
            return Some(started);
        };
        if count < BURST {
            return Some(last + BURST_GAP);
        }
        let gap = match (rtt, pace) {
            (Some(rtt), Pace::Silence) => (rtt / 4).clamp(MIN_GAP, MAX_GAP),
            (Some(rtt), Pace::Answer) => (rtt + Self::jitter(rtt)).max(MIN_ANSWER_GAP),
            (None, _) => {
                let doublings = u32::try_from(count - BURST).unwrap_or(u32::MAX).min(16);
                self.rto.saturating_mul(1 << doublings)
            }
        };
        Some(last + gap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn at(t0: Instant, ms: &[u64]) -> Vec<Instant> {
        ms.iter()
            .map(|&m| t0 + MS * u32::try_from(m).unwrap())
            .collect()
    }

    #[test]
    fn a_clean_path_needs_few_copies_and_a_lossy_one_many() {
        let rule = SilenceRule::default();
        let clean = LossCount {
            lost: 0,
            expired: 40,
        };
        assert_eq!(rule.copies_needed(clean), 3);
        // 25% each way: 44% of round trips lost.
        let lossy = LossCount {
            lost: 18,
            expired: 40,
        };
        assert!(
            rule.copies_needed(lossy) >= 11,
            "{}",
            rule.copies_needed(lossy)
        );
        // Nothing measured: treated as a bad path, never as a clean one.
        assert!(rule.copies_needed(LossCount::default()) >= 13);
        let hopeless = LossCount {
            lost: 1000,
            expired: 1000,
        };
        assert_eq!(rule.copies_needed(hopeless), rule.max_copies);
    }

    #[test]
    fn silence_waits_for_the_floor_and_for_eligible_copies() {
        let rule = SilenceRule::default();
        let t0 = Instant::now();
        let clean = LossCount {
            lost: 0,
            expired: 40,
        };
        let rtt = 300 * MS;
        let wan = Wait::Internet(rtt);
        let sent = at(t0, &[0, 5, 10, 110]);
        // Three copies back by 10 + 300 + 39.5 = 349.5 ms; the floor (340 ms) is earlier.
        assert!(!rule.is_silent(t0, &sent, t0 + 349 * MS, wan, clean));
        assert!(rule.is_silent(t0, &sent, t0 + 350 * MS, wan, clean));
        assert_eq!(
            rule.silent_at(t0, &sent, wan, clean),
            Some(t0 + 349 * MS + MS / 2)
        );
        // One copy only: eligible at 339.5 ms, but the floor holds it to 340 ms.
        let one_copy_rule = SilenceRule {
            min_copies: 1,
            ..rule
        };
        let spotless = LossCount {
            lost: 0,
            expired: 20_000,
        };
        assert_eq!(one_copy_rule.copies_needed(spotless), 1);
        assert_eq!(
            one_copy_rule.silent_at(t0, &sent[..1], wan, spotless),
            Some(t0 + 340 * MS)
        );
        // A hairpin's copies are back by 10 + 300 + 2 ms, past its floor (302 ms); on a
        // 1 ms path the margin holds it to 40 ms.
        assert_eq!(
            rule.silent_at(t0, &sent, Wait::Hairpin(rtt), clean),
            Some(t0 + 312 * MS)
        );
        assert_eq!(
            rule.silent_at(t0, &sent, Wait::Hairpin(MS), clean),
            Some(t0 + 40 * MS)
        );
        // Lossy: more copies are needed than were sent, so no verdict until the ceiling.
        let lossy = LossCount {
            lost: 18,
            expired: 40,
        };
        assert!(!rule.is_silent(t0, &sent, t0 + 1500 * MS, wan, lossy));
        assert_eq!(rule.silent_at(t0, &sent, wan, lossy), None);
        assert!(rule.is_silent(t0, &sent, t0 + 2000 * MS, wan, lossy));
    }

    #[test]
    fn schedule_bursts_then_doubles_then_follows_the_rtt() {
        let rule = SilenceRule::default();
        let t0 = Instant::now();
        let s = Pace::Silence;
        assert_eq!(rule.next_copy(t0, &[], None, 16, s), Some(t0));
        assert_eq!(
            rule.next_copy(t0, &at(t0, &[0]), None, 16, s),
            Some(t0 + 5 * MS)
        );
        assert_eq!(
            rule.next_copy(t0, &at(t0, &[0, 5]), None, 16, s),
            Some(t0 + 10 * MS)
        );
        let three = at(t0, &[0, 5, 10]);
        assert_eq!(rule.next_copy(t0, &three, None, 16, s), Some(t0 + 110 * MS));
        let four = at(t0, &[0, 5, 10, 110]);
        assert_eq!(rule.next_copy(t0, &four, None, 16, s), Some(t0 + 310 * MS));
        // Known RTT: a quarter of it, within 5..50 ms, for a silence test.
        assert_eq!(
            rule.next_copy(t0, &four, Some(300 * MS), 16, s),
            Some(t0 + 160 * MS)
        );
        assert_eq!(
            rule.next_copy(t0, &four, Some(MS), 16, s),
            Some(t0 + 115 * MS)
        );
        assert_eq!(rule.next_copy(t0, &four, Some(MS), 4, s), None);
        // A test that waits for an answer: when the last copy should have been answered.
        assert_eq!(
            rule.next_copy(t0, &three, Some(80 * MS), 16, Pace::Answer),
            Some(t0 + 102 * MS)
        );
    }

    #[test]
    fn loss_estimates() {
        assert_eq!(LossCount::default().rate(), None);
        let c = LossCount {
            lost: 1,
            expired: 4,
        };
        assert_eq!(c.rate(), Some(0.25));
        assert!((c.upper() - 2.0 / 6.0).abs() < 1e-9);
    }
}
