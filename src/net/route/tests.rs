//! Route and RoutePool vectors from P2PD's test_route.py and test_bind.py (inventory §3, §8).

use super::*;
use serde_json::json;

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test vector parses")
}

fn r(s: &str) -> IpRange {
    s.parse().expect("test range parses")
}

fn v4(nic: &str, ext: &str) -> Route {
    Route::new(Family::V4, vec![r(nic)], vec![r(ext)]).expect("valid route")
}

fn v6_route() -> Route {
    Route::new(
        Family::V6,
        vec![r("2402:1f00:8101:83f::1")],
        vec![r("2402:1f00:8101:83f::1")],
    )
    .and_then(|x| x.with_link_locals(vec![r("fe80::ae1f:6bff:fe94:531a")]))
    .expect("valid route")
    .with_interface(Some(IfRef {
        name: "eth0".into(),
        index: Some(3),
    }))
}

#[test]
fn construction_checks() {
    let zero = IpRange::from_int(0, Some(ip("255.255.255.255"))).expect("valid");
    assert_eq!(
        Route::new(Family::V4, vec![r("192.168.0.1")], vec![zero]).err(),
        Some(Error::ZeroExternal(ip("0.0.0.0")))
    );
    assert_eq!(
        Route::new(Family::V4, vec![], vec![r("8.8.8.8")]).err(),
        Some(Error::NoNicIps)
    );
    assert!(Route::new(Family::V4, vec![r("::1")], vec![]).is_err());
    assert!(Route::new(Family::V4, vec![r("10.0.0.1")], vec![r("fd00::1")]).is_err());
    // Private external addresses (test labs, CGNAT) and no external address are allowed.
    assert!(Route::new(Family::V4, vec![r("10.0.0.1")], vec![r("198.51.100.1")]).is_ok());
    let bare = Route::new(Family::V4, vec![r("10.0.0.1")], vec![]).expect("valid");
    assert_eq!(bare.len(), 0);
    assert!(bare != bare.clone());
}

#[test]
fn route_ops() {
    let r1 = v4("192.168.0.1", "8.8.8.8");
    let r2 = v4("192.168.0.2", "8.8.8.8");
    let r3 = v4("192.168.0.1", "7.7.7.7");
    let r4 = v4("192.168.0.3", "9.9.9.0/30");
    assert_eq!(r1.len(), 1);
    assert_eq!(r4.len(), 3);
    assert!(r1 == r1.clone());
    assert!(r1 == r2);
    assert!(r1 != r3);
    assert!(r1.has_nic_ip(&r("192.168.0.1")));
    assert!(!r1.has_nic_ip(&r("10.0.0.1")));
    assert!(r4 != r("1.1.1.1"));
    assert!(r4 != ip("1.1.1.1"));
    assert!(r4 == ip("9.9.9.2"));
    assert!(r3 < r1);
    assert_eq!(r1.nic(), ip("192.168.0.1"));
    assert_eq!(r1.ext(), Some(ip("8.8.8.8")));
    assert_eq!(r1.link_local(), None);

    let pool = RoutePool::new(vec![r1.clone(), r3.clone(), r4.clone()]);
    assert!(pool.contains(&r2));
    assert!(pool.contains(&ip("7.7.7.7")));
    let other = pool.other_than(&r1).expect("another route");
    assert!(other != r1);
    let alt = pool.alt(&r1, 10, std::slice::from_ref(&r3));
    assert!(!alt.is_empty());
    assert!(alt.iter().all(|a| *a != r1 && *a != r3));
    assert_eq!(alt.len(), 3);
    assert_eq!(pool.alt(&r1, 2, &[]).len(), 2);
    assert_eq!(pool.iter().count(), 5);
    assert_eq!(
        pool.iter().next_back().and_then(|x| x.ext()),
        Some(ip("9.9.9.3"))
    );
}

#[test]
fn pool_indexing_example() {
    let routes = vec![
        v4("192.168.0.1", "8.8.8.0/24"),
        v4("192.168.0.2", "7.7.7.0/24"),
        v4("192.168.0.3", "9.9.9.9"),
    ];
    let mut pool = RoutePool::new(routes);
    let ext = |x: Option<Route>| x.and_then(|x| x.ext());
    assert_eq!(pool.len(), 511);
    assert_eq!(ext(pool.get(10)), Some(ip("8.8.8.11")));
    assert_eq!(ext(pool.get(265)), Some(ip("7.7.7.11")));
    assert_eq!(ext(pool.get(-1)), Some(ip("9.9.9.9")));
    assert_eq!(ext(pool.get(511)), None);
    let s: Vec<_> = pool
        .slice(Some(254), Some(256))
        .filter_map(|x| x.ext())
        .collect();
    assert_eq!(s, vec![ip("8.8.8.255"), ip("7.7.7.1")]);
    assert_eq!(ext(pool.iter().next()), Some(ip("8.8.8.1")));
    assert_eq!(ext(pool.iter().next_back()), Some(ip("9.9.9.9")));
    assert_eq!(pool.get(10).map(|x| x.nic()), Some(ip("192.168.0.1")));
    assert_eq!(ext(pool.pop().ok()), Some(ip("8.8.8.1")));
    assert_eq!(ext(pool.pop().ok()), Some(ip("8.8.8.2")));
    assert_eq!(pool.get_many(&[0, 255]).len(), 2);

    let back = RoutePool::from_value(&pool.to_value()).expect("round trip");
    assert_eq!(back.routes().len(), 3);
    assert!(
        back.routes()
            .iter()
            .zip(pool.routes())
            .all(|(a, b)| a.identical(b))
    );

    let mut one = RoutePool::new(vec![v4("10.0.0.1", "1.3.3.7")]);
    assert!(one.pop().is_ok());
    assert_eq!(one.pop().err(), Some(Error::NoMoreRoutes));
    assert!(RoutePool::default().get(0).is_none());
}

#[test]
fn bind_table_v4() {
    let route = v4("192.168.0.1", "8.8.8.8");
    let rows: &[(Option<&str>, &str)] = &[
        (None, "192.168.0.1:80"),
        (Some("*"), "0.0.0.0:80"),
        (Some(""), "0.0.0.0:80"),
        (Some("0.0.0.0"), "0.0.0.0:80"),
        (Some("localhost"), "127.0.0.1:80"),
        (Some("127.0.0.1"), "127.0.0.1:80"),
        (Some("::1"), "127.0.0.1:80"),
        (Some("8.8.8.8"), "8.8.8.8:80"),
    ];
    for &(input, want) in rows {
        let bound = route.bind(80, input).expect("binds");
        assert_eq!(
            bound.bind_addr(),
            Some(want.parse().expect("valid")),
            "{input:?}"
        );
    }
    assert!(!route.is_bound());
    assert!(matches!(
        route.bind(80, Some("::")),
        Err(Error::WrongFamily { .. })
    ));
    assert!(matches!(
        route.bind(80, Some("nope")),
        Err(Error::BadBindIp(_))
    ));
    let rebound = route
        .bind(80, None)
        .and_then(|b| b.bind(81, Some("*")))
        .expect("re-binds");
    assert_eq!(
        rebound.bind_addr(),
        Some("0.0.0.0:81".parse().expect("valid"))
    );
    assert_eq!(
        rebound.loopback_addr(),
        "127.0.0.1:81".parse().expect("valid")
    );
}

#[test]
fn bind_table_v6() {
    let route = v6_route();
    let sa = |ip: &str, scope: u32| {
        SocketAddr::V6(SocketAddrV6::new(ip.parse().expect("v6"), 80, 0, scope))
    };
    let rows: &[(Option<&str>, SocketAddr)] = &[
        (None, sa("2402:1f00:8101:83f::1", 0)),
        (Some("::"), sa("::", 0)),
        (Some("::/0"), sa("::", 0)),
        (Some("*"), sa("::", 0)),
        (Some(""), sa("::", 0)),
        (Some("0000:0000:0000:0000:0000:0000:0000:0000"), sa("::", 0)),
        (Some("localhost"), sa("::1", 0)),
        (
            Some("fe80::ae1f:6bff:fe94:531a"),
            sa("fe80::ae1f:6bff:fe94:531a", 3),
        ),
        (Some("fe80::1%7"), sa("fe80::1", 7)),
        (Some("fe80::1%eth0"), sa("fe80::1", 3)),
        (Some("fd00::2"), sa("fd00::2", 0)),
    ];
    for &(input, want) in rows {
        let bound = route.bind(80, input).expect("binds");
        assert_eq!(bound.bind_addr(), Some(want), "{input:?}");
    }
    assert!(matches!(
        route.bind(80, Some("fe80::1%wlan0")),
        Err(Error::UnknownScope { .. })
    ));
    let orphan = route.clone().with_interface(None);
    assert_eq!(
        orphan.bind(80, Some("fe80::1")).err(),
        Some(Error::NoScope(ip("fe80::1")))
    );
    assert_eq!(route.link_local(), Some(ip("fe80::ae1f:6bff:fe94:531a")));
}

#[test]
fn json_shapes() {
    let route = v6_route();
    let v = route.to_value();
    assert_eq!(v["af"], 10);
    assert_eq!(
        v["nic_ips"][0]["ip"],
        "2402:1f00:8101:083f:0000:0000:0000:0001"
    );
    assert_eq!(
        v["link_local_ips"][0]["ip"],
        "fe80:0000:0000:0000:ae1f:6bff:fe94:531a"
    );
    let back = Route::from_value(&v).expect("round trip");
    assert!(back.identical(&route.clone().with_interface(None)));
    // The seed's older shape: no link_local_ips, Windows' AF_INET6 = 23.
    let old = json!({"af": 23, "nic_ips": [{"ip": "fe80::1", "cidr": 128, "af": 23}],
                     "ext_ips": [{"ip": "2020:deed:beef::", "cidr": 128, "af": 23}]});
    let old = Route::from_value(&old).expect("older shape");
    assert_eq!(old.family(), Family::V6);
    assert!(old.link_local_ips().is_empty());
    assert!(Route::from_value(&json!({"af": 2, "ext_ips": []})).is_err());
    assert!(Route::from_value(&json!({"af": 99, "nic_ips": [], "ext_ips": []})).is_err());
    assert!(RoutePool::from_value(&json!({"no": "list"})).is_err());
}
