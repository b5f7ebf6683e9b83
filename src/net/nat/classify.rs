//! From [`Observations`] to a [`NatReport`]: pure, no sockets, no clock.
//!
//! RFC 4787 behaviour follows RFC 5780:
//! - §4.3 mapping: mapped(test I) == local means no NAT. Otherwise the mapping seen by the
//!   alternate IP equals test I's: endpoint-independent; else the alternate IP+port
//!   mapping equals the alternate IP's: address-dependent; else address-and-port-dependent.
//! - §4.4 filtering: test II (change IP and port) answered: endpoint-independent; else test
//!   III (change port) answered: address-dependent; both silent: address-and-port-dependent.
//!   A reply whose origin shows the server did not change address proves nothing and
//!   counts as "not tested" (P2PD likewise accepts replies only from the expected address).
//!
//! The P2PD type follows RFC 3489 §10.1 on the same evidence:
//! - nothing answered at all: 7 blocked;
//! - no NAT: 1 open internet if test II was answered, 2 UDP firewall if it was silent
//!   (P2PD never produces 2: inventory §9.11), 1 if it could not be tested (P2PD's
//!   "mapped == local is decisive");
//! - NAT and test II answered: 3 full cone;
//! - endpoint-independent mapping: 4 restrict if test III was answered, else 5;
//! - a mapping that depends on the destination: 6 symmetric. Here P2PD itself would say
//!   4 for an address-dependent mapping with address-dependent filtering (its change-port
//!   test is decisive on its own), but type 4 promises a reusable mapping, which such a
//!   NAT does not give; RFC 3489 calls it symmetric too;
//! - mapping not measured: P2PD's rule (test III answered: 4, else 6).
//!
//! Port allocation comes from the delta (`delta.rs`); hairpin, mapping and allocation are
//! reported only behind a NAT, where they mean something.

use std::net::SocketAddr;

use super::behaviour::{Allocation, FilteringBehaviour, MappingBehaviour};
use super::delta::classify_delta;
use super::observations::{Observations, Probe, ProbeKind, Reply};
use super::report::{NatReport, ProbeRtt};
use super::types::{NatInfo, NatType, PortRange};

/// What one filtering test established.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Heard {
    Yes,
    No,
    /// Not sent, or answered from an address that shows the server did not comply.
    Untested,
}

/// What the mapping tests established, including the case "not endpoint-independent,
/// but the alternate IP+port test is missing".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MappingEvidence {
    Known(MappingBehaviour),
    DependsOnDestination,
    Unknown,
}

/// Classify one run. Total: every input gives an answer, missing evidence is reported as
/// `None`/conservative types rather than as an error.
pub fn classify(obs: &Observations) -> NatReport {
    let delta = classify_delta(&obs.delta);
    let reply = |probe: &Option<Probe>, kind| probe.as_ref().and_then(|p| valid_reply(p, kind));
    let binding = reply(&obs.binding, ProbeKind::Binding);
    let alt_ip = reply(&obs.alt_ip, ProbeKind::AltIp).map(|r| canonical(r.mapped));
    let alt_ip_port = reply(&obs.alt_ip_port, ProbeKind::AltIpPort).map(|r| canonical(r.mapped));

    // Tests I-III all go to the primary address, so they share one mapping whatever the
    // NAT does; any of them gives it.
    let primary = binding
        .or_else(|| reply(&obs.change_ip_port, ProbeKind::ChangeIpPort))
        .or_else(|| reply(&obs.change_port, ProbeKind::ChangePort))
        .map(|r| canonical(r.mapped));
    // The mapping tests compare with the binding made from their own socket.
    let (mapping_base, mapping_local) = match &obs.mapping_socket {
        Some(m) => (
            reply(&m.binding, ProbeKind::MappingBinding).map(|r| canonical(r.mapped)),
            m.local,
        ),
        None => (primary, obs.local),
    };
    // External address, and the local address it must be compared with to spot a NAT.
    let seen = primary.map(|p| (p, obs.local)).or_else(|| {
        mapping_base
            .or(alt_ip)
            .or(alt_ip_port)
            .map(|m| (m, mapping_local))
    });
    let external = seen.map(|(e, _)| e);
    // Silence in tests II and III means filtering only if the primary address answers
    // at all; otherwise the server, not the NAT, may be what is silent.
    let (change_both, change_port) = match primary {
        Some(_) => (
            heard(&obs.change_ip_port, ProbeKind::ChangeIpPort),
            heard(&obs.change_port, ProbeKind::ChangePort),
        ),
        None => (Heard::Untested, Heard::Untested),
    };

    let mut report = NatReport {
        nat: NatInfo::new(NatType::BlockedNat, delta, PortRange::FULL),
        mapping: None,
        filtering: None,
        hairpin: None,
        allocation: None,
        local: obs.local,
        external,
        servers: servers(obs),
        rtts: rtts(obs),
        elapsed: obs.elapsed,
        lifetime: None,
        port_mapping: None,
    };
    let Some((external, external_local)) = seen else {
        return report;
    };

    report.filtering = filtering(change_both, change_port);
    let behind_nat = external != canonical(external_local);
    let nat_type = if behind_nat {
        let mapping = mapping(mapping_base, alt_ip, alt_ip_port);
        if let MappingEvidence::Known(m) = mapping {
            report.mapping = Some(m);
        }
        report.hairpin = obs.hairpin.map(|h| h.seen_from.is_some());
        report.allocation = Allocation::from_delta(delta);
        nat_type_behind_nat(change_both, change_port, mapping)
    } else if change_both == Heard::No {
        NatType::SymmetricUdpFirewall
    } else {
        NatType::OpenInternet
    };
    report.nat = NatInfo::new(nat_type, delta, PortRange::FULL);
    report
}

fn nat_type_behind_nat(
    change_both: Heard,
    change_port: Heard,
    mapping: MappingEvidence,
) -> NatType {
    if change_both == Heard::Yes {
        return NatType::FullCone;
    }
    match mapping {
        MappingEvidence::Known(MappingBehaviour::EndpointIndependent) => {
            if change_port == Heard::Yes {
                NatType::RestrictNat
            } else {
                NatType::RestrictPortNat
            }
        }
        MappingEvidence::Known(_) | MappingEvidence::DependsOnDestination => NatType::SymmetricNat,
        MappingEvidence::Unknown if change_port == Heard::Yes => NatType::RestrictNat,
        MappingEvidence::Unknown => NatType::SymmetricNat,
    }
}

fn filtering(change_both: Heard, change_port: Heard) -> Option<FilteringBehaviour> {
    match (change_both, change_port) {
        (Heard::Yes, _) => Some(FilteringBehaviour::EndpointIndependent),
        (Heard::No, Heard::Yes) => Some(FilteringBehaviour::AddressDependent),
        // A NAT that drops the change-port reply drops the change-both reply too, so a
        // silent test III settles it even when test II was not run.
        (_, Heard::No) => Some(FilteringBehaviour::AddressAndPortDependent),
        _ => None,
    }
}

fn mapping(
    primary: Option<SocketAddr>,
    alt_ip: Option<SocketAddr>,
    alt_ip_port: Option<SocketAddr>,
) -> MappingEvidence {
    match (primary, alt_ip) {
        (Some(p), Some(a)) if p == a => {
            MappingEvidence::Known(MappingBehaviour::EndpointIndependent)
        }
        (Some(_), Some(a)) => match alt_ip_port {
            Some(b) if b == a => MappingEvidence::Known(MappingBehaviour::AddressDependent),
            Some(_) => MappingEvidence::Known(MappingBehaviour::AddressAndPortDependent),
            None => MappingEvidence::DependsOnDestination,
        },
        _ => MappingEvidence::Unknown,
    }
}

fn heard(probe: &Option<Probe>, kind: ProbeKind) -> Heard {
    match probe {
        None => Heard::Untested,
        Some(p) => match p.reply {
            None => Heard::No,
            Some(_) if valid_reply(p, kind).is_some() => Heard::Yes,
            Some(_) => Heard::Untested,
        },
    }
}

/// The reply, if its origin is what the request asked for (RFC 5780 §7.2 CHANGE-REQUEST).
fn valid_reply(probe: &Probe, kind: ProbeKind) -> Option<Reply> {
    let reply = probe.reply?;
    let (sent, from) = (canonical(probe.server), canonical(reply.origin));
    let ok = match kind {
        ProbeKind::ChangeIpPort => from.ip() != sent.ip() && from.port() != sent.port(),
        ProbeKind::ChangePort => from.ip() == sent.ip() && from.port() != sent.port(),
        ProbeKind::Binding
        | ProbeKind::AltIp
        | ProbeKind::AltIpPort
        | ProbeKind::MappingBinding => true,
    };
    ok.then_some(reply)
}

/// IPv4-mapped IPv6 (from a dual-stack socket) compared as the IPv4 it is.
fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

fn servers(obs: &Observations) -> Vec<SocketAddr> {
    let mut out: Vec<SocketAddr> = Vec::new();
    for (_, probe) in obs.probes() {
        if !out.contains(&probe.server) {
            out.push(probe.server);
        }
    }
    out
}

fn rtts(obs: &Observations) -> Vec<ProbeRtt> {
    obs.probes()
        .filter_map(|(kind, p)| {
            p.reply.map(|r| ProbeRtt {
                probe: kind,
                server: p.server,
                rtt: r.rtt,
            })
        })
        .collect()
}

#[cfg(test)]
#[path = "classify_tests.rs"]
mod tests;
