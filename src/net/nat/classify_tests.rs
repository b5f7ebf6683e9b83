//! Table tests for `classify`: one row per NAT variant of the lab (tests/natlab/lab.sh).
//! Each row's observations come from a small simulated NAT fed the same probe sequence
//! the driver sends, so a row states how the NAT behaves, not what the probes should see.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::*;
use crate::net::nat::observations::{DeltaSamples, HairpinProbe, MappingSocket, PortSample};
use crate::net::nat::types::Delta;

use FilteringBehaviour as F;
use MappingBehaviour as M;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

const PRIMARY: &str = "203.0.113.1:3478";
const CHANGED_PORT: &str = "203.0.113.1:3479";
const ALT_IP: &str = "203.0.113.2:3478";
const ALT_IP_PORT: &str = "203.0.113.2:3479";
const PUBLIC_IP: &str = "203.0.113.100";

#[derive(Clone, Copy)]
enum Alloc {
    Preserve,
    /// Deterministic scramble of the key: EIM/ADM "hash" mappings of the lab.
    Hash,
    /// One counter for every new mapping.
    Sequential,
    /// Scrambled counter.
    Random,
}

#[derive(Clone, Copy)]
struct Lab {
    nat: bool,
    mapping: MappingBehaviour,
    /// `None`: no filtering at all.
    filter: Option<FilteringBehaviour>,
    alloc: Alloc,
    hairpin: bool,
    drop_all: bool,
}

/// A NAT's state while the probes run.
struct SimNat {
    lab: Lab,
    /// (internal endpoint, destination key, external port).
    mappings: Vec<(SocketAddr, Option<SocketAddr>, u16)>,
    /// (external endpoint, destination) pairs that saw outbound traffic.
    sent: Vec<(SocketAddr, SocketAddr)>,
    counter: u32,
}

fn scramble(x: u32) -> u32 {
    let x = x.wrapping_mul(0x9E37_79B1) ^ 0x5bd1_e995;
    x ^ (x >> 15)
}

impl SimNat {
    fn new(lab: Lab) -> SimNat {
        SimNat {
            lab,
            mappings: Vec::new(),
            sent: Vec::new(),
            counter: 0,
        }
    }

    /// Sends from `local` to `dst`; returns the source address `dst` sees.
    fn send(&mut self, local: SocketAddr, dst: SocketAddr) -> SocketAddr {
        let external = if self.lab.nat {
            let key = match self.lab.mapping {
                M::EndpointIndependent => None,
                M::AddressDependent => Some(SocketAddr::new(dst.ip(), 0)),
                M::AddressAndPortDependent => Some(dst),
            };
            let port = match self
                .mappings
                .iter()
                .find(|(l, k, _)| *l == local && *k == key)
            {
                Some((_, _, port)) => *port,
                None => {
                    let port = self.allocate(local, key);
                    self.mappings.push((local, key, port));
                    port
                }
            };
            SocketAddr::new(PUBLIC_IP.parse().unwrap(), port)
        } else {
            local
        };
        self.sent.push((external, dst));
        external
    }

    fn allocate(&mut self, local: SocketAddr, key: Option<SocketAddr>) -> u16 {
        self.counter += 1;
        let key_bits = key.map_or(0, |k| match k.ip() {
            IpAddr::V4(ip) => u32::from(ip) ^ u32::from(k.port()),
            IpAddr::V6(_) => 6,
        });
        let offset = match self.lab.alloc {
            Alloc::Preserve => return local.port(),
            Alloc::Hash => scramble(u32::from(local.port()) ^ scramble(key_bits)) % 16384,
            Alloc::Sequential => self.counter,
            Alloc::Random => scramble(self.counter) % 40000,
        };
        u16::try_from(20000 + offset).unwrap()
    }

    /// Whether a packet from `from` to our `external` endpoint gets in.
    fn admits(&self, external: SocketAddr, from: SocketAddr) -> bool {
        let to_us = |pred: &dyn Fn(&SocketAddr) -> bool| {
            self.sent.iter().any(|(e, d)| *e == external && pred(d))
        };
        match self.lab.filter {
            _ if self.lab.drop_all => false,
            None | Some(F::EndpointIndependent) => true,
            Some(F::AddressDependent) => to_us(&|d| d.ip() == from.ip()),
            Some(F::AddressAndPortDependent) => to_us(&|d| *d == from),
        }
    }

    fn stun(&mut self, local: SocketAddr, server: &str, origin: &str) -> Option<Probe> {
        let (server, origin) = (addr(server), addr(origin));
        let external = self.send(local, server);
        Some(if self.admits(external, origin) {
            Probe::answered(server, external, origin, Duration::from_millis(3))
        } else {
            Probe::silent(server)
        })
    }

    fn delta_round(
        &mut self,
        locals: impl Iterator<Item = u16>,
        local_ip: IpAddr,
    ) -> Vec<Option<PortSample>> {
        locals
            .map(|port| {
                let local = SocketAddr::new(local_ip, port);
                let mapped = self.send(local, addr(PRIMARY));
                (!self.lab.drop_all).then_some(PortSample {
                    local: port,
                    mapped: mapped.port(),
                })
            })
            .collect()
    }

    /// The probe orders `probe.rs` allows: on one socket, the filtering tests before
    /// anything reaches the alternate IP; or the mapping tests from a second socket,
    /// interleaved with the filtering tests. Then hairpin and the two delta rounds.
    fn observe(self) -> Observations {
        self.observe_with(false)
    }

    fn observe_with(mut self, mapping_socket: bool) -> Observations {
        let ip: IpAddr = if self.lab.nat {
            "10.77.0.10"
        } else {
            "198.51.100.10"
        }
        .parse()
        .unwrap();
        let local = SocketAddr::new(ip, 40000);
        let mut obs = Observations::new(local);
        if mapping_socket {
            let second = SocketAddr::new(ip, 40002);
            obs.binding = self.stun(local, PRIMARY, PRIMARY);
            let binding = self.stun(second, PRIMARY, PRIMARY);
            obs.mapping_socket = Some(MappingSocket {
                local: second,
                binding,
            });
            obs.alt_ip = self.stun(second, ALT_IP, ALT_IP);
            obs.change_ip_port = self.stun(local, PRIMARY, ALT_IP_PORT);
            obs.alt_ip_port = self.stun(second, ALT_IP_PORT, ALT_IP_PORT);
            obs.change_port = self.stun(local, PRIMARY, CHANGED_PORT);
        } else {
            obs.binding = self.stun(local, PRIMARY, PRIMARY);
            obs.change_ip_port = self.stun(local, PRIMARY, ALT_IP_PORT);
            obs.change_port = self.stun(local, PRIMARY, CHANGED_PORT);
            obs.alt_ip = self.stun(local, ALT_IP, ALT_IP);
            obs.alt_ip_port = self.stun(local, ALT_IP_PORT, ALT_IP_PORT);
        }
        if let Some(target) = obs.binding.and_then(|p| p.reply).map(|r| r.mapped) {
            let sender = SocketAddr::new(ip, 40001);
            let seen_from = match (self.lab.nat, self.lab.hairpin) {
                (true, false) => None,
                _ => Some(self.send(sender, target)),
            };
            obs.hairpin = Some(HairpinProbe { target, seen_from });
        }
        obs.delta = DeltaSamples {
            random: self.delta_round((0..12u16).map(|i| 4000 + i * 4919), ip),
            consecutive: self.delta_round(31000..31012, ip),
        };
        obs.elapsed = Duration::from_millis(20);
        obs
    }
}

const NAT: Lab = Lab {
    nat: true,
    mapping: M::EndpointIndependent,
    filter: Some(F::AddressAndPortDependent),
    alloc: Alloc::Hash,
    hairpin: true,
    drop_all: false,
};

struct Row {
    variant: &'static str,
    lab: Lab,
    nat_type: NatType,
    mapping: Option<MappingBehaviour>,
    filtering: Option<FilteringBehaviour>,
    hairpin: Option<bool>,
    delta: Delta,
    allocation: Option<Allocation>,
}

#[rustfmt::skip]
fn rows() -> Vec<Row> {
    let row = |variant, lab, nat_type, mapping, filtering, hairpin, delta, allocation| Row {
        variant, lab, nat_type, mapping, filtering, hairpin, delta, allocation,
    };
    let no_nat = Lab { nat: false, filter: None, ..NAT };
    vec![
        row("none", no_nat, NatType::OpenInternet,
            None, Some(F::EndpointIndependent), None, Delta::Equal, None),
        row("firewall", Lab { filter: Some(F::AddressAndPortDependent), ..no_nat },
            NatType::SymmetricUdpFirewall,
            None, Some(F::AddressAndPortDependent), None, Delta::Equal, None),
        row("full-cone", Lab { filter: Some(F::EndpointIndependent), ..NAT }, NatType::FullCone,
            Some(M::EndpointIndependent), Some(F::EndpointIndependent), Some(true),
            Delta::Random, Some(Allocation::Random)),
        row("restricted", Lab { filter: Some(F::AddressDependent), ..NAT }, NatType::RestrictNat,
            Some(M::EndpointIndependent), Some(F::AddressDependent), Some(true),
            Delta::Random, Some(Allocation::Random)),
        row("port-restricted", NAT, NatType::RestrictPortNat,
            Some(M::EndpointIndependent), Some(F::AddressAndPortDependent), Some(true),
            Delta::Random, Some(Allocation::Random)),
        row("symmetric-random",
            Lab { mapping: M::AddressAndPortDependent, alloc: Alloc::Random, ..NAT },
            NatType::SymmetricNat,
            Some(M::AddressAndPortDependent), Some(F::AddressAndPortDependent), Some(true),
            Delta::Random, Some(Allocation::Random)),
        row("symmetric-sequential",
            Lab { mapping: M::AddressAndPortDependent, alloc: Alloc::Sequential, ..NAT },
            NatType::SymmetricNat,
            Some(M::AddressAndPortDependent), Some(F::AddressAndPortDependent), Some(true),
            Delta::Independent(1), Some(Allocation::Sequential)),
        row("addr-dependent",
            Lab { mapping: M::AddressDependent, filter: Some(F::AddressDependent), ..NAT },
            NatType::SymmetricNat,
            Some(M::AddressDependent), Some(F::AddressDependent), Some(true),
            Delta::Random, Some(Allocation::Random)),
        row("masquerade", Lab { alloc: Alloc::Preserve, hairpin: false, ..NAT },
            NatType::RestrictPortNat,
            Some(M::EndpointIndependent), Some(F::AddressAndPortDependent), Some(false),
            Delta::Equal, Some(Allocation::Preserving)),
        row("blocked", Lab { drop_all: true, ..NAT }, NatType::BlockedNat,
            None, None, None, Delta::NotApplicable, None),
    ]
}

#[test]
fn every_lab_variant_classifies_as_built() {
    for mapping_socket in [false, true] {
        for row in rows() {
            let report = classify(&SimNat::new(row.lab).observe_with(mapping_socket));
            let got = (
                report.nat_type(),
                report.mapping,
                report.filtering,
                report.hairpin,
                report.delta(),
                report.allocation,
            );
            let want = (
                row.nat_type,
                row.mapping,
                row.filtering,
                row.hairpin,
                row.delta,
                row.allocation,
            );
            assert_eq!(
                got, want,
                "variant {} (mapping socket: {mapping_socket}):\n{report}",
                row.variant
            );
        }
    }
}

/// Why the order matters: on one socket, mapping tests sent before the filtering tests
/// open an address-dependent filter to the alternate IP, and a restricted cone looks
/// like a full cone.
#[test]
fn mapping_tests_first_on_one_socket_fake_a_full_cone() {
    let lab = Lab {
        filter: Some(F::AddressDependent),
        ..NAT
    };
    let mut sim = SimNat::new(lab);
    let local = addr("10.77.0.10:40000");
    let mut obs = Observations::new(local);
    obs.binding = sim.stun(local, PRIMARY, PRIMARY);
    obs.alt_ip = sim.stun(local, ALT_IP, ALT_IP);
    obs.change_ip_port = sim.stun(local, PRIMARY, ALT_IP_PORT);
    assert_eq!(classify(&obs).nat_type(), NatType::FullCone);
    assert_eq!(
        classify(&SimNat::new(lab).observe()).nat_type(),
        NatType::RestrictNat
    );
}

/// With a mapping socket and no NAT, the external address found only by the mapping
/// socket is compared with that socket's own local address.
#[test]
fn mapping_socket_alone_still_spots_no_nat() {
    let lab = Lab {
        nat: false,
        filter: None,
        ..NAT
    };
    let mut obs = SimNat::new(lab).observe_with(true);
    obs.binding = Some(Probe::silent(addr(PRIMARY)));
    obs.change_ip_port = None;
    obs.change_port = None;
    let report = classify(&obs);
    assert_eq!(report.nat_type(), NatType::OpenInternet);
    assert_eq!(report.external, Some(addr("198.51.100.10:40002")));
}

#[test]
fn blocked_report_has_no_external_address_but_lists_servers() {
    let lab = Lab {
        drop_all: true,
        ..NAT
    };
    let report = classify(&SimNat::new(lab).observe());
    assert_eq!(report.external, None);
    assert!(report.rtts.is_empty());
    assert_eq!(
        report.servers,
        vec![addr(PRIMARY), addr(ALT_IP), addr(ALT_IP_PORT)]
    );
    assert_eq!(report.to_p2pd_json()["type"], 7);
}

#[test]
fn nothing_probed_is_blocked() {
    let report = classify(&Observations::new(addr("10.77.0.10:1")));
    assert_eq!(report.nat_type(), NatType::BlockedNat);
    assert_eq!(report.delta(), Delta::NotApplicable);
}

#[test]
fn report_keeps_rtts_external_and_wall_time() {
    let report = classify(&SimNat::new(NAT).observe());
    assert_eq!(
        report.rtts.len(),
        3,
        "binding, alt ip, alt ip+port answered"
    );
    assert_eq!(report.rtts[0].probe, ProbeKind::Binding);
    assert_eq!(
        report.external.map(|e| e.ip()),
        Some(PUBLIC_IP.parse().unwrap())
    );
    assert_eq!(report.elapsed, Duration::from_millis(20));
}

fn v6_obs(change: Option<Probe>) -> Observations {
    let local = addr("[2001:db8:1::10]:40000");
    let server = addr("[2001:db8:2::1]:3478");
    let mut obs = Observations::new(local);
    obs.binding = Some(Probe::answered(
        server,
        local,
        server,
        Duration::from_millis(1),
    ));
    obs.change_ip_port = change;
    obs
}

/// IPv6 normally has no NAT: open or firewalled, never a crash (P2PD's IPv6-only
/// load_nat raised TypeError, inventory §9.11).
#[test]
fn ipv6_without_nat_is_open_or_firewall() {
    let server = addr("[2001:db8:2::1]:3478");
    let other = addr("[2001:db8:2::2]:3479");
    let local = addr("[2001:db8:1::10]:40000");
    let answered = Probe::answered(server, local, other, Duration::from_millis(1));
    let open = classify(&v6_obs(Some(answered)));
    assert_eq!(
        (open.nat_type(), open.filtering),
        (NatType::OpenInternet, Some(F::EndpointIndependent))
    );
    let firewall = classify(&v6_obs(Some(Probe::silent(server))));
    assert_eq!(firewall.nat_type(), NatType::SymmetricUdpFirewall);
    // A server without an alternate address cannot test filtering: P2PD's answer, open.
    let untested = classify(&v6_obs(None));
    assert_eq!(
        (untested.nat_type(), untested.filtering),
        (NatType::OpenInternet, None)
    );
    assert_eq!(untested.mapping, None);
}

#[test]
fn ipv4_mapped_local_address_is_not_a_nat() {
    let server = addr(PRIMARY);
    let mut obs = Observations::new(addr("[::ffff:198.51.100.10]:40000"));
    let mapped = addr("198.51.100.10:40000");
    obs.binding = Some(Probe::answered(server, mapped, server, Duration::ZERO));
    obs.change_ip_port = Some(Probe::answered(
        server,
        mapped,
        addr(ALT_IP_PORT),
        Duration::ZERO,
    ));
    assert_eq!(classify(&obs).nat_type(), NatType::OpenInternet);
}

/// A server that answers CHANGE-REQUEST from its primary address would make every NAT
/// look full cone; such replies are not evidence.
#[test]
fn reply_from_unchanged_address_is_not_filtering_evidence() {
    let mut obs = SimNat::new(NAT).observe();
    let (server, ext) = (addr(PRIMARY), addr("203.0.113.100:20001"));
    obs.change_ip_port = Some(Probe::answered(server, ext, server, Duration::ZERO));
    obs.change_port = Some(Probe::answered(server, ext, addr(ALT_IP), Duration::ZERO));
    let report = classify(&obs);
    assert_eq!(report.filtering, None);
    assert_eq!(
        report.nat_type(),
        NatType::RestrictPortNat,
        "EIM with untested filtering"
    );
}

#[test]
fn nat_with_only_a_binding_is_symmetric_until_shown_otherwise() {
    let mut obs = SimNat::new(NAT).observe();
    obs.change_ip_port = None;
    obs.change_port = None;
    obs.alt_ip = None;
    obs.alt_ip_port = None;
    let report = classify(&obs);
    assert_eq!(
        (report.nat_type(), report.mapping, report.filtering),
        (NatType::SymmetricNat, None, None)
    );
}

/// P2PD's decisive change-port test when the mapping was not measured.
#[test]
fn unmeasured_mapping_with_change_port_reply_is_restrict() {
    let lab = Lab {
        filter: Some(F::AddressDependent),
        ..NAT
    };
    let mut obs = SimNat::new(lab).observe();
    obs.alt_ip = None;
    obs.alt_ip_port = None;
    assert_eq!(classify(&obs).nat_type(), NatType::RestrictNat);
}

#[test]
fn destination_dependent_mapping_without_alt_port_test_is_symmetric() {
    let lab = Lab {
        mapping: M::AddressDependent,
        filter: Some(F::AddressDependent),
        ..NAT
    };
    let mut obs = SimNat::new(lab).observe();
    obs.alt_ip_port = None;
    let report = classify(&obs);
    assert_eq!(
        (report.nat_type(), report.mapping),
        (NatType::SymmetricNat, None)
    );
}

#[test]
fn primary_silent_but_alternate_answering_is_not_blocked() {
    let mut obs = SimNat::new(NAT).observe();
    obs.binding = Some(Probe::silent(addr(PRIMARY)));
    obs.change_ip_port = Some(Probe::silent(addr(PRIMARY)));
    obs.change_port = Some(Probe::silent(addr(PRIMARY)));
    let report = classify(&obs);
    assert_ne!(report.nat_type(), NatType::BlockedNat);
    assert!(report.external.is_some());
    assert_eq!(report.mapping, None, "no primary mapping to compare with");
    assert_eq!(
        report.filtering, None,
        "silence of a dead primary is not filtering"
    );
}
