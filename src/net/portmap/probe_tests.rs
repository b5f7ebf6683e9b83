//! The probe against simulated gateways: each test plays a gateway's answers into the
//! state machine with explicit times, so the timing rules are checked in microseconds.

use super::*;
use crate::net::portmap::http::HttpUrl;
use crate::net::portmap::igd::parse_description;

const GW: &str = "10.77.0.1";
const CLIENT: &str = "10.77.0.10";

fn gw(port: u16) -> SocketAddr {
    SocketAddr::new(GW.parse().unwrap(), port)
}

fn ms(t0: Instant, n: u64) -> Instant {
    t0 + Duration::from_millis(n)
}

fn start(opts: ProbeOptions) -> (Probe, Instant, Vec<Transmit>) {
    let t0 = Instant::now();
    let mut p = Probe::new(t0, GW.parse().unwrap(), CLIENT.parse().unwrap(), opts);
    let sent = drain(&mut p);
    (p, t0, sent)
}

fn drain(p: &mut Probe) -> Vec<Transmit> {
    std::iter::from_fn(|| p.poll_transmit()).collect()
}

/// Runs timeouts until the probe ends or `until`; returns when it ended and what it sent.
fn run_until(p: &mut Probe, until: Instant) -> (Option<Instant>, Vec<Transmit>) {
    let mut sent = Vec::new();
    while let Some(at) = p.poll_timeout() {
        if at > until {
            return (None, sent);
        }
        p.handle_timeout(at);
        sent.extend(drain(p));
        if p.is_done() {
            return (Some(at), sent);
        }
    }
    (None, sent)
}

const PMP_OK: [u8; 12] = [0, 128, 0, 0, 0, 0, 0, 7, 203, 0, 113, 100];

fn pcp_announce_reply(result: u8) -> Vec<u8> {
    let mut b = vec![2, 0x80, 0, result, 0, 0, 0, 0, 0, 0, 0, 7];
    b.resize(24, 0);
    b
}

fn ssdp_reply(location: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\nLOCATION: {location}\r\n\r\n"
    )
    .into_bytes()
}

fn found(location: &str) -> UpnpFound {
    let location = HttpUrl::parse(location).unwrap();
    let desc = "<root><device><deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</deviceType><serviceList><service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</serviceType><controlURL>/ctl</controlURL></service></serviceList></device></root>";
    UpnpFound {
        service: parse_description(desc, &location).unwrap(),
        location,
        external_ip: Some("203.0.113.100".parse().unwrap()),
    }
}

#[test]
fn first_round_asks_everything_and_creates_nothing() {
    let (_, _, sent) = start(ProbeOptions::default());
    // NAT-PMP external address, PCP ANNOUNCE, 2 unicast + 2 multicast M-SEARCHes.
    assert_eq!(sent.len(), 6);
    assert_eq!(sent[0].to, gw(5351));
    assert_eq!(sent[0].bytes, vec![0, 0]);
    assert_eq!(sent[1].to, gw(5351));
    assert_eq!(&sent[1].bytes[..2], &[2, 0], "ANNOUNCE, not MAP");
    let searches: Vec<&Transmit> = sent.iter().filter(|t| t.to.port() == 1900).collect();
    assert_eq!(searches.len(), 4);
    assert!(searches.iter().any(|t| t.to == gw(1900)));
    assert!(
        searches
            .iter()
            .any(|t| t.to == "239.255.255.250:1900".parse().unwrap())
    );
    for t in &sent {
        // No MAP opcode (NAT-PMP 1/2, PCP 1) and no AddPortMapping anywhere.
        assert!(!(t.bytes.len() >= 2 && t.bytes[0] == 0 && t.bytes[1] != 0));
        assert!(!(t.bytes.len() >= 2 && t.bytes[0] == 2 && t.bytes[1] != 0));
    }
}

#[test]
fn all_three_answering_ends_without_waiting() {
    let (mut p, t0, _) = start(ProbeOptions::default());
    p.handle_datagram(ms(t0, 1), gw(5351), &PMP_OK);
    p.handle_datagram(ms(t0, 1), gw(5351), &pcp_announce_reply(0));
    p.handle_datagram(
        ms(t0, 60),
        gw(1900),
        &ssdp_reply("http://10.77.0.1:5000/rootDesc.xml"),
    );
    let loc = p.poll_location().expect("a location to fetch");
    assert_eq!(p.poll_location(), None);
    assert!(!p.is_done());
    p.handle_upnp(
        ms(t0, 65),
        &loc,
        Ok(found("http://10.77.0.1:5000/rootDesc.xml")),
    );
    assert!(p.is_done());
    assert_eq!(p.poll_timeout(), None);
    let r = p.report(ms(t0, 65));
    assert_eq!(
        [
            r.available(Protocol::Upnp),
            r.available(Protocol::Pmp),
            r.available(Protocol::Pcp)
        ],
        [Some(true); 3]
    );
    assert_eq!(r.external_ip, Some("203.0.113.100".parse().unwrap()));
    assert_eq!(r.rtt, Some(Duration::from_millis(1)));
    assert_eq!(r.elapsed, Duration::from_millis(65));
    assert!(r.upnp_service.is_some());
}

#[test]
fn one_protocol_answering_ends_at_the_grace() {
    let (mut p, t0, _) = start(ProbeOptions::default());
    p.handle_datagram(ms(t0, 2), gw(5351), &PMP_OK);
    let (ended, resent) = run_until(&mut p, ms(t0, 2000));
    assert_eq!(ended, Some(ms(t0, 250)));
    assert!(
        resent.is_empty(),
        "no retransmission once the gateway has answered"
    );
    let r = p.report(ms(t0, 250));
    assert_eq!(r.available(Protocol::Pmp), Some(true));
    assert_eq!(r.outcome(Protocol::Pcp), Some(&Outcome::Silent));
    assert_eq!(r.outcome(Protocol::Upnp), Some(&Outcome::Silent));
}

#[test]
fn silence_ends_at_the_timeout_after_two_retransmissions() {
    let (mut p, t0, first) = start(ProbeOptions::default());
    let (ended, resent) = run_until(&mut p, ms(t0, 5000));
    assert_eq!(ended, Some(ms(t0, 1000)));
    // Rounds at 250 and 750 ms, each the full first round again.
    assert_eq!(resent.len(), 2 * first.len());
    let r = p.report(ms(t0, 1000));
    assert!(!r.anything_answered());
    assert_eq!(
        r.silence_message(),
        "no port mapping protocol answered (UPnP, NAT-PMP, PCP) at 10.77.0.1 within 1 s"
    );
}

#[test]
fn ssdp_from_an_odd_port_and_second_descriptor() {
    let (mut p, t0, _) = start(ProbeOptions {
        pmp: false,
        pcp: false,
        ..ProbeOptions::default()
    });
    // A media server's description first, then the IGD's, both from ephemeral ports.
    p.handle_datagram(
        ms(t0, 3),
        gw(49152),
        &ssdp_reply("http://10.77.0.1:8200/media.xml"),
    );
    p.handle_datagram(
        ms(t0, 4),
        gw(40001),
        &ssdp_reply("http://10.77.0.1:5000/igd.xml"),
    );
    p.handle_datagram(
        ms(t0, 5),
        gw(40001),
        &ssdp_reply("http://10.77.0.1:5000/igd.xml"),
    );
    let a = p.poll_location().unwrap();
    let b = p.poll_location().unwrap();
    assert_eq!(p.poll_location(), None, "duplicates are fetched once");
    assert_eq!(a.path, "/media.xml");
    p.handle_upnp(ms(t0, 6), &a, Err("no WAN connection service".into()));
    assert!(!p.is_done(), "the second descriptor is still being fetched");
    // Past the grace, an exchange under way may finish (until the timeout).
    p.handle_timeout(ms(t0, 250));
    assert!(!p.is_done());
    assert_eq!(p.poll_timeout(), Some(ms(t0, 1000)));
    p.handle_upnp(ms(t0, 300), &b, Ok(found("http://10.77.0.1:5000/igd.xml")));
    assert!(p.is_done());
    let r = p.report(ms(t0, 300));
    assert_eq!(r.available(Protocol::Upnp), Some(true));
    assert_eq!(r.available(Protocol::Pmp), None, "not tested");
}

#[test]
fn failed_descriptors_are_reported() {
    let (mut p, t0, _) = start(ProbeOptions::default());
    p.handle_datagram(
        ms(t0, 3),
        gw(1900),
        &ssdp_reply("http://10.77.0.1:8200/media.xml"),
    );
    let a = p.poll_location().unwrap();
    p.handle_upnp(ms(t0, 6), &a, Err("no WAN connection service".into()));
    run_until(&mut p, ms(t0, 2000));
    let r = p.report(ms(t0, 250));
    assert_eq!(
        r.outcome(Protocol::Upnp),
        Some(&Outcome::Failed(
            "http://10.77.0.1:8200/media.xml: no WAN connection service".into()
        ))
    );
}

#[test]
fn a_hanging_http_server_is_cut_at_the_timeout() {
    let (mut p, t0, _) = start(ProbeOptions::default());
    p.handle_datagram(
        ms(t0, 3),
        gw(1900),
        &ssdp_reply("http://10.77.0.1:5000/d.xml"),
    );
    let _ = p.poll_location();
    let (ended, _) = run_until(&mut p, ms(t0, 5000));
    assert_eq!(ended, Some(ms(t0, 1000)));
    assert!(matches!(
        p.report(ms(t0, 1000)).outcome(Protocol::Upnp),
        Some(Outcome::Failed(_))
    ));
}

#[test]
fn answers_from_elsewhere_are_not_believed() {
    let (mut p, t0, _) = start(ProbeOptions::default());
    let other = "10.77.0.99".parse().unwrap();
    // NAT-PMP from another host, or from the gateway's other port.
    p.handle_datagram(ms(t0, 1), SocketAddr::new(other, 5351), &PMP_OK);
    p.handle_datagram(ms(t0, 1), gw(5350), &PMP_OK);
    // An SSDP answer whose LOCATION names a host other than the sender.
    p.handle_datagram(
        ms(t0, 2),
        gw(1900),
        &ssdp_reply("http://10.77.0.99:5000/d.xml"),
    );
    // Garbage on 5351.
    p.handle_datagram(ms(t0, 2), gw(5351), &[9, 9, 9]);
    assert_eq!(p.poll_location(), None);
    let r = p.report(ms(t0, 3));
    assert_eq!(r.ignored, 4);
    assert!(!r.anything_answered());
    // A LAN host describing itself is followed, after the gateway's own description.
    p.handle_datagram(
        ms(t0, 4),
        SocketAddr::new(other, 1900),
        &ssdp_reply("http://10.77.0.99:5000/d.xml"),
    );
    p.handle_datagram(
        ms(t0, 5),
        gw(1900),
        &ssdp_reply("http://10.77.0.1:5000/d.xml"),
    );
    assert_eq!(
        p.poll_location().unwrap().addr.ip(),
        GW.parse::<IpAddr>().unwrap()
    );
    assert_eq!(p.poll_location().unwrap().addr.ip(), other);
}

#[test]
fn version_rejections_conclude_the_other_protocol() {
    // A NAT-PMP-only gateway answers PCP in NAT-PMP's format: unsupported version.
    let (mut p, t0, _) = start(ProbeOptions::default());
    p.handle_datagram(ms(t0, 1), gw(5351), &[0, 128, 0, 1, 0, 0, 0, 7]);
    p.handle_datagram(ms(t0, 1), gw(5351), &PMP_OK);
    let r = p.report(ms(t0, 1));
    assert!(matches!(
        r.outcome(Protocol::Pcp),
        Some(Outcome::NotSpoken(_))
    ));
    assert_eq!(r.available(Protocol::Pmp), Some(true));
    // A PCP-only gateway rejects NAT-PMP with a PCP UNSUPP_VERSION.
    let (mut p, t0, _) = start(ProbeOptions::default());
    p.handle_datagram(ms(t0, 1), gw(5351), &pcp_announce_reply(1));
    p.handle_datagram(ms(t0, 1), gw(5351), &pcp_announce_reply(0));
    let r = p.report(ms(t0, 1));
    assert!(matches!(
        r.outcome(Protocol::Pmp),
        Some(Outcome::NotSpoken(_))
    ));
    assert_eq!(r.available(Protocol::Pcp), Some(true));
}

#[test]
fn refusals_keep_their_result_in_words() {
    let (mut p, t0, _) = start(ProbeOptions::default());
    // miniupnpd with a reserved WAN address: NAT-PMP result 3; a PCP server behind
    // another NAT: ADDRESS_MISMATCH.
    p.handle_datagram(ms(t0, 1), gw(5351), &[0, 128, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0]);
    p.handle_datagram(ms(t0, 1), gw(5351), &pcp_announce_reply(12));
    let r = p.report(ms(t0, 1));
    assert_eq!(
        r.outcome(Protocol::Pmp),
        Some(&Outcome::Refused("network failure (result 3)".into()))
    );
    assert_eq!(
        r.outcome(Protocol::Pcp),
        Some(&Outcome::Refused("address mismatch (result 12)".into()))
    );
    assert!(r.anything_answered());
}

#[test]
fn ipv6_gateways_get_pcp_only() {
    let t0 = Instant::now();
    let mut p = Probe::new(
        t0,
        "fe80::1".parse().unwrap(),
        "fe80::10".parse().unwrap(),
        ProbeOptions::default(),
    );
    let sent = drain(&mut p);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].bytes[0], 2);
    let r = p.report(t0);
    assert_eq!(r.available(Protocol::Pmp), None);
    assert_eq!(r.available(Protocol::Upnp), None);
}
