//! The decision table of `classify` on hand-made observations: what each kind of evidence
//! (or its absence) makes of the P2PD type, and what is marked assumed. Whole runs against
//! simulated NATs are in `prober_tests.rs`.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::*;
use crate::net::nat::observations::{DeltaSamples, Reply};

const RTT: Duration = Duration::from_millis(3);

fn a(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn heard(mapped: &str, origin: &str) -> Outcome {
    Outcome::Heard(Reply {
        mapped: a(mapped),
        origin: a(origin),
        rtt: RTT,
    })
}

/// One server at `p` (alternate `alt`) seen from `local`, every mapping test answered with
/// `mapped`; its filtering tests as given.
fn server(p: &str, alt: Option<&str>, mapped: [&str; 4]) -> ServerObs {
    let mut s = ServerObs::new(p, a(p));
    s.filter_local = Some(a("10.77.0.10:40000"));
    s.binding = heard(mapped[0], p);
    s.map_primary = heard(mapped[0], p);
    if let Some(alt) = alt {
        let (pa, aa) = (a(p), a(alt));
        s.claimed_alternate = Some(aa);
        s.map_alt_ip = heard(mapped[1], &SocketAddr::new(aa.ip(), pa.port()).to_string());
        s.map_alt_both = heard(mapped[2], alt);
        s.map_alt_port = heard(mapped[3], &SocketAddr::new(pa.ip(), aa.port()).to_string());
    }
    s
}

fn obs(local: &str, servers: Vec<ServerObs>) -> Observations {
    let mut o = Observations::new(local.parse::<IpAddr>().unwrap());
    o.mapping_local = Some(SocketAddr::new(o.local_ip, 40001));
    o.servers = servers;
    o.delta_tests = 12;
    o.delta = DeltaSamples::from_pairs(
        &(0..12u32)
            .map(|i| port_pair(4000 + i * 97, 20000 + i * 7919 % 30000))
            .collect::<Vec<_>>(),
        &(0..12u32)
            .map(|i| port_pair(9000 + i, 21000 + i * 4447 % 30000))
            .collect::<Vec<_>>(),
    );
    o
}

/// A (local, mapped) delta sample; the scattered values make a random delta.
fn port_pair(local: u32, mapped: u32) -> (u16, u16) {
    (
        u16::try_from(local).unwrap(),
        u16::try_from(mapped).unwrap(),
    )
}

const EXT: &str = "203.0.113.100:20000";
const P: &str = "203.0.113.1:3478";
const ALT: &str = "203.0.113.2:3479";

#[test]
fn behind_an_eim_nat_filtering_decides_the_type() {
    let cases = [
        (heard(EXT, ALT), Outcome::Silent, NatType::FullCone),
        (
            Outcome::Silent,
            heard(EXT, "203.0.113.1:3479"),
            NatType::RestrictNat,
        ),
        (Outcome::Silent, Outcome::Silent, NatType::RestrictPortNat),
    ];
    for (both, port, want) in cases {
        let mut s = server(P, Some(ALT), [EXT; 4]);
        (s.change_both, s.change_port) = (both, port);
        // The second filtering socket saw the same.
        (s.confirm_both, s.confirm_port) = (both, port);
        s.verify_both = heard(EXT, ALT);
        let r = classify(&obs("10.77.0.10", vec![s]));
        assert_eq!(r.nat_type(), want, "{r}");
        assert_eq!(r.mapping, Some(MappingBehaviour::EndpointIndependent));
        assert!(r.assumed.is_empty(), "{r}");
        assert_eq!(r.stun[0].kind, ServerKind::Changes);
    }
}

#[test]
fn a_change_reply_counts_only_when_a_second_socket_hears_it_too() {
    // F heard test II, perhaps through a filter entry an earlier run left for its port;
    // a fresh second socket hears only test III: address-dependent, not endpoint-
    // independent.
    let mut s = server(P, Some(ALT), [EXT; 4]);
    (s.change_both, s.change_port) = (heard(EXT, ALT), heard(EXT, "203.0.113.1:3479"));
    (s.confirm_both, s.confirm_port) = (Outcome::Silent, heard(EXT, "203.0.113.1:3479"));
    let r = classify(&obs("10.77.0.10", vec![s.clone()]));
    assert_eq!(r.filtering, Some(FilteringBehaviour::AddressDependent));
    assert_eq!(r.nat_type(), NatType::RestrictNat);
    // Still waiting for the second socket: nothing decided yet.
    s.confirm_both = Outcome::Pending;
    let caps = [capability(
        &s,
        mapping::Evidence::Known(MappingBehaviour::EndpointIndependent),
        Some(true),
    )];
    assert_eq!(filtering(&obs("10.77.0.10", vec![s]), &caps), None);
}

#[test]
fn silence_from_a_server_that_never_changes_is_no_evidence() {
    // EIM: M's filter is open to the alternates, yet the change requests from M went
    // unanswered: the server does not change address, and F's silence proves nothing.
    let mut s = server(P, Some(ALT), [EXT; 4]);
    (s.change_both, s.change_port) = (Outcome::Silent, Outcome::Silent);
    (s.verify_both, s.verify_port) = (Outcome::Silent, Outcome::Silent);
    let r = classify(&obs("10.77.0.10", vec![s]));
    assert_eq!(r.filtering, None);
    assert_eq!(r.nat_type(), NatType::RestrictPortNat);
    assert_eq!(r.assumed, vec![Assumed::Filtering]);
    assert_eq!(r.stun[0].kind, ServerKind::SilentOnChange);
}

#[test]
fn a_dependent_mapping_is_symmetric_whatever_the_filtering() {
    let mut s = server(
        P,
        Some(ALT),
        [EXT, "203.0.113.100:1", "203.0.113.100:2", "203.0.113.100:3"],
    );
    (s.change_both, s.change_port) = (Outcome::Silent, Outcome::Silent);
    let r = classify(&obs("10.77.0.10", vec![s]));
    assert_eq!(r.nat_type(), NatType::SymmetricNat);
    assert_eq!(r.mapping, Some(MappingBehaviour::AddressAndPortDependent));
    // M's change replies cannot pass an APDM NAT: the working alternate is trusted.
    assert_eq!(
        r.filtering,
        Some(FilteringBehaviour::AddressAndPortDependent)
    );
    assert_eq!(r.stun[0].kind, ServerKind::ChangesUnverified);
    assert!(r.assumed.is_empty());
}

#[test]
fn unknown_fields_take_p2pd_defaults_and_say_so() {
    // One plain server behind a NAT: neither mapping nor filtering measured.
    let s = server("203.0.113.10:3478", None, [EXT; 4]);
    let r = classify(&obs("10.77.0.10", vec![s]));
    assert_eq!(r.nat_type(), NatType::RestrictPortNat);
    assert_eq!(r.assumed, vec![Assumed::Mapping, Assumed::Filtering]);
    assert_eq!(r.stun[0].kind, ServerKind::Plain);
    // Too few delta samples to see a pattern: random, assumed.
    let mut o = obs(
        "10.77.0.10",
        vec![server("203.0.113.10:3478", None, [EXT; 4])],
    );
    o.delta = DeltaSamples::from_pairs(&[(4000, 20001), (4100, 29001)], &[]);
    let r = classify(&o);
    assert_eq!(r.delta(), Delta::Random);
    assert!(r.is_assumed(Assumed::Delta));
}

#[test]
fn without_a_nat_open_internet_needs_evidence() {
    let local = "198.51.100.10:40000";
    let plain = || {
        let mut s = server(P, None, [local; 4]);
        s.filter_local = Some(a(local));
        s
    };
    // Nothing says the path is open: P2PD's firewall type, assumed.
    let r = classify(&obs("198.51.100.10", vec![plain()]));
    assert_eq!(r.nat_type(), NatType::SymmetricUdpFirewall);
    assert_eq!(r.assumed, vec![Assumed::Filtering]);
    assert_eq!(r.delta(), Delta::Equal);
    // RESPONSE-PORT replies reached both sockets that never sent: open.
    let mut s = plain();
    s.open_path = heard(local, P);
    s.open_path2 = heard(local, P);
    let r = classify(&obs("198.51.100.10", vec![s]));
    assert_eq!(r.nat_type(), NatType::OpenInternet);
    assert_eq!(r.filtering, Some(FilteringBehaviour::EndpointIndependent));
    // Only one of them: a port an earlier run left open in a firewall, not an open path.
    let mut s = plain();
    s.open_path = heard(local, P);
    s.open_path2 = Outcome::Silent;
    s.open_check = heard(local, P);
    let r = classify(&obs("198.51.100.10", vec![s]));
    assert_eq!(r.nat_type(), NatType::SymmetricUdpFirewall);
    assert_eq!(r.open_path, Some(false));
    // The server honours RESPONSE-PORT (the check reached F) but the unused socket heard
    // nothing: a firewall, known, not assumed.
    let mut s = plain();
    s.open_path = Outcome::Silent;
    s.open_check = heard(local, P);
    let r = classify(&obs("198.51.100.10", vec![s]));
    assert_eq!(r.nat_type(), NatType::SymmetricUdpFirewall);
    assert_eq!(r.open_path, Some(false));
    assert!(r.assumed.is_empty());
}

#[test]
fn ipv4_mapped_addresses_are_the_ipv4_they_are() {
    let mut s = server(P, None, ["[::ffff:198.51.100.10]:40000"; 4]);
    s.open_path = heard("[::ffff:198.51.100.10]:40000", P);
    s.open_path2 = heard("[::ffff:198.51.100.10]:40000", P);
    let r = classify(&obs("198.51.100.10", vec![s]));
    assert_eq!(r.nat_type(), NatType::OpenInternet, "{r}");
}

#[test]
fn nothing_answered_is_blocked_and_nothing_sent_is_untested() {
    let mut s = ServerObs::new(P, a(P));
    (s.binding, s.map_primary) = (Outcome::Silent, Outcome::Silent);
    let r = classify(&obs("10.77.0.10", vec![s]));
    assert_eq!(r.nat_type(), NatType::BlockedNat);
    assert!(r.tested());
    assert_eq!(r.external, None);
    assert_eq!(r.stun[0].kind, ServerKind::Silent);
    let mut o = obs("10.77.0.10", vec![]);
    o.untested = Some("no STUN servers are configured".into());
    let r = classify(&o);
    assert!(!r.tested());
    assert!(r.to_string().contains("no STUN servers are configured"));
}
