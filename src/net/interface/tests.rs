//! Interface selection, start with injected lookups, JSON shapes; plus read-only checks of
//! the real machine (nothing is sent anywhere).

use super::netifaces::tests::sample;
use super::*;
use serde_json::json;
use std::net::SocketAddr;

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test vector parses")
}

/// Answers 1.3.3.7 for IPv4 and a global IPv6 for IPv6 sources.
async fn table_lookup(local: SocketAddr, _t: Duration) -> Result<IpAddr, String> {
    Ok(if local.is_ipv4() {
        ip("1.3.3.7")
    } else {
        ip("2402:1f00:8101:83f::1")
    })
}

async fn failing_lookup(_local: SocketAddr, _t: Duration) -> Result<IpAddr, String> {
    Err("no STUN server answered".into())
}

#[test]
fn selection_by_name_and_default() {
    let net = sample();
    let i = Interface::from_netifaces(&net, None).expect("default interface");
    assert_eq!(i.name, "eth0");
    assert_eq!(i.id, "eth0");
    assert_eq!(i.index, Some(4));
    assert_eq!(i.netiface_index, Some(2));
    assert_eq!(i.kind, InterfaceType::Ethernet);
    assert!(i.is_default(Family::V4) && i.is_default(Family::V6));
    assert_eq!(i.default_src(Family::V4), Some(ip("192.0.2.2")));
    assert_eq!(i.default_src(Family::V6), Some(ip("fd00::2")));
    assert_eq!(
        Interface::from_netifaces(&net, Some(""))
            .expect("default")
            .name,
        "eth0"
    );

    let lo = Interface::from_netifaces(&net, Some("lo")).expect("lo");
    assert!(!lo.is_default(Family::V4));
    assert_eq!(lo.default_src(Family::V4), None);

    let err = Interface::from_netifaces(&net, Some("meow")).expect_err("unknown");
    let msg = err.to_string();
    assert!(
        msg.contains("meow") && msg.contains("lo, ifb0, eth0"),
        "{msg}"
    );
    assert!(matches!(
        Interface::from_netifaces(&NetIfaces::default(), None),
        Err(Error::NoDefault(_))
    ));
}

#[tokio::test]
async fn start_builds_routes_per_family() {
    let mut i = Interface::from_netifaces(&sample(), Some("eth0")).expect("eth0");
    i.start(Duration::from_secs(1), &table_lookup)
        .await
        .expect("starts");
    assert!(i.resolved);
    assert_eq!(i.supported(), vec![Family::V4, Family::V6]);
    let r4 = i.route(None).expect("v4 route");
    assert_eq!((r4.nic(), r4.ext()), (ip("192.0.2.2"), Some(ip("1.3.3.7"))));
    let r6 = i.route(Some(Family::V6)).expect("v6 route");
    assert_eq!(r6.nic(), ip("fd00::2"));
    assert_eq!(r6.link_local(), Some(ip("fe80::fc:ff:fe00:1")));
    assert_eq!(r6.interface().map(|x| x.index), Some(Some(4)));
    assert_eq!(i.nic(Family::V4).expect("nic"), ip("192.0.2.2"));
    assert!(i.warnings.is_empty(), "{:?}", i.warnings);
    // Binding the v6 link-local uses the interface index as scope id.
    let bound = r6.bind(0, Some("fe80::fc:ff:fe00:1")).expect("binds");
    assert!(matches!(bound.bind_addr(), Some(SocketAddr::V6(a)) if a.scope_id() == 4));
}

#[tokio::test]
async fn start_without_stun_keeps_nic_routes() {
    let mut i = Interface::from_netifaces(&sample(), Some("eth0")).expect("eth0");
    i.start(Duration::from_millis(200), &failing_lookup)
        .await
        .expect("still starts");
    assert_eq!(i.supported(), vec![Family::V4, Family::V6]);
    assert_eq!(i.route(Some(Family::V4)).expect("route").ext(), None);
    assert_eq!(i.warnings.len(), 2, "{:?}", i.warnings);
    assert!(
        i.warnings
            .iter()
            .all(|w| w.contains("no STUN server answered"))
    );

    let mut ifb = Interface::from_netifaces(&sample(), Some("ifb0")).expect("ifb0");
    assert!(matches!(
        ifb.start(Duration::from_millis(10), &failing_lookup).await,
        Err(Error::NoRoutes(_))
    ));
    assert!(matches!(
        ifb.route(Some(Family::V6)),
        Err(Error::NoRoutes(_)) | Err(Error::NoRouteFor(_))
    ));
}

#[tokio::test]
async fn dict_shape_and_round_trip() {
    let mut i = Interface::from_netifaces(&sample(), Some("eth0")).expect("eth0");
    i.start(Duration::from_secs(1), &table_lookup)
        .await
        .expect("starts");
    i.mac = "02-fc-00-00-00-01".into();
    i.nat = json!({"type": 5, "nat_info": "restrict port", "delta": {"type": 6, "value": 0},
                   "delta_info": "random delta (local port == rand port)"});
    let d = i.to_dict();
    let mut keys: Vec<&str> = d
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "id",
            "is_default",
            "mac",
            "name",
            "nat",
            "netiface_index",
            "nic_no",
            "rp"
        ]
    );
    assert_eq!(d["is_default"]["10"], true);
    assert_eq!(
        d["rp"]["2"][0]["ext_ips"][0],
        json!({"ip": "1.3.3.7", "cidr": 32, "af": 2})
    );
    assert_eq!(
        d["rp"]["10"][0]["nic_ips"][0]["ip"],
        "fd00:0000:0000:0000:0000:0000:0000:0002"
    );
    assert_eq!(d["rp"]["10"][0]["link_local_ips"][0]["af"], 10);

    let back = Interface::from_dict(&d).expect("round trip");
    assert_eq!(back.to_dict(), d);
    assert!(back.resolved);
    let from_text = Interface::from_dict(&Value::String(d.to_string())).expect("from string");
    assert_eq!(from_text.to_dict(), d);
    let repr = i.repr();
    assert!(repr.starts_with("Interface.from_dict({") && repr.ends_with("})"));
    assert!(repr.contains(&i.to_string()));
    let inner = repr
        .trim_start_matches("Interface.from_dict(")
        .trim_end_matches(')');
    assert_eq!(
        Interface::from_json(inner).expect("repr parses").to_dict(),
        d
    );
}

#[test]
fn reads_the_seeds_older_shape() {
    let seed = r#"{"name": "Intel(R) Wi-Fi 6 AX200 160MHz",
        "nat": {"type": 5, "nat_info": "restrict port", "delta": {"type": 6, "value": 0},
                "delta_info": "random delta (local port == rand port)"},
        "rp": {"2": [{"af": 2, "nic_ips": [{"ip": "192.168.21.21", "cidr": 32, "af": 2}],
                      "ext_ips": [{"ip": "1.3.3.7", "cidr": 32, "af": 2}]}],
               "23": []}}"#;
    let i = Interface::from_json(seed).expect("seed parses");
    assert_eq!(i.id, i.name);
    // "Wi-Fi" has a dash, so P2PD's name rules do not recognise it.
    assert_eq!(i.kind, InterfaceType::Unknown);
    assert_eq!(i.supported(), vec![Family::V4]);
    assert_eq!(i.route(None).expect("route").ext(), Some(ip("1.3.3.7")));
    assert_eq!(i.nat["type"], 5);
    assert!(Interface::from_json("[1]").is_err());
    assert!(Interface::from_json(r#"{"name": "x", "rp": {"99": []}}"#).is_err());
    assert!(Interface::from_json("not json").is_err());
}

#[test]
fn real_machine_read_only() {
    let net = NetIfaces::load().expect("getifaddrs works");
    let names = Interface::list().expect("list");
    assert!(names.iter().any(|n| n == "lo"), "{names:?}");
    assert!(names.len() >= net.interfaces().len().min(1));
    assert!(matches!(
        Interface::by_name(Some("meow")),
        Err(Error::NotFound { .. })
    ));
    let lo = Interface::by_name(Some("lo")).expect("lo exists");
    assert!(lo.addrs.iter().any(|a| a.ip == ip("127.0.0.1")));
    if net.default_interface(Family::V4).is_some() {
        let d = Interface::default_for(Family::V4).expect("default v4");
        assert!(d.is_default(Family::V4));
        assert!(d.default_src(Family::V4).is_some());
    }
}

#[test]
fn nic_route_needs_no_lookup_and_starts_at_the_default_source() {
    let mut i = Interface::from_netifaces(&sample(), Some("eth0")).expect("eth0");
    let r4 = i.nic_route(Family::V4).expect("v4 route");
    assert_eq!((r4.nic(), r4.ext()), (ip("192.0.2.2"), None));
    assert!(!r4.is_bound());
    let r6 = i.nic_route(Family::V6).expect("v6 route");
    assert_eq!(r6.nic(), ip("fd00::2"));
    assert_eq!(r6.link_local(), Some(ip("fe80::fc:ff:fe00:1")));
    assert_eq!(r6.interface().map(|x| x.index), Some(Some(4)));
    // Nothing was started or recorded.
    assert!(!i.resolved && i.warnings.is_empty());
    // Another address listed first: the default source (in the gateway's subnet) still leads.
    i.addrs.insert(
        0,
        NicAddr {
            ip: ip("10.9.9.9"),
            prefix: 8,
        },
    );
    assert_eq!(i.nic_route(Family::V4).expect("v4").nic(), ip("192.0.2.2"));
    // No address of the family: the family's "no route" error.
    i.addrs.retain(|a| a.family() == Family::V4);
    assert!(matches!(
        i.nic_route(Family::V6),
        Err(Error::NoRouteFor(Family::V6))
    ));
}

#[test]
fn fuzz_interface_dicts() {
    let seed = r#"{"name": "eth0", "id": "eth0", "mac": "02-fc-00-00-00-01", "nic_no": 0,
        "netiface_index": 3, "is_default": {"2": true, "10": false}, "nat": null,
        "rp": {"2": [{"af": 2, "nic_ips": [{"ip": "192.168.21.21", "cidr": 32, "af": 2}],
                      "ext_ips": [{"ip": "1.3.3.7", "cidr": 32, "af": 2}],
                      "link_local_ips": []}],
               "10": [{"af": 10, "nic_ips": [{"ip": "fd00::2", "cidr": 128, "af": 10}],
                       "ext_ips": [], "link_local_ips": [{"ip": "fe80::1", "cidr": 128, "af": 10}]}]}}"#;
    let seeds = vec![
        seed.as_bytes().to_vec(),
        b"{\"name\": \"x\", \"rp\": {}}".to_vec(),
    ];
    crate::fuzz::run("interface dicts", &seeds, |input| {
        let Ok(i) = Interface::from_json(&String::from_utf8_lossy(input)) else {
            return Ok(());
        };
        // What was read writes out a dict that reads back to the same dict.
        let d = i.to_dict();
        match Interface::from_dict(&d) {
            Ok(back) if back.to_dict() == d => Ok(()),
            Ok(back) => Err(format!("{d} read back as {}", back.to_dict())),
            Err(e) => Err(format!("{d} does not read back: {e}")),
        }
    });
}
