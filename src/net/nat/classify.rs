//! From [`Observations`] to a [`NatReport`]: pure, no sockets, no clock.
//!
//! **Mapping** comes from the one mapping socket's view of every server (`mapping.rs`):
//! plain servers at two IPs are enough to tell endpoint-independent from dependent, and a
//! lying server is named, not believed.
//!
//! **Filtering** comes only from servers shown to change address ([`Capability`]): a change
//! reply heard anywhere proves it (RFC 5780 §4.4: test II heard on F, endpoint-independent;
//! else test III heard, address-dependent). Silence on F counts (address-and-port-
//! dependent) only from a server believed to change address: verified by a change reply
//! on M (whose filter is open to the alternates under an endpoint-independent mapping or no
//! NAT, so a server that answers there really changes address), or, where M's replies
//! cannot pass the NAT (a destination-dependent mapping), taken on trust from a claimed
//! alternate that answers. A server that answers a change request from the address it was
//! asked, refuses it, or whose alternate is implausible or dead tells nothing about
//! filtering. With no believed server, filtering is unknown, never guessed.
//!
//! **P2PD type** (RFC 3489 §10.1 on the same evidence): nothing answered, 7; no NAT, 1 when
//! the path is open (a RESPONSE-PORT reply reached a socket that never sent, or test II
//! was heard and the open-path test could not run), else 2 (a stateful firewall); behind
//! a NAT with an endpoint-independent mapping, 3/4/5 by filtering; a destination-dependent
//! mapping, 6 (P2PD would call an address-dependent NAT with address-dependent filtering
//! 4, but its mapping is not reusable). Where a field the type rests on is unknown, P2PD's
//! own default assumption fills it (restrict port, 5, for an endpoint-independent or
//! unknown mapping; 2 without a NAT) and the report lists the field in `assumed`.
//! **Delta** is P2PD's scoring (`delta.rs`); too few samples to see a pattern gives P2PD's
//! default, random, with "delta" in `assumed`.

use std::net::SocketAddr;

use super::behaviour::{Allocation, FilteringBehaviour, MappingBehaviour};
use super::delta::{P2PD_DELTA_THRESHOLD, classify_delta};
use super::mapping::{self, Evidence, Sample};
use super::observations::{Observations, Outcome, ServerObs, canonical};
use super::report::{Assumed, NatReport, ProbeRtt};
use super::server_kind::{ServerKind, ServerReport};
use super::types::{Delta, NatInfo, NatType, PortRange};

/// Whether a server's silence on change requests may be read as filtering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Capability {
    /// Shown by a change reply.
    Verified,
    /// Taken on trust: a working alternate, on a path where its change replies are
    /// filtered whatever the server does.
    Trusted,
    /// Not a changing server (the kind says why).
    Not(ServerKind),
    /// Still being found out.
    Pending,
}

/// The mapping verdict of a run (see `mapping.rs`).
pub fn mapping_verdict(obs: &Observations) -> mapping::Verdict {
    mapping::judge(&mapping_samples(obs))
}

fn mapping_samples(obs: &Observations) -> Vec<Sample> {
    let mut samples = Vec::new();
    for (i, s) in obs.servers.iter().enumerate() {
        for (dest, outcome) in s.mapping_tests() {
            if let Some(r) = outcome.heard() {
                samples.push(Sample {
                    server: i,
                    dest,
                    mapped: r.mapped,
                });
            }
        }
    }
    samples
}

/// Whether `obs` shows no NAT: the external IP (majority) is the local IP.
fn no_nat(verdict: &mapping::Verdict, obs: &Observations) -> Option<bool> {
    verdict
        .external_ip
        .map(|ip| ip.to_canonical() == obs.local_ip.to_canonical())
}

/// Whether a server changes address (see the module docs). `open_to_alternates`: M's
/// filter lets replies from the alternate addresses in (no NAT or an endpoint-independent
/// mapping: both change replies; address-dependent: the change-port reply only).
pub fn capability(s: &ServerObs, mapping: Evidence, nat: Option<bool>) -> Capability {
    let changes = [s.change_both, s.change_port, s.verify_both, s.verify_port];
    if changes.iter().any(|o| o.heard().is_some()) {
        return Capability::Verified;
    }
    let strayed = changes.iter().find_map(|o| match o {
        Outcome::Strayed(r) => Some(*r),
        _ => None,
    });
    if let (Some(r), Some(_)) = (strayed, s.claimed_alternate) {
        return Capability::Not(ServerKind::IgnoresChange { from: r.origin });
    }
    let Some(claimed) = s.claimed_alternate else {
        return match refused(s) {
            Some(code) => Capability::Not(ServerKind::RefusesChange(code)),
            None => Capability::Not(ServerKind::Plain),
        };
    };
    if let Err(why) = super::observations::plausible_alternate(s.primary, claimed) {
        return Capability::Not(ServerKind::BadAlternate(claimed, why));
    }
    if let Some(code) = refused(s) {
        return Capability::Not(ServerKind::RefusesChange(code));
    }
    let alt_tests = [s.map_alt_ip, s.map_alt_both];
    if !alt_tests.iter().any(|o| o.heard().is_some()) {
        return if alt_tests.iter().all(Outcome::is_final) {
            Capability::Not(ServerKind::DeadAlternate(claimed))
        } else {
            Capability::Pending
        };
    }
    // Which of M's change replies can pass M's filter.
    let must_pass: &[Outcome] = match (nat, mapping) {
        (Some(false), _) | (_, Evidence::Known(MappingBehaviour::EndpointIndependent)) => {
            &[s.verify_both, s.verify_port]
        }
        (_, Evidence::Known(MappingBehaviour::AddressDependent)) => &[s.verify_port],
        (_, Evidence::Unknown) if s.mapping_tests().iter().any(|(_, o)| !o.is_final()) => {
            return Capability::Pending;
        }
        _ => return Capability::Trusted,
    };
    if must_pass.iter().all(Outcome::is_final) {
        Capability::Not(ServerKind::SilentOnChange)
    } else {
        Capability::Pending
    }
}

fn refused(s: &ServerObs) -> Option<u16> {
    [s.change_both, s.change_port].iter().find_map(|o| match o {
        Outcome::Refused(code) => Some(*code),
        _ => None,
    })
}

/// Filtering, and the index of the server that showed it.
pub fn filtering(obs: &Observations, caps: &[Capability]) -> Option<(FilteringBehaviour, usize)> {
    let believed = |i: &usize| matches!(caps[*i], Capability::Verified | Capability::Trusted);
    let indices = || (0..obs.servers.len()).filter(believed);
    // A change reply opens a filter only when both filtering sockets heard it (see
    // `ProbeKind::ConfirmIpPort`); while the second is pending nothing is decided.
    if let Some(i) = indices().find(|&i| obs.servers[i].filter_both().heard().is_some()) {
        return Some((FilteringBehaviour::EndpointIndependent, i));
    }
    // Address-dependent once test II can no longer be heard on that server.
    if let Some(i) = indices().find(|&i| {
        let s = &obs.servers[i];
        s.filter_port().heard().is_some() && s.filter_both().is_final()
    }) {
        return Some((FilteringBehaviour::AddressDependent, i));
    }
    // Prefer verified servers for a verdict from silence.
    let silent = |i: &usize| {
        let s = &obs.servers[*i];
        s.filter_both() == Outcome::Silent && s.filter_port() == Outcome::Silent
    };
    indices()
        .filter(silent)
        .min_by_key(|&i| !matches!(caps[i], Capability::Verified))
        .map(|i| (FilteringBehaviour::AddressAndPortDependent, i))
}

/// Without a NAT: `Some(true)` when something unsolicited reached a socket that never
/// sent, `Some(false)` when a server shown to honour RESPONSE-PORT could not reach it.
pub fn open_path(obs: &Observations) -> Option<bool> {
    let servers = &obs.servers;
    // Both never-sending sockets must have been reached: stale NAT state can let a reply
    // through to one reused port, not to two.
    let reached = |f: fn(&ServerObs) -> Outcome| servers.iter().any(|s| f(s).heard().is_some());
    if reached(|s| s.open_path) && reached(|s| s.open_path2) {
        return Some(true);
    }
    servers
        .iter()
        .any(|s| {
            s.open_check.heard().is_some()
                && (s.open_path == Outcome::Silent || s.open_path2 == Outcome::Silent)
        })
        .then_some(false)
}

/// Classify one run. Total: every input gives an answer; what is missing is reported as
/// unknown or assumed, never as an error.
pub fn classify(obs: &Observations) -> NatReport {
    let verdict = mapping_verdict(obs);
    let nat = no_nat(&verdict, obs).map(|none| !none);
    let caps: Vec<Capability> = obs
        .servers
        .iter()
        .map(|s| capability(s, verdict.evidence, nat))
        .collect();
    let filtering = filtering(obs, &caps);
    let mut report = NatReport::empty(obs.local_ip);
    report.elapsed = obs.elapsed;
    report.loss = obs.loss.rate();
    report.untested = obs.untested.clone();
    report.servers = probed_addresses(obs);
    report.rtts = rtts(obs);
    report.stun = server_reports(obs, &verdict, &caps);

    let Some(nat) = nat else {
        // Nothing answered (blocked) or nothing was sent (untested).
        report.nat = NatInfo::new(NatType::BlockedNat, Delta::NotApplicable, PortRange::FULL);
        return report;
    };
    // The socket reported as local/external: the server that showed filtering, else the
    // first believed server that answered test I, else M.
    let liar = |i: usize| verdict.disagreeing.iter().any(|(l, _)| *l == i);
    let chosen = filtering.map(|(_, i)| i).or_else(|| {
        (0..obs.servers.len()).find(|&i| !liar(i) && obs.servers[i].binding.heard().is_some())
    });
    let (local, external) = match chosen.and_then(|i| {
        Some((
            obs.servers[i].filter_local?,
            obs.servers[i].binding.heard()?,
        ))
    }) {
        Some((local, reply)) => (local, reply.mapped),
        None => match (obs.mapping_local, first_mapping(obs, &verdict)) {
            (Some(l), Some(m)) => (l, m),
            _ => (
                SocketAddr::new(obs.local_ip, 0),
                SocketAddr::new(obs.local_ip, 0),
            ),
        },
    };
    report.local = local;
    report.external = Some(canonical(external));

    let mut assumed = Vec::new();
    let mut filtering = filtering.map(|(f, _)| f);
    let measured = classify_delta(&obs.delta);
    let enough = obs.delta.successes() > 2 * P2PD_DELTA_THRESHOLD;
    let delta = match (nat, measured) {
        (_, d) if obs.delta_tests == 0 => d,
        (false, _) => Delta::Equal,
        (true, Delta::NotApplicable) => {
            assumed.push(Assumed::Delta);
            Delta::Random
        }
        (true, Delta::Random) if !enough => {
            assumed.push(Assumed::Delta);
            Delta::Random
        }
        (true, d) => d,
    };
    let nat_type = if nat {
        report.mapping = match verdict.evidence {
            Evidence::Known(m) => Some(m),
            _ => None,
        };
        report.hairpin = obs.hairpin.and_then(|h| match h.outcome {
            Outcome::Heard(_) => Some(true),
            Outcome::Silent => Some(false),
            _ => None,
        });
        report.allocation = Allocation::from_delta(delta);
        type_behind_nat(verdict.evidence, filtering, &mut assumed)
    } else {
        let open = open_path(obs);
        report.open_path = open;
        if open == Some(true) {
            filtering = Some(FilteringBehaviour::EndpointIndependent);
        }
        match (open, filtering) {
            (Some(true), _) => NatType::OpenInternet,
            (None, Some(FilteringBehaviour::EndpointIndependent)) => NatType::OpenInternet,
            (Some(false), _) | (None, Some(_)) => NatType::SymmetricUdpFirewall,
            (None, None) => {
                assumed.push(Assumed::Filtering);
                NatType::SymmetricUdpFirewall
            }
        }
    };
    report.filtering = filtering;
    report.nat = NatInfo::new(nat_type, delta, PortRange::FULL);
    assumed.sort();
    assumed.dedup();
    report.assumed = assumed;
    report
}

fn type_behind_nat(
    mapping: Evidence,
    filtering: Option<FilteringBehaviour>,
    assumed: &mut Vec<Assumed>,
) -> NatType {
    use FilteringBehaviour as F;
    if mapping.is_dependent() {
        return NatType::SymmetricNat;
    }
    if mapping == Evidence::Unknown {
        assumed.push(Assumed::Mapping);
    }
    match filtering {
        Some(F::EndpointIndependent) => NatType::FullCone,
        Some(F::AddressDependent) => NatType::RestrictNat,
        Some(F::AddressAndPortDependent) => NatType::RestrictPortNat,
        None => {
            assumed.push(Assumed::Filtering);
            NatType::RestrictPortNat
        }
    }
}

fn first_mapping(obs: &Observations, verdict: &mapping::Verdict) -> Option<SocketAddr> {
    mapping_samples(obs)
        .into_iter()
        .find(|s| !verdict.disagreeing.iter().any(|(l, _)| *l == s.server))
        .map(|s| s.mapped)
}

/// What each server turned out to be.
fn server_reports(
    obs: &Observations,
    verdict: &mapping::Verdict,
    caps: &[Capability],
) -> Vec<ServerReport> {
    obs.servers
        .iter()
        .zip(caps)
        .enumerate()
        .map(|(i, (s, cap))| {
            let kind =
                if let Some((_, reported)) = verdict.disagreeing.iter().find(|(l, _)| *l == i) {
                    ServerKind::Disagrees {
                        reported: *reported,
                    }
                } else if !s.answered() {
                    unanswered_kind(s)
                } else {
                    match cap {
                        Capability::Verified => ServerKind::Changes,
                        Capability::Trusted => ServerKind::ChangesUnverified,
                        Capability::Not(kind) => kind.clone(),
                        // The run ended before the change tests settled.
                        Capability::Pending => match s.claimed_alternate {
                            Some(_) => ServerKind::ChangesUnverified,
                            None => ServerKind::Plain,
                        },
                    }
                };
            ServerReport {
                name: s.name.clone(),
                address: Some(s.primary),
                kind,
                alternate: s.claimed_alternate,
                mapped: s.first_reply().map(|r| r.mapped),
                rtt: s.rtt(),
                software: s.software.clone(),
            }
        })
        .collect()
}

/// Why a server that never gave a usable answer did not.
fn unanswered_kind(s: &ServerObs) -> ServerKind {
    let tests = [s.binding, s.map_primary];
    if let Some(m) = tests.iter().find_map(|o| match o {
        Outcome::Unusable(m) => Some(*m),
        _ => None,
    }) {
        return ServerKind::BadMapped(m);
    }
    if let Some(r) = tests.iter().find_map(|o| match o {
        Outcome::Strayed(r) => Some(*r),
        _ => None,
    }) {
        return ServerKind::Strays { from: r.origin };
    }
    if s.cut {
        ServerKind::Cut
    } else {
        ServerKind::Silent
    }
}

/// Every address a probe was sent to, first use first.
fn probed_addresses(obs: &Observations) -> Vec<SocketAddr> {
    let mut out: Vec<SocketAddr> = Vec::new();
    for s in &obs.servers {
        for (_, dest, outcome) in s.tests() {
            if outcome != Outcome::NotSent && !out.contains(&dest) {
                out.push(dest);
            }
        }
    }
    out
}

fn rtts(obs: &Observations) -> Vec<ProbeRtt> {
    obs.servers
        .iter()
        .flat_map(|s| s.tests())
        .filter_map(|(probe, server, outcome)| {
            outcome.heard().map(|r| ProbeRtt {
                probe,
                server,
                rtt: r.rtt,
            })
        })
        .collect()
}

#[cfg(test)]
#[path = "classify_tests.rs"]
mod tests;
