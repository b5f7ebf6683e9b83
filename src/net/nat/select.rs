//! Which server's observations decide, when several change-capable servers were probed.
//! Pure: each candidate is classified on its own and the answers are compared.
//!
//! Servers may be dead (nothing answers: no external address), broken (an OTHER-ADDRESS
//! that does not answer, or a CHANGE-REQUEST ignored, which `classify` already reads as
//! "not tested") or lying about the mapped address. The rules, in order:
//! 1. only runs that saw an external address count;
//! 2. when two or more of them agree on the external IP and some other run does not, the
//!    odd ones out are dropped: every server sees the same public IP of one NAT, whatever
//!    its mapping behaviour, so a different IP is a lie or a different path;
//! 3. the most complete run wins (external address, filtering verdict, mapping verdict);
//!    on a tie the server given first wins, so the caller's order is a preference.
//!
//! Disagreement on the verdicts themselves is not voted away: one complete run decides.
//! The other runs still appear in the report's server list and RTTs.

use std::net::IpAddr;

use super::classify::classify;
use super::observations::Observations;
use super::report::NatReport;

/// How much a run established, compared lexicographically.
fn completeness(report: &NatReport) -> (bool, bool, bool) {
    let no_nat = report
        .external
        .is_some_and(|e| e.ip().to_canonical() == report.local.ip().to_canonical());
    (
        report.external.is_some(),
        report.filtering.is_some(),
        no_nat || report.mapping.is_some(),
    )
}

/// The index of the run that decides, or `None` when no run saw anything.
pub(super) fn choose(runs: &[Observations]) -> Option<usize> {
    let reports: Vec<(usize, NatReport)> = runs
        .iter()
        .enumerate()
        .map(|(i, obs)| (i, classify(obs)))
        .filter(|(_, r)| r.external.is_some())
        .collect();
    let ip_of = |r: &NatReport| r.external.map(|e| e.ip().to_canonical());
    // The external IP most runs agree on, if at least two do and it is a strict majority.
    let mut tally: Vec<(IpAddr, usize)> = Vec::new();
    for ip in reports.iter().filter_map(|(_, r)| ip_of(r)) {
        match tally.iter_mut().find(|(seen, _)| *seen == ip) {
            Some((_, n)) => *n += 1,
            None => tally.push((ip, 1)),
        }
    }
    let majority = tally
        .iter()
        .find(|(_, n)| *n >= 2 && *n * 2 > reports.len())
        .map(|(ip, _)| *ip);
    let mut best: Option<(usize, (bool, bool, bool))> = None;
    for (i, report) in &reports {
        if majority.is_some_and(|m| ip_of(report) != Some(m)) {
            continue;
        }
        let score = completeness(report);
        if best.is_none_or(|(_, b)| score > b) {
            best = Some((*i, score));
        }
    }
    best.map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::nat::observations::Probe;
    use std::net::SocketAddr;
    use std::time::Duration;

    const RTT: Duration = Duration::from_millis(1);

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    /// A run against server `p` (alternate `a`) that saw `mapped`; `change_port` tells
    /// whether test III was answered (both change tests sent).
    fn run(p: &str, a: &str, mapped: &str, change_port: Option<bool>) -> Observations {
        let (p, a, mapped) = (addr(p), addr(a), addr(mapped));
        let mut obs = Observations::new(addr("10.77.0.10:40000"));
        obs.binding = Some(Probe::answered(p, mapped, p, RTT));
        if let Some(heard) = change_port {
            obs.change_ip_port = Some(Probe::silent(p));
            let from = SocketAddr::new(p.ip(), a.port());
            obs.change_port = Some(if heard {
                Probe::answered(p, mapped, from, RTT)
            } else {
                Probe::silent(p)
            });
        }
        obs
    }

    fn dead(p: &str) -> Observations {
        let mut obs = Observations::new(addr("10.77.0.10:40000"));
        obs.binding = Some(Probe::silent(addr(p)));
        obs
    }

    #[test]
    fn nothing_seen_chooses_nothing() {
        assert_eq!(choose(&[]), None);
        assert_eq!(choose(&[dead("203.0.113.1:3478")]), None);
    }

    #[test]
    fn dead_first_server_is_skipped() {
        let runs = [
            dead("203.0.113.1:3478"),
            run(
                "203.0.113.2:3478",
                "203.0.113.3:3479",
                "203.0.113.100:20000",
                Some(true),
            ),
        ];
        assert_eq!(choose(&runs), Some(1));
    }

    #[test]
    fn the_more_complete_run_wins_and_ties_keep_order() {
        let bare = run(
            "203.0.113.1:3478",
            "203.0.113.2:3479",
            "203.0.113.100:20000",
            None,
        );
        let full = run(
            "203.0.113.5:3478",
            "203.0.113.6:3479",
            "203.0.113.100:20000",
            Some(false),
        );
        assert_eq!(choose(&[bare.clone(), full.clone()]), Some(1));
        assert_eq!(choose(&[full.clone(), full]), Some(0));
    }

    /// Two servers see 203.0.113.100; a third, listed first and more complete, claims
    /// another IP: it is outvoted.
    #[test]
    fn a_lying_mapped_address_is_outvoted() {
        let liar = run(
            "203.0.113.9:3478",
            "203.0.113.8:3479",
            "198.51.100.77:1111",
            Some(true),
        );
        let honest = |p: &str, a: &str| run(p, a, "203.0.113.100:20000", None);
        let runs = [
            liar,
            honest("203.0.113.1:3478", "203.0.113.2:3479"),
            honest("203.0.113.5:3478", "203.0.113.6:3479"),
        ];
        assert_eq!(choose(&runs), Some(1));
    }
}
