//! IpRange vectors from P2PD's test_ip_range.py, test_route.py, test_net.py and the
//! module's own self-checks (inventory §3.1, §8).

use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test vector parses")
}

fn r(s: &str) -> IpRange {
    s.parse().expect("test range parses")
}

#[test]
fn single_hosts_table() {
    // (input, cidr, private, display)
    let rows: &[(&str, u8, bool, &str)] = &[
        ("10.0.0.1", 32, true, "10.0.0.1"),
        ("0.0.0.0", 32, false, "0.0.0.0"),
        ("::", 128, false, "0000:0000:0000:0000:0000:0000:0000:0000"),
        (
            "fe80::ae1f:6bff:fe94:531a",
            128,
            true,
            "fe80:0000:0000:0000:ae1f:6bff:fe94:531a",
        ),
        ("255.255.255.255", 32, true, "255.255.255.255"),
        ("127.0.0.1", 32, true, "127.0.0.1"),
        ("::1", 128, true, "0000:0000:0000:0000:0000:0000:0000:0001"),
        ("192.0.2.1", 32, false, "192.0.2.1"),
        (
            "100::1",
            128,
            false,
            "0100:0000:0000:0000:0000:0000:0000:0001",
        ),
        ("100.64.0.1", 32, false, "100.64.0.1"),
        (
            "fd00::2",
            128,
            true,
            "fd00:0000:0000:0000:0000:0000:0000:0002",
        ),
        ("8.8.8.8", 32, false, "8.8.8.8"),
    ];
    for &(text, cidr, private, shown) in rows {
        let x = r(text);
        assert_eq!(x.len(), 1, "{text}");
        assert_eq!(x.prefix(), cidr, "{text}");
        assert_eq!(x.is_private(), private, "{text}");
        assert_eq!(x.is_public(), !private, "{text}");
        assert_eq!(x.to_string(), shown, "{text}");
        for i in [0, 1, -1, 7, -300, 1 << 70] {
            assert_eq!(x.get(i), ip(text), "{text}[{i}]");
        }
    }
    assert_eq!(r("::").get(0).to_string(), "::");
}

#[test]
fn link_local_and_ula() {
    assert!(r("fe80::ae1f:6bff:fe94:531a").is_link_local());
    assert!(!r("fd00::2").is_link_local());
    assert!(!r("fc00::1").is_link_local());
}

#[test]
fn ipv4_network_indexing() {
    let x = r("8.8.8.0/24");
    assert_eq!(x.len(), 255);
    assert_eq!(x.get(0), ip("8.8.8.1"));
    let y = r("8.8.8.4/24");
    assert_eq!(y.get(-1), ip("8.8.8.255"));
    assert_eq!(y.get(256), ip("8.8.8.1"));
    let z = r("192.168.1.0/255.255.255.0");
    assert_eq!(z.get(0), ip("192.168.1.1"));
    assert_eq!(z.get(1), ip("192.168.1.2"));
    assert_eq!(z.get(-1), ip("192.168.1.255"));
    assert_eq!(z.get(-2), ip("192.168.1.254"));
    assert_eq!(z.len(), 255);
    // Host bits are kept for int()/JSON but the range prints its first host.
    let w = r("192.168.1.179/255.255.255.0");
    assert_eq!(w.to_string(), "192.168.1.1");
    assert_eq!(w.addr(), ip("192.168.1.179"));
    assert_eq!(w.host_part(), 179);
    assert_eq!(w.to_value()["ip"], "192.168.1.179");
}

#[test]
fn ipv6_network_indexing_uses_u128() {
    let x = r("2402:1f00:8101:83f::/64");
    assert_eq!(x.len(), (1u128 << 64) - 1);
    assert_eq!(x.get(0), ip("2402:1f00:8101:83f::1"));
    assert_eq!(x.get(1), ip("2402:1f00:8101:83f::2"));
    assert_eq!(x.get(-1), ip("2402:1f00:8101:83f:ffff:ffff:ffff:ffff"));
    let y = r("2402:1f00:8101::/48");
    assert_eq!(y.len(), (1u128 << 80) - 1);
    assert_eq!(
        y.get((1 << 80) - 2),
        ip("2402:1f00:8101:ffff:ffff:ffff:ffff:ffff")
    );
    assert!(y.is_public());
}

#[test]
fn iterate_and_reverse() {
    let x = r("192.168.0.0/16");
    assert_eq!(x.iter().count(), 65535);
    assert_eq!(x.iter().next(), Some(ip("192.168.0.1")));
    assert_eq!(x.iter().next_back(), Some(ip("192.168.255.255")));
    let v: Vec<IpAddr> = r("10.0.0.0/30").iter().rev().collect();
    assert_eq!(v, vec![ip("10.0.0.3"), ip("10.0.0.2"), ip("10.0.0.1")]);
    assert_eq!(r("7.7.7.7").iter().count(), 1);
}

#[test]
fn arithmetic_and_comparisons() {
    let a = IpRange::with_netmask(ip("192.168.0.0"), ip("255.255.0.0")).expect("valid");
    let b = IpRange::with_netmask(ip("192.169.0.4"), ip("255.255.0.0")).expect("valid");
    let target = r("192.168.0.4/16");
    assert_eq!(&a + &b, target);
    assert_eq!(&a + 4, target);
    assert_eq!(&a - &b, ip("192.168.255.252"));
    assert_eq!(&a - 4, ip("192.168.255.252"));
    assert_eq!(&a - 0, a.get(0));
    assert_eq!(a.get(3), ip("192.168.0.4"));
    assert!(r("192.168.0.4") > r("192.168.0.3"));
    assert_eq!(
        a.get_many(&[0, 1, 2]),
        vec![ip("192.168.0.1"), ip("192.168.0.2"), ip("192.168.0.3")]
    );
    let s: Vec<IpAddr> = a.slice(Some(-2), None).collect();
    assert_eq!(s, vec![ip("192.168.255.254"), ip("192.168.255.255")]);
    assert_eq!(a.slice(Some(5), Some(2)).count(), 0);
}

#[test]
fn equality_is_intersection() {
    let a = r("7.7.7.7/255.255.255.255");
    let b = r("7.7.7.7/255.255.255.255");
    let c = r("7.7.7.8/255.255.255.255");
    let d = r("192.168.1.1/255.255.255.0");
    let e = r("192.168.1.0/255.255.255.0");
    let f = r("192.169.0.0/255.255.0.0");
    let g = r("192.168.2.1/255.255.255.0");
    let h = r("192.168.1.20/255.255.255.0");
    assert!(a == b);
    assert!(b < c);
    assert!(a != c);
    assert!(d == e);
    assert!(f != e);
    assert!(b < e);
    assert!(e > b);
    assert!(f > e);
    let l = [a, c, e];
    assert!(l.contains(&d));
    assert!(l.contains(&b));
    assert!(!l.contains(&g));
    assert!(l.contains(&h));
    assert!(r("8.8.8.0/24") == ip("8.8.8.200"));
    assert!(ip("8.8.8.200") == r("8.8.8.0/24"));
    assert!(r("::") != r("0.0.0.0"));
    assert!(a.identical(&b) && !d.identical(&e));
}

#[test]
fn netmask_and_int_inputs() {
    let x = IpRange::with_netmask(
        parse_ip("fe80::9acb:c90e:7bf6:a093%enp3s0").expect("valid"),
        parse_ip("ffff:ffff:ffff:ffff::/64").expect("valid"),
    )
    .expect("valid");
    assert_eq!(x.prefix(), 64);
    assert_eq!(
        IpRange::from_int(0, None).err(),
        Some(Error::AmbiguousInt(0))
    );
    let zero = IpRange::from_int(0, Some(ip("255.255.255.255"))).expect("valid");
    assert_eq!(zero.len(), 1);
    assert_eq!(zero.get(0), ip("0.0.0.0"));
    let zero6 =
        IpRange::from_int(0, Some(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"))).expect("valid");
    assert_eq!(zero6.get(0).to_string(), "::");
    assert_eq!(
        IpRange::from_int(0xC0A8_0001, None).expect("valid").addr(),
        ip("192.168.0.1")
    );
    assert!(IpRange::with_netmask(ip("255.255.255.0"), ip("255.255.255.0")).is_err());
    assert!(IpRange::with_netmask(ip("10.0.0.1"), ip("ffff::")).is_err());
    assert!("10.0.0.1/33".parse::<IpRange>().is_err());
    assert!("nope".parse::<IpRange>().is_err());
}

#[test]
fn ip_norm_vectors() {
    for text in ["1.1.1.1%test", "1.1.1.1/24", "1.1.1.1%test/24"] {
        assert_eq!(ip_norm(&parse_ip(text).expect("valid")), "1.1.1.1");
    }
    let zeros = "0000:0000:0000:0000:0000:0000:0000:0000";
    for text in ["::", "::%test/24", zeros] {
        assert_eq!(ip_norm(&parse_ip(text).expect("valid")), zeros);
    }
}

#[test]
fn json_round_trip() {
    for text in [
        "192.168.21.21",
        "2402:1f00:8101:83f::1",
        "8.8.8.4/24",
        "fe80::1/64",
    ] {
        let x = r(text);
        let v = x.to_value();
        let y = IpRange::from_value(&v).expect("round trip");
        assert!(x.identical(&y), "{text}");
    }
    let v = r("2402:1f00:8101:83f::1").to_value();
    assert_eq!(v["ip"], "2402:1f00:8101:083f:0000:0000:0000:0001");
    assert_eq!(v["af"], 10);
    assert_eq!(v["cidr"], 128);
    assert!(IpRange::from_value(&serde_json::json!({"cidr": 32})).is_err());
    assert!(IpRange::from_value(&serde_json::json!({"ip": "1.2.3.4", "cidr": 300})).is_err());
}
