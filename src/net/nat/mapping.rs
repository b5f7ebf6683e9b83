//! RFC 4787 mapping behaviour from the mappings one socket (M) got from many
//! destinations, plain servers included, cross-checked so that one lying server is named
//! instead of believed. Pure.
//!
//! The evidence is a list of (destination, mapped address) pairs, all from M. Rules:
//! 1. **External IP.** Every server sees the same public IP of one NAT, whatever its
//!    mapping behaviour. A server whose view of M's IP differs from what a strict majority
//!    (of at least two servers) saw is a liar or on another path: it is named and left out.
//! 2. **Endpoint-independent**: every remaining pair shows the same mapping and the pairs
//!    cover at least two destination IPs. If all servers but one agree (covering two IPs
//!    among themselves), the one is named as disagreeing and the mapping is still EIM:
//!    under a destination-dependent NAT two servers at different IPs cannot agree.
//! 3. Otherwise the mapping depends on the destination. Pairs with the same destination
//!    IP and different ports tell the two kinds apart (RFC 5780 §4.3): same mapping for
//!    all of them, address-dependent; a different one for any, address-and-port-dependent.
//!    With no such pair it stays "depends on the destination".
//! 4. With one destination IP only, a same-IP pair with different mappings still proves
//!    address-and-port dependence; equal mappings prove nothing.

use std::net::{IpAddr, SocketAddr};

use super::behaviour::MappingBehaviour;
use super::observations::canonical;

/// One mapping M saw: server index (into the run's servers), destination, mapped address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    pub server: usize,
    pub dest: SocketAddr,
    pub mapped: SocketAddr,
}

/// What the samples establish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evidence {
    Known(MappingBehaviour),
    /// Not endpoint-independent, but no same-IP pair to say how it depends.
    DependsOnDestination,
    /// Too little to tell (one destination IP, or nothing).
    Unknown,
}

impl Evidence {
    /// Whether the mapping is known to change with the destination.
    pub fn is_dependent(self) -> bool {
        matches!(
            self,
            Evidence::DependsOnDestination
                | Evidence::Known(
                    MappingBehaviour::AddressDependent | MappingBehaviour::AddressAndPortDependent
                )
        )
    }
}

/// The verdict and the servers it left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub evidence: Evidence,
    /// External IP the majority saw (or the only one seen).
    pub external_ip: Option<IpAddr>,
    /// Servers left out, with the mapping each reported.
    pub disagreeing: Vec<(usize, SocketAddr)>,
}

/// Judges M's samples (see the module docs).
pub fn judge(samples: &[Sample]) -> Verdict {
    let samples: Vec<Sample> = samples
        .iter()
        .map(|s| Sample {
            dest: canonical(s.dest),
            mapped: canonical(s.mapped),
            ..*s
        })
        .collect();
    let mut disagreeing = Vec::new();

    // 1. External IP by servers (one vote each: its first sample).
    let mut votes: Vec<(IpAddr, usize)> = Vec::new();
    let mut voters = 0;
    for (i, s) in samples.iter().enumerate() {
        if samples[..i].iter().any(|o| o.server == s.server) {
            continue;
        }
        voters += 1;
        let ip = s.mapped.ip();
        match votes.iter_mut().find(|(v, _)| *v == ip) {
            Some((_, n)) => *n += 1,
            None => votes.push((ip, 1)),
        }
    }
    let majority = votes
        .iter()
        .find(|(_, n)| *n >= 2 && *n * 2 > voters)
        .map(|(ip, _)| *ip);
    let external_ip = majority.or_else(|| samples.first().map(|s| s.mapped.ip()));
    let mut kept: Vec<Sample> = Vec::new();
    for s in &samples {
        let liar = majority.is_some_and(|m| m != s.mapped.ip());
        if liar {
            if !disagreeing.iter().any(|(i, _)| *i == s.server) {
                disagreeing.push((s.server, s.mapped));
            }
        } else {
            kept.push(*s);
        }
    }

    let evidence = behaviour(&kept, &mut disagreeing);
    Verdict {
        evidence,
        external_ip,
        disagreeing,
    }
}

fn distinct_ips(samples: &[Sample]) -> usize {
    let mut ips: Vec<IpAddr> = samples.iter().map(|s| s.dest.ip()).collect();
    ips.sort();
    ips.dedup();
    ips.len()
}

fn behaviour(kept: &[Sample], disagreeing: &mut Vec<(usize, SocketAddr)>) -> Evidence {
    let Some(first) = kept.first() else {
        return Evidence::Unknown;
    };
    if kept.iter().all(|s| s.mapped == first.mapped) {
        return if distinct_ips(kept) >= 2 {
            Evidence::Known(MappingBehaviour::EndpointIndependent)
        } else {
            Evidence::Unknown
        };
    }
    // 2. All servers but one agree?
    let mut counts: Vec<(SocketAddr, usize)> = Vec::new();
    for s in kept {
        match counts.iter_mut().find(|(m, _)| *m == s.mapped) {
            Some((_, n)) => *n += 1,
            None => counts.push((s.mapped, 1)),
        }
    }
    let common = counts
        .iter()
        .max_by_key(|(_, n)| *n)
        .map(|(m, _)| *m)
        .unwrap_or(first.mapped);
    let mut deviants: Vec<usize> = kept
        .iter()
        .filter(|s| s.mapped != common)
        .map(|s| s.server)
        .collect();
    deviants.dedup();
    let agreeing: Vec<Sample> = kept
        .iter()
        .filter(|s| !deviants.contains(&s.server))
        .copied()
        .collect();
    let agreeing_servers = {
        let mut v: Vec<usize> = agreeing.iter().map(|s| s.server).collect();
        v.sort_unstable();
        v.dedup();
        v.len()
    };
    if deviants.len() == 1 && agreeing_servers >= 2 && distinct_ips(&agreeing) >= 2 {
        if let Some(s) = kept
            .iter()
            .find(|s| s.server == deviants[0] && s.mapped != common)
        {
            disagreeing.push((s.server, s.mapped));
        }
        return Evidence::Known(MappingBehaviour::EndpointIndependent);
    }
    // 3./4. Same-IP pairs.
    let mut pairs = 0;
    let mut differ = false;
    for (i, a) in kept.iter().enumerate() {
        for b in &kept[i + 1..] {
            if a.dest.ip() == b.dest.ip() && a.dest.port() != b.dest.port() {
                pairs += 1;
                differ |= a.mapped != b.mapped;
            }
        }
    }
    match (pairs, differ) {
        (_, true) => Evidence::Known(MappingBehaviour::AddressAndPortDependent),
        (0, false) if distinct_ips(kept) >= 2 => Evidence::DependsOnDestination,
        (_, false) if distinct_ips(kept) >= 2 => {
            Evidence::Known(MappingBehaviour::AddressDependent)
        }
        _ => Evidence::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use MappingBehaviour::*;

    fn s(server: usize, dest: &str, mapped: &str) -> Sample {
        Sample {
            server,
            dest: dest.parse().unwrap(),
            mapped: mapped.parse().unwrap(),
        }
    }

    const EXT: &str = "203.0.113.100:20000";

    #[test]
    fn plain_servers_at_two_ips_tell_eim_from_dependent() {
        let eim = [
            s(0, "203.0.113.10:3478", EXT),
            s(1, "203.0.113.11:3478", EXT),
        ];
        assert_eq!(judge(&eim).evidence, Evidence::Known(EndpointIndependent));
        let dep = [
            s(0, "203.0.113.10:3478", EXT),
            s(1, "203.0.113.11:3478", "203.0.113.100:20001"),
        ];
        assert_eq!(judge(&dep).evidence, Evidence::DependsOnDestination);
        // One server alone proves nothing.
        assert_eq!(judge(&eim[..1]).evidence, Evidence::Unknown);
    }

    #[test]
    fn one_ip_on_two_ports_tells_adm_from_apdm() {
        let adm = [
            s(0, "203.0.113.10:3478", EXT),
            s(1, "203.0.113.12:3478", "203.0.113.100:20001"),
            s(2, "203.0.113.12:3479", "203.0.113.100:20001"),
        ];
        assert_eq!(judge(&adm).evidence, Evidence::Known(AddressDependent));
        let apdm = [
            s(0, "203.0.113.10:3478", EXT),
            s(1, "203.0.113.12:3478", "203.0.113.100:20001"),
            s(2, "203.0.113.12:3479", "203.0.113.100:20002"),
        ];
        assert_eq!(
            judge(&apdm).evidence,
            Evidence::Known(AddressAndPortDependent)
        );
        // A same-IP pair alone: different mappings prove port dependence.
        assert_eq!(
            judge(&apdm[1..]).evidence,
            Evidence::Known(AddressAndPortDependent)
        );
        assert_eq!(judge(&adm[1..]).evidence, Evidence::Unknown);
    }

    #[test]
    fn rfc5780_server_alone_gives_all_three() {
        let p = "203.0.113.1:3478";
        let tests = |m: [&str; 4]| {
            [
                s(0, p, m[0]),
                s(0, "203.0.113.2:3478", m[1]),
                s(0, "203.0.113.2:3479", m[2]),
                s(0, "203.0.113.1:3479", m[3]),
            ]
        };
        let e = |m| judge(&tests(m)).evidence;
        assert_eq!(e([EXT; 4]), Evidence::Known(EndpointIndependent));
        let (a, b) = ("203.0.113.100:1", "203.0.113.100:2");
        assert_eq!(e([EXT, a, a, EXT]), Evidence::Known(AddressDependent));
        assert_eq!(
            e([EXT, a, b, "203.0.113.100:3"]),
            Evidence::Known(AddressAndPortDependent)
        );
    }

    #[test]
    fn a_lying_server_is_named_not_believed() {
        // Wrong IP: outvoted by the two that agree.
        let v = judge(&[
            s(0, "203.0.113.10:3478", "198.51.100.77:1111"),
            s(1, "203.0.113.11:3478", EXT),
            s(2, "203.0.113.12:3478", EXT),
        ]);
        assert_eq!(v.evidence, Evidence::Known(EndpointIndependent));
        assert_eq!(v.external_ip, Some("203.0.113.100".parse().unwrap()));
        assert_eq!(
            v.disagreeing,
            vec![(0, "198.51.100.77:1111".parse().unwrap())]
        );
        // Right IP, wrong port: all others agree at two IPs, so EIM and the one is named.
        let v = judge(&[
            s(0, "203.0.113.10:3478", EXT),
            s(1, "203.0.113.11:3478", "203.0.113.100:9"),
            s(2, "203.0.113.12:3478", EXT),
        ]);
        assert_eq!(v.evidence, Evidence::Known(EndpointIndependent));
        assert_eq!(v.disagreeing, vec![(1, "203.0.113.100:9".parse().unwrap())]);
        // Two against one at the same IP is no majority of IPs: dependent.
        let v = judge(&[
            s(0, "203.0.113.12:3478", EXT),
            s(1, "203.0.113.12:3479", EXT),
            s(2, "203.0.113.11:3478", "203.0.113.100:9"),
        ]);
        assert_eq!(v.evidence, Evidence::Known(AddressDependent));
        assert!(v.disagreeing.is_empty());
    }
}
