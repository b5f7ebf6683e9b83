//! A mapping's lifecycle on loopback, without root: renewal at half the lifetime the
//! gateway granted, deletion by `close()` and by dropping the last handle, and a pipe
//! that owns its mapping (closing or dropping the pipe deletes it; mapping twice gives
//! the same one), against the scripted NAT-PMP/PCP gateway of `common::pmp_gateway`
//! that each test runs on an address of its own. The namespace lab (tests/portmap.rs)
//! proves the same against nftables; this proves the logic wherever tests run.

mod common;

use common::pmp_gateway::{EXTERNAL_IP, Options, PmpGateway, What};
use p2pd::net::pipe::{MapError, Pipe, PipeOptions, Proto};
use p2pd::net::portmap::{self, Gateway, MapSpec, Mapping, ProbeOptions, Protocol};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn gateway(gw: &PmpGateway) -> Gateway {
    Gateway::new(IpAddr::V4(gw.ip))
}

fn spec(proto: Proto, port: u16, lifetime: u64) -> MapSpec {
    MapSpec {
        proto,
        internal_port: port,
        external_port: 0,
        lifetime: Duration::from_secs(lifetime),
    }
}

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// Asked for 60 s, granted 2 s: renewed at 1 s and 2 s (half of what was granted, not of
/// what was asked), each renewal asking for 60 s again; dropped, deleted.
fn renews_then_deletes_on_drop(pcp: bool) {
    let gw = PmpGateway::start(Options {
        pcp,
        max_lifetime: 2,
        ..Options::default()
    });
    let rt = runtime();
    let port = 41000 + u16::from(pcp);
    let (mapping, _) = rt
        .block_on(Mapping::create(
            gateway(&gw),
            spec(Proto::Udp, port, 60),
            ProbeOptions::default(),
        ))
        .expect("the scripted gateway grants");
    let want = if pcp { Protocol::Pcp } else { Protocol::Pmp };
    assert_eq!(mapping.protocol(), want);
    assert_eq!(mapping.external(), (Some(IpAddr::V4(EXTERNAL_IP)), port));
    assert_eq!(mapping.lifetime(), Duration::from_secs(2));
    let made = gw.wait_for(What::Map, 1, Duration::ZERO)[0];
    let renewals = gw.wait_for(What::Renew, 2, Duration::from_secs(5));
    assert_eq!(renewals.len(), 2, "renewals: {:?}", gw.requests());
    let mut before = made.at;
    for r in &renewals {
        let gap = r.at - before;
        assert!(
            gap >= Duration::from_millis(900) && gap < Duration::from_millis(1900),
            "renewed {gap:?} after the last grant of 2 s (want about 1 s)"
        );
        assert_eq!(
            r.lifetime, 60,
            "a renewal asks for the lifetime asked first"
        );
        before = r.at;
    }
    let started = Instant::now();
    while mapping.renewals() < 2 && started.elapsed() < Duration::from_secs(1) {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(mapping.renewals(), 2);
    assert_eq!(mapping.last_error(), None);

    let copy = mapping.clone();
    drop(mapping);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(gw.count(What::Delete), 0, "deleted while a copy is held");
    drop(copy);
    let deletes = gw.wait_for(What::Delete, 1, Duration::from_millis(1500));
    assert_eq!(deletes.len(), 1, "dropping the last handle deletes it");
    assert_eq!((deletes[0].proto, deletes[0].internal_port), (17, port));
    assert_eq!(gw.live(), 0);
}

#[test]
fn pcp_mapping_renews_at_half_life_and_is_deleted_on_drop() {
    renews_then_deletes_on_drop(true);
}

#[test]
fn nat_pmp_mapping_renews_at_half_life_and_is_deleted_on_drop() {
    renews_then_deletes_on_drop(false);
}

#[test]
fn close_deletes_before_it_returns_and_only_once() {
    let gw = PmpGateway::start(Options::default());
    let rt = runtime();
    rt.block_on(async {
        let (m, report) = Mapping::create(
            gateway(&gw),
            spec(Proto::Tcp, 41010, 60),
            ProbeOptions::default(),
        )
        .await
        .unwrap();
        assert_eq!(report.external_ip, Some(IpAddr::V4(EXTERNAL_IP)));
        assert!(m.is_open());
        m.close().await.expect("deleted");
        assert_eq!(gw.count(What::Delete), 1);
        assert!(!m.is_open());
        m.close()
            .await
            .expect("a second close is the first's outcome");
        assert_eq!(gw.count(What::Delete), 1);
        assert_eq!(m.renew().await, Err(portmap::Error::Closed));
        assert_eq!(gw.count(What::Renew), 0);
    });
}

#[test]
fn a_pipe_owns_its_mapping() {
    let gw = PmpGateway::start(Options::default());
    let rt = runtime();
    let kept = rt.block_on(async {
        let udp = Pipe::open(Proto::Udp, None, loopback(), PipeOptions::default())
            .await
            .unwrap();
        let port = udp.local_addr().port();
        assert_eq!(udp.external(), None);
        let m = udp
            .map(gateway(&gw), Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(
            udp.external(),
            Some(SocketAddr::new(IpAddr::V4(EXTERNAL_IP), port))
        );
        assert_eq!(m.internal(), udp.local_addr());
        let again = udp
            .map(gateway(&gw), Duration::from_secs(60))
            .await
            .unwrap();
        assert!(again.same(&m), "a second map() returns the pipe's mapping");
        assert_eq!(gw.count(What::Map), 1);
        udp.close().await;
        assert_eq!(
            gw.count(What::Delete),
            1,
            "close() deleted it before returning"
        );
        assert!(!m.is_open());
        assert!(udp.mapping().is_none());
        assert!(matches!(
            udp.map(gateway(&gw), Duration::from_secs(60)).await,
            Err(MapError::Closed { .. })
        ));

        let tcp = Pipe::open(Proto::Tcp, None, loopback(), PipeOptions::default())
            .await
            .unwrap();
        let m = tcp
            .map(gateway(&gw), Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(m.proto(), Proto::Tcp);
        let client = Pipe::open(
            Proto::Tcp,
            Some(tcp.local_addr()),
            loopback(),
            PipeOptions::default(),
        )
        .await
        .unwrap();
        assert!(matches!(
            client.map(gateway(&gw), Duration::from_secs(60)).await,
            Err(MapError::NotAServer { .. })
        ));
        client.close().await;
        // The caller keeps a copy of the Mapping; the pipe goes all the same.
        drop(tcp);
        m
    });
    let deletes = gw.wait_for(What::Delete, 2, Duration::from_millis(1500));
    assert_eq!(deletes.len(), 2, "dropping the pipe deletes its mapping");
    assert_eq!(deletes[1].proto, 6);
    let started = Instant::now();
    while kept.is_open() && started.elapsed() < Duration::from_secs(1) {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(!kept.is_open(), "a copy sees the pipe's mapping closed");
    assert_eq!(gw.live(), 0);
}

#[test]
fn pipe_open_map_option_and_server_map_in_a_script() {
    let gw = PmpGateway::start(Options::default());
    let mut s = common::shell();
    let ip = gw.ip;
    s.run(&format!(
        r#"let GW = #{{gateway: "{ip}", lifetime: 60}};
           let s = pipe_open(UDP, (), "127.0.0.1", #{{map: GW}});"#
    ));
    assert_eq!(
        s.echo("s.external[0]"),
        format!("\"{EXTERNAL_IP}\""),
        "server.external"
    );
    assert_eq!(s.echo("s.external[1] == s.local[1]"), "true");
    assert_eq!(s.echo("s.mapping.protocol"), "\"PCP\"");
    assert_eq!(s.echo("s.map(GW).external == s.mapping.external"), "true");
    assert_eq!(
        gw.count(What::Map),
        1,
        "map() on a mapped pipe made another"
    );
    s.run("let m = s.mapping; s.close();");
    assert_eq!(gw.count(What::Delete), 1);
    assert_eq!(s.echo("m.is_open"), "false");
    assert_eq!(s.echo("type_of(s.mapping)"), "\"()\"");

    // server.map() on a server opened without the option; dropped, deleted.
    s.run(r#"let t = pipe_open(TCP, (), "127.0.0.1"); let m2 = t.map(GW); t = ();"#);
    assert_eq!(
        gw.wait_for(What::Delete, 2, Duration::from_millis(1500))
            .len(),
        2
    );
    // The gateway logs the deletion before it answers: give the answer time to land.
    let closed = "let n = 0; while m2.is_open && n < 100 { sleep(0.01); n += 1; } m2.is_open";
    assert_eq!(s.echo(closed), "false");

    // Refused shapes, in words.
    let e = s.error(r#"pipe_open(UDP, "127.0.0.1:9", (), #{map: true})"#);
    assert!(e.contains("map option is for servers"), "{e}");
    let e = s.error(r#"pipe_open(UDP, (), "127.0.0.1", #{mapp: true})"#);
    assert!(
        e.contains("unknown pipe_open option 'mapp'; known: map"),
        "{e}"
    );
    let e = s.error(r#"pipe_open(UDP, (), "127.0.0.1", #{map: "yes"})"#);
    assert!(e.contains("map option must be true, a lifetime"), "{e}");
    let e = s.error(r#"pipe_open(UDP, (), "127.0.0.1", #{map: 1})"#);
    assert!(e.contains("lifetime must be at least 2 seconds"), "{e}");
    let e = s.error(r#"pipe_open(UDP, (), "127.0.0.1").map()"#);
    assert!(e.contains("no gateway to map 127.0.0.1:"), "{e}");
    assert_eq!(gw.count(What::Map), 2);
    assert_eq!(gw.live(), 0);
}

/// A gateway that never answers costs the 1 s bound, not more.
#[test]
fn silent_gateway_is_bounded() {
    let rt = runtime();
    let started = Instant::now();
    let r = rt.block_on(portmap::probe(
        Gateway::new("127.0.0.1".parse().unwrap()),
        Default::default(),
    ));
    let took = started.elapsed();
    assert!(!r.anything_answered());
    assert!(
        took >= Duration::from_millis(950) && took < Duration::from_millis(1500),
        "{took:?}"
    );
    assert!(r.summary().contains("at 127.0.0.1 within 1 s"));
}
