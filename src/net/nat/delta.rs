//! P2PD's delta test scoring (`nat_utils.delta_test`): how the external port of a new
//! mapping follows from earlier ones. Pure: the lookups are made by the probe driver and
//! arrive as [`DeltaSamples`].
//!
//! The rules are P2PD's, in P2PD's order, so its unit-test vectors (inventory §8) give the
//! same answers:
//! - each slot is compared with the slot before it; distances are P2PD's `field_dist`
//!   over a field of 65535 (not 65536: kept for identical answers);
//! - round 1 (random local ports): EQUAL if `threshold` samples have mapped == local;
//!   PRESERVING if `threshold` neighbours kept the local distance AND more than one such
//!   distance was seen; else INDEPENDENT(d) for the first mapped distance d (in order of
//!   first appearance) counted `threshold` times among neighbours whose local distance
//!   is not 1;
//! - round 2 (consecutive local ports): DEPENDENT(d) for the first mapped distance counted
//!   `threshold` times among neighbours whose local distance is 1; else RANDOM.
//!
//! Deviations, both for inputs P2PD never handled well: a sample right after a failed
//! lookup still counts towards EQUAL (P2PD's loop raised and skipped it), and when no
//! lookup succeeded at all the answer is NOT APPLICABLE rather than RANDOM, since nothing
//! was measured.

use super::observations::{DeltaSamples, PortSample};
use super::types::Delta;

/// The threshold `load_nat` uses: `int(12 / 2) - 1` for its 12 lookups per round.
pub const P2PD_DELTA_THRESHOLD: usize = 5;

/// Lookups per round in P2PD's `load_nat`.
pub const P2PD_DELTA_TESTS: usize = 12;

/// [`classify_delta_with`] at P2PD's threshold of 5.
pub fn classify_delta(samples: &DeltaSamples) -> Delta {
    classify_delta_with(samples, P2PD_DELTA_THRESHOLD)
}

/// The delta type the samples show; `threshold` is how many agreeing neighbours make a
/// pattern (P2PD: 5 of 12). A threshold of 0 behaves as 1, since P2PD only counts
/// patterns it has seen.
pub fn classify_delta_with(samples: &DeltaSamples, threshold: usize) -> Delta {
    if samples.is_empty() {
        return Delta::NotApplicable;
    }
    let threshold = threshold.max(1);

    let first = Tally::of(&samples.random);
    if first.equal >= threshold {
        return Delta::Equal;
    }
    // One repeated distance is what an independent counter also produces; P2PD wants
    // several distinct preserved distances before it calls the NAT preserving.
    if first.preserved_distances.len() > 1 && first.preserving >= threshold {
        return Delta::Preserving;
    }
    if let Some(step) = first.other_steps.first_reaching(threshold) {
        return Delta::Independent(step);
    }

    let second = Tally::of(&samples.consecutive);
    match second.unit_steps.first_reaching(threshold) {
        Some(step) => Delta::Dependent(step),
        None => Delta::Random,
    }
}

/// P2PD's `abs(field_dist(x, y, MAX_PORT))`: the shorter way round a circle of 65535.
fn port_distance(x: u16, y: u16) -> u16 {
    let (high, low) = (u32::from(x.max(y)), u32::from(x.min(y)));
    let direct = high - low;
    let wrapped = low + (65535 - high);
    // Both are at most 65535, so the narrowing cannot fail; saturate rather than unwrap.
    u16::try_from(direct.min(wrapped)).unwrap_or(u16::MAX)
}

/// Distances counted in order of first appearance, as Python dicts iterate.
#[derive(Default)]
struct Counts(Vec<(u16, usize)>);

impl Counts {
    fn bump(&mut self, distance: u16) {
        match self.0.iter_mut().find(|(d, _)| *d == distance) {
            Some((_, n)) => *n += 1,
            None => self.0.push((distance, 1)),
        }
    }

    fn first_reaching(&self, threshold: usize) -> Option<u16> {
        self.0
            .iter()
            .find(|(_, n)| *n >= threshold)
            .map(|(d, _)| *d)
    }
}

/// One round scored the way P2PD's `get_delta_value` scores it.
#[derive(Default)]
struct Tally {
    equal: usize,
    preserving: usize,
    preserved_distances: Vec<u16>,
    /// Mapped distances where the local distance was not 1 (independent candidates).
    other_steps: Counts,
    /// Mapped distances where the local distance was exactly 1 (dependent candidates).
    unit_steps: Counts,
}

impl Tally {
    fn of(slots: &[Option<PortSample>]) -> Tally {
        let mut tally = Tally::default();
        let mut previous: Option<PortSample> = None;
        for slot in slots {
            let Some(current) = *slot else {
                previous = None;
                continue;
            };
            if current.local == current.mapped {
                tally.equal += 1;
            }
            // P2PD skips a neighbour with a zero port (an unbound or unknown mapping).
            if let Some(prev) = previous.filter(|p| p.local != 0 && p.mapped != 0) {
                tally.compare(prev, current);
            }
            previous = Some(current);
        }
        tally
    }

    fn compare(&mut self, prev: PortSample, current: PortSample) {
        let local = port_distance(current.local, prev.local);
        let mapped = port_distance(current.mapped, prev.mapped);
        if mapped == local {
            if current.mapped != current.local {
                if !self.preserved_distances.contains(&mapped) {
                    self.preserved_distances.push(mapped);
                }
                self.preserving += 1;
            }
        } else if local != 1 {
            self.other_steps.bump(mapped);
        } else {
            self.unit_steps.bump(mapped);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// P2PD's unit tests feed the same 8 pairs to both rounds (its fake STUN client
    /// replays the list) with threshold 5; the last two pairs of each are noise.
    fn p2pd_vector(pairs: &[(u16, u16)]) -> Delta {
        classify_delta(&DeltaSamples::from_pairs(pairs, pairs))
    }

    #[test]
    fn p2pd_test_preserving_delta() {
        let pairs = [
            (4000, 50000),
            (10000, 56000),
            (10200, 56200),
            (10400, 56400),
            (11000, 57000),
            (12000, 58000),
            (4620, 2333),
            (4630, 2334),
        ];
        assert_eq!(p2pd_vector(&pairs), Delta::Preserving);
    }

    #[test]
    fn p2pd_test_equal_delta() {
        let pairs = [
            (4567, 4567),
            (48234, 48234),
            (6823, 6823),
            (60000, 60000),
            (50000, 50000),
            (60001, 60001),
            (5000, 5001),
            (5000, 5001),
        ];
        assert_eq!(p2pd_vector(&pairs), Delta::Equal);
    }

    #[test]
    fn p2pd_test_independent_delta() {
        let pairs = [
            (5000, 50000),
            (23412, 50010),
            (55421, 50020),
            (6322, 50030),
            (5622, 50040),
            (45610, 50050),
            (4420, 2333),
            (5555, 2334),
        ];
        assert_eq!(p2pd_vector(&pairs), Delta::Independent(10));
    }

    #[test]
    fn p2pd_test_dependent_delta() {
        let pairs = [
            (4560, 50000),
            (4561, 50020),
            (4562, 50040),
            (4563, 50060),
            (4564, 50080),
            (4565, 50100),
            (4566, 2333),
            (4567, 6000),
        ];
        assert_eq!(p2pd_vector(&pairs), Delta::Dependent(20));
    }

    #[test]
    fn p2pd_test_random_delta() {
        let pairs = [
            (4560, 4443),
            (4561, 50001),
            (4562, 63813),
            (4563, 64000),
            (4564, 2000),
            (4565, 6004),
            (4566, 2333),
            (4567, 8432),
        ];
        assert_eq!(p2pd_vector(&pairs), Delta::Random);
    }

    /// The mock results of inventory §2.4: mapped = local + 1000 from random ports.
    #[test]
    fn constant_offset_is_preserving() {
        let locals = [4100u16, 9000, 15000, 15300, 30000, 31000, 40000, 52000];
        let pairs: Vec<_> = locals.iter().map(|&l| (l, l + 1000)).collect();
        assert_eq!(p2pd_vector(&pairs), Delta::Preserving);
    }

    /// A single repeated preserved distance is not enough for PRESERVING: with
    /// consecutive locals it is read as a counter instead.
    #[test]
    fn one_preserved_distance_is_not_preserving() {
        let pairs: Vec<_> = (0..8u16).map(|i| (5000 + 3 * i, 7000 + 3 * i)).collect();
        assert_ne!(p2pd_vector(&pairs), Delta::Preserving);
    }

    #[test]
    fn distance_wraps_over_65535() {
        assert_eq!(port_distance(65000, 100), 635);
        assert_eq!(port_distance(100, 65000), 635);
        assert_eq!(port_distance(7, 7), 0);
        assert_eq!(port_distance(0, 65535), 0);
    }

    #[test]
    fn no_samples_is_not_applicable() {
        assert_eq!(
            classify_delta(&DeltaSamples::default()),
            Delta::NotApplicable
        );
        let all_failed = DeltaSamples {
            random: vec![None; 12],
            consecutive: vec![None; 12],
        };
        assert_eq!(classify_delta(&all_failed), Delta::NotApplicable);
    }

    /// A failed lookup breaks the comparison chain but keeps EQUAL counting.
    #[test]
    fn gaps_are_skipped_not_bridged() {
        let s = |p: u16| {
            Some(PortSample {
                local: p,
                mapped: p,
            })
        };
        let random = vec![
            s(5000),
            None,
            s(9000),
            None,
            s(12000),
            None,
            s(20000),
            None,
            s(33000),
        ];
        let samples = DeltaSamples {
            random,
            consecutive: vec![],
        };
        assert_eq!(classify_delta(&samples), Delta::Equal);
        // A counter whose every other lookup failed never gets two neighbours in a row.
        let c = |i: u16| {
            Some(PortSample {
                local: 4000 + 977 * i,
                mapped: 20000 + i,
            })
        };
        let gappy = DeltaSamples {
            random: (0..12)
                .map(|i| if i % 2 == 0 { c(i) } else { None })
                .collect(),
            consecutive: vec![],
        };
        assert_eq!(classify_delta(&gappy), Delta::Random);
    }
}
