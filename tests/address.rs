//! Resolving addresses without any DNS traffic leaving the machine: literals, names answered
//! locally (`localhost`, a hosts file, the special-use `.invalid`), and a silent loopback
//! "name server" for the timeout path. Every test that could reach DNS sets `name_servers`.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use p2pd::net::address::{Address, Error, Family, ResolveOptions, resolve};

/// A UDP socket on loopback that never answers, standing in for a dead name server.
fn silent_server() -> (std::net::UdpSocket, SocketAddr) {
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind silent server");
    let addr = sock.local_addr().expect("silent server address");
    (sock, addr)
}

fn loopback_only(server: SocketAddr, timeout: Duration) -> ResolveOptions {
    ResolveOptions {
        timeout,
        name_servers: Some(vec![server]),
        ..ResolveOptions::default()
    }
}

#[tokio::test]
async fn ipv4_and_ipv6_literals_need_no_lookup() {
    let opts = ResolveOptions::default();
    let a = resolve("203.0.113.5", 80, Family::V4, &opts).await.unwrap();
    assert_eq!(a.tup(), ("203.0.113.5".parse::<IpAddr>().unwrap(), 80));
    assert_eq!(a.family, Family::V4);
    assert_eq!(a.host, "203.0.113.5");

    let b = resolve("[::1]", 8080, Family::V6, &opts).await.unwrap();
    assert_eq!(b.socket_addr(), "[::1]:8080".parse::<SocketAddr>().unwrap());
    assert_eq!(b.family, Family::V6);
}

#[tokio::test]
async fn unspecified_literals_become_loopback() {
    let opts = ResolveOptions::default();
    let a = resolve("0.0.0.0", 1, Family::V4, &opts).await.unwrap();
    assert_eq!(a.ip, Family::V4.loopback());
    let b = resolve("::", 1, Family::V6, &opts).await.unwrap();
    assert_eq!(b.ip, Family::V6.loopback());
}

#[tokio::test]
async fn wrong_family_literal_is_an_error_naming_both_families() {
    let opts = ResolveOptions::default();
    let e = resolve("203.0.113.5", 80, Family::V6, &opts)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::WrongFamily { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "203.0.113.5 is an IPv4 address but the route is IPv6"
    );
    let e = resolve("::1", 80, Family::V4, &opts).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "::1 is an IPv6 address but the route is IPv4"
    );
}

#[tokio::test]
async fn empty_host_is_an_error() {
    let e = resolve("  ", 80, Family::V4, &ResolveOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::EmptyHost));
}

#[tokio::test]
async fn localhost_resolves_in_both_families() {
    let (_server, addr) = silent_server();
    let opts = loopback_only(addr, Duration::from_secs(2));
    let v4 = resolve("localhost", 53, Family::V4, &opts).await.unwrap();
    assert_eq!(v4.ip, Family::V4.loopback());
    assert_eq!(v4.host, "localhost");
    let v6 = resolve("localhost", 53, Family::V6, &opts).await.unwrap();
    assert_eq!(v6.ip, Family::V6.loopback());
    assert_eq!(v6.family, Family::V6);
}

#[tokio::test]
async fn names_come_from_the_hosts_file() {
    let (_server, addr) = silent_server();
    let mut hosts = tempfile::NamedTempFile::new().unwrap();
    writeln!(
        hosts,
        "# test hosts\n198.51.100.7 peer.test\n::1 peer6.test"
    )
    .unwrap();
    let opts = ResolveOptions {
        hosts_file: Some(hosts.path().to_path_buf()),
        ..loopback_only(addr, Duration::from_millis(400))
    };
    let a: Address = resolve("peer.test", 9, Family::V4, &opts).await.unwrap();
    assert_eq!(a.ip, "198.51.100.7".parse::<IpAddr>().unwrap());
    let b = resolve("peer6.test", 9, Family::V6, &opts).await.unwrap();
    assert_eq!(b.ip, Family::V6.loopback());
}

#[tokio::test]
async fn unresolvable_invalid_name_fails_quickly() {
    let (_server, addr) = silent_server();
    let opts = loopback_only(addr, Duration::from_secs(2));
    let start = Instant::now();
    let e = resolve("nonexistent.invalid", 80, Family::V4, &opts)
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::NotFound { .. } | Error::Lookup { .. }),
        "{e:?}"
    );
    let text = e.to_string();
    assert!(
        text.contains("nonexistent.invalid") && text.contains("IPv4"),
        "{text}"
    );
    // `.invalid` is answered without a query (RFC 6761), so well under the 2 s budget.
    assert!(start.elapsed() < Duration::from_millis(1500));
}

#[tokio::test]
async fn silent_name_server_times_out_with_host_and_family() {
    let (_server, addr) = silent_server();
    let opts = loopback_only(addr, Duration::from_millis(300));
    let start = Instant::now();
    let e = resolve("peer.test", 80, Family::V6, &opts)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::TimedOut { .. }), "{e:?}");
    assert_eq!(e.to_string(), "no IPv6 address for peer.test within 0.3 s");
    // Generous bound: the point is that it is not hickory's 15 s default.
    assert!(start.elapsed() < Duration::from_secs(5));
}

/// What an unusable `resolv.conf` falls back to: no name servers, hosts file only.
#[tokio::test]
async fn without_name_servers_hosts_and_localhost_still_work() {
    let mut hosts = tempfile::NamedTempFile::new().unwrap();
    writeln!(hosts, "203.0.113.9 lab.test").unwrap();
    let opts = ResolveOptions {
        name_servers: Some(Vec::new()),
        hosts_file: Some(hosts.path().to_path_buf()),
        ..ResolveOptions::default()
    };
    let a = resolve("lab.test", 1, Family::V4, &opts).await.unwrap();
    assert_eq!(a.ip, "203.0.113.9".parse::<IpAddr>().unwrap());
    let b = resolve("localhost", 1, Family::V6, &opts).await.unwrap();
    assert_eq!(b.ip, Family::V6.loopback());

    let start = Instant::now();
    let e = resolve("elsewhere.test", 1, Family::V4, &opts)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("elsewhere.test"), "{e}");
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "no server means no waiting"
    );
}
