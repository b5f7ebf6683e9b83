//! Route grouping vectors: the tutorial's two examples, failures, and the driver's timeout.

use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test vector parses")
}

fn ips(list: &[&str]) -> Vec<IpAddr> {
    list.iter().map(|s| ip(s)).collect()
}

fn answers(rows: &[(&str, &str)]) -> BTreeMap<IpAddr, Result<IpAddr, String>> {
    rows.iter().map(|(s, e)| (ip(s), Ok(ip(e)))).collect()
}

fn shape(b: &Built) -> Vec<(Vec<IpAddr>, Option<IpAddr>)> {
    b.pool
        .routes()
        .iter()
        .map(|r| (r.nic_ips().iter().map(|n| n.addr()).collect(), r.ext()))
        .collect()
}

#[test]
fn ipv4_example_private_group_and_public_routes() {
    let addrs = ips(&["192.168.0.20", "10.0.0.5", "7.7.7.7", "8.8.0.1"]);
    assert_eq!(
        lookup_sources(&addrs, None),
        ips(&["7.7.7.7", "8.8.0.1", "192.168.0.20"])
    );
    let res = answers(&[
        ("192.168.0.20", "1.3.3.7"),
        ("7.7.7.7", "1.3.3.7"),
        ("8.8.0.1", "8.8.0.1"),
    ]);
    let b = build_routes(Family::V4, &addrs, None, &res, None);
    assert_eq!(
        shape(&b),
        vec![
            (ips(&["7.7.7.7"]), Some(ip("1.3.3.7"))),
            (ips(&["192.168.0.20", "10.0.0.5"]), Some(ip("1.3.3.7"))),
            (ips(&["8.8.0.1"]), Some(ip("8.8.0.1"))),
        ]
    );
    assert!(b.warnings.is_empty(), "{:?}", b.warnings);
}

#[test]
fn ipv6_example_every_global_is_a_route_with_link_locals() {
    let addrs = ips(&["2020:deed:beef::", "2020:deed:deed::1", "fe80:deed:beef::"]);
    let res = answers(&[
        ("2020:deed:beef::", "2020:deed:beef::"),
        ("2020:deed:deed::1", "2020:deed:deed::1"),
    ]);
    let b = build_routes(Family::V6, &addrs, None, &res, None);
    assert_eq!(b.pool.routes().len(), 2);
    for r in b.pool.routes() {
        assert_eq!(r.link_local(), Some(ip("fe80:deed:beef::")));
        assert_eq!(r.ext(), Some(r.nic()));
    }
    assert_eq!(b.pool.link_locals().len(), 1);
}

#[test]
fn ula_is_private_not_link_local() {
    let addrs = ips(&["fd00::2", "fe80::fc:ff:fe00:1"]);
    let bk = buckets(&addrs);
    assert_eq!(bk.private, ips(&["fd00::2"]));
    assert_eq!(bk.link_locals, ips(&["fe80::fc:ff:fe00:1"]));
    assert_eq!(
        lookup_sources(&addrs, Some(ip("fd00::2"))),
        ips(&["fd00::2"])
    );
}

#[test]
fn default_source_answer_serves_the_private_group() {
    let addrs = ips(&["192.0.2.2", "10.9.9.9"]);
    assert_eq!(
        lookup_sources(&addrs, Some(ip("10.9.9.9"))),
        ips(&["192.0.2.2", "10.9.9.9"])
    );
    let mut res = answers(&[("10.9.9.9", "1.3.3.7")]);
    res.insert(ip("192.0.2.2"), Err("no reply".into()));
    let b = build_routes(Family::V4, &addrs, Some(ip("10.9.9.9")), &res, None);
    assert_eq!(
        shape(&b),
        vec![(ips(&["192.0.2.2", "10.9.9.9"]), Some(ip("1.3.3.7")))]
    );
    assert_eq!(b.warnings.len(), 1);
    // A default source that is not on this NIC is ignored.
    assert_eq!(
        lookup_sources(&addrs, Some(ip("172.16.0.1"))),
        ips(&["192.0.2.2"])
    );
}

#[test]
fn failed_lookups_keep_nic_routes_with_warnings() {
    let addrs = ips(&["10.0.0.2", "8.8.8.8", "::1"]);
    let mut res = BTreeMap::new();
    res.insert(ip("10.0.0.2"), Err("timed out".to_string()));
    res.insert(ip("8.8.8.8"), Ok(ip("0.0.0.0")));
    let b = build_routes(Family::V4, &addrs, None, &res, None);
    assert_eq!(
        shape(&b),
        vec![(ips(&["8.8.8.8"]), None), (ips(&["10.0.0.2"]), None)]
    );
    assert_eq!(b.warnings.len(), 2, "{:?}", b.warnings);
    assert!(b.warnings.iter().any(|w| w.contains("timed out")));
    // A private answer is kept but reported.
    let res = answers(&[("10.0.0.2", "198.51.100.7")]);
    let b = build_routes(Family::V4, &ips(&["10.0.0.2"]), None, &res, None);
    assert_eq!(b.pool.routes()[0].ext(), Some(ip("198.51.100.7")));
    assert_eq!(b.warnings.len(), 1);
    // No address at all: no route, no warning.
    assert!(
        build_routes(Family::V6, &[], None, &BTreeMap::new(), None)
            .pool
            .routes()
            .is_empty()
    );
}

#[tokio::test]
async fn driver_looks_up_concurrently_and_times_out() {
    let iface = IfRef {
        name: "eth9".into(),
        index: Some(9),
    };
    let addrs = ips(&["10.0.0.2", "7.7.7.7", "fe80::1"]);
    // Answers for 7.7.7.7, never answers for 10.0.0.2.
    let lookup = |local: SocketAddr, _t: Duration| async move {
        if local.ip() == ip("7.7.7.7") {
            Ok(ip("7.7.7.7"))
        } else {
            std::future::pending::<()>().await;
            Err("unreachable".to_string())
        }
    };
    let b = resolve_family(
        Family::V4,
        &addrs,
        None,
        &lookup,
        Duration::from_millis(50),
        Some(&iface),
    )
    .await;
    assert_eq!(
        shape(&b),
        vec![
            (ips(&["7.7.7.7"]), Some(ip("7.7.7.7"))),
            (ips(&["10.0.0.2"]), None)
        ]
    );
    assert!(
        b.warnings.iter().any(|w| w.contains("timed out")),
        "{:?}",
        b.warnings
    );
    assert_eq!(b.pool.routes()[0].interface(), Some(&iface));

    let failing = |_: SocketAddr, _: Duration| async { Err::<IpAddr, String>("no STUN".into()) };
    let v6 = resolve_family(
        Family::V6,
        &ips(&["fd00::2"]),
        None,
        &failing,
        Duration::from_secs(1),
        None,
    )
    .await;
    assert_eq!(shape(&v6), vec![(ips(&["fd00::2"]), None)]);
    assert!(v6.warnings[0].contains("no STUN"));
}
