//! `load_nat` end to end: on loopback against the built-in STUN server, and against every
//! NAT of the namespace lab (tests/natlab/lab.sh) with real nftables NATs in between.
//!
//! The lab test needs root and `ip netns`. Without them it prints a loud SKIP, unless CI is
//! set, where it fails. It runs the variants one after another inside one #[test] (one lab
//! at a time; a file lock also keeps other test binaries' labs away). The STUN server and
//! the probe run in the lab's namespaces by re-executing this test binary under
//! `ip netns exec` with P2PD_NATLAB_ROLE set (`server` or `probe`); the probe prints its
//! report as JSON on one line. Namespaces are removed on every exit path (Drop guard).

mod common;

use common::expected::{EXPECTED, Expect};

use common::natlab::LabLock;
use common::netns::{cannot_run, is_root};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use p2pd::net::nat::{
    Assumed, Delta, FilteringBehaviour, NatOptions, NatReport, NatType, ServerKind, load_nat,
    mapping_lifetime,
};
use p2pd::net::stun::StunServer;
use serde_json::Value;

const ROLE_ENV: &str = "P2PD_NATLAB_ROLE";
const LOCAL_ENV: &str = "P2PD_NATLAB_LOCAL";
const LIFETIME_ENV: &str = "P2PD_NATLAB_LIFETIME";
/// Namespaces of this test, apart from a lab someone runs by hand (default prefix).
const PREFIX: &str = "p2pdt-";
const PRIMARY: &str = "203.0.113.1:3478";
const ALTERNATE: &str = "203.0.113.2:3479";
const PUBLIC_IP: &str = "203.0.113.100";
/// A variant is retried this often before it fails: the lab's hash NATs drop a flow
/// whose external port collides with another's (nat-emulation.md pitfall 9).
const ATTEMPTS: usize = 3;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

// ----------------------------------------------------------------------------------------
// Loopback

#[test]
fn loopback_server_reads_as_open_internet() {
    runtime().block_on(async {
        let server = StunServer::start(addr("127.0.0.1:0"), Some(addr("127.0.0.2:0")))
            .await
            .expect("server on 127.0.0.1/127.0.0.2");
        let primary = server.local_addrs()[0];
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let report = load_nat(local, &[primary], NatOptions::default()).await;
        println!("{report}");
        assert_eq!(report.nat_type(), NatType::OpenInternet);
        assert_eq!(
            report.filtering,
            Some(FilteringBehaviour::EndpointIndependent)
        );
        assert_eq!(report.mapping, None, "no NAT, no mapping behaviour");
        assert_eq!(report.hairpin, None);
        assert_eq!(report.allocation, None);
        assert_eq!(report.external, Some(report.local));
        assert_eq!(report.delta(), Delta::Equal);
        assert_eq!(report.servers[0], primary);
        assert!(
            report
                .servers
                .contains(&addr(&format!("127.0.0.2:{}", primary.port())))
        );
        assert!(report.rtts.len() >= 4, "{:?}", report.rtts);
        assert_eq!(report.to_p2pd_json()["type"], 1);
        assert!(report.elapsed < Duration::from_secs(3));
    });
}

#[test]
fn silent_server_is_blocked_within_the_timeout() {
    runtime().block_on(async {
        let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
        let target = silent.local_addr().unwrap();
        let opts = NatOptions {
            timeout: Duration::from_millis(600),
            ..NatOptions::default()
        };
        let started = Instant::now();
        let report = load_nat("127.0.0.1".parse().unwrap(), &[target], opts).await;
        let took = started.elapsed();
        println!("{report}");
        assert_eq!(report.nat_type(), NatType::BlockedNat);
        assert_eq!(report.delta(), Delta::NotApplicable);
        assert_eq!(report.external, None);
        assert_eq!(report.filtering, None);
        assert_eq!(report.servers, vec![target]);
        assert!(report.rtts.is_empty());
        // Bound, not speed: the timeout plus scheduling slack.
        assert!(took < Duration::from_millis(1600), "took {took:?}");
    });
}

/// A dead server listed first and a server without an alternate address (it cannot do
/// the change tests) do not stop a good one from deciding.
#[test]
fn dead_and_incapable_servers_are_tolerated() {
    runtime().block_on(async {
        let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
        let dead = silent.local_addr().unwrap();
        let plain = StunServer::start(addr("127.0.0.3:0"), None).await.unwrap();
        let good = StunServer::start(addr("127.0.0.4:0"), Some(addr("127.0.0.5:0")))
            .await
            .unwrap();
        let servers = [dead, plain.local_addrs()[0], good.local_addrs()[0]];
        let report = load_nat(
            "127.0.0.1".parse().unwrap(),
            &servers,
            NatOptions::default(),
        )
        .await;
        println!("{report}");
        assert_eq!(report.nat_type(), NatType::OpenInternet);
        assert_eq!(
            report.filtering,
            Some(FilteringBehaviour::EndpointIndependent)
        );
        let kind = |a: SocketAddr| {
            report
                .stun
                .iter()
                .find(|s| s.address == Some(a))
                .map(|s| s.kind.clone())
        };
        assert_eq!(kind(good.local_addrs()[0]), Some(ServerKind::Changes));
        assert_eq!(
            kind(plain.local_addrs()[0]),
            Some(ServerKind::RefusesChange(420))
        );
        assert!(
            matches!(kind(dead), Some(ServerKind::Cut | ServerKind::Silent)),
            "{:?}",
            kind(dead)
        );
        for s in servers {
            assert!(
                report.servers.contains(&s),
                "{s} missing from {:?}",
                report.servers
            );
        }
        // The dead server costs nothing once the good one has answered: far below the
        // timeout (a bound, not a speed: the speed is in benches/nat.sh).
        assert!(
            report.elapsed < Duration::from_secs(1),
            "{:?}",
            report.elapsed
        );
    });
}

/// A server that advertises an OTHER-ADDRESS but answers every request, CHANGE-REQUEST
/// or not, from its primary address (and claims to have changed). Runs until dropped.
async fn lying_server() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    use p2pd::net::stun::{Packet, Repr};
    let socket = tokio::net::UdpSocket::bind("127.0.0.6:0").await.unwrap();
    let primary = socket.local_addr().unwrap();
    let other = SocketAddr::new("127.0.0.7".parse().unwrap(), primary.port() + 1);
    let task = tokio::spawn(async move {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            let Ok(req) = Packet::new_checked(&buf[..n]).and_then(|p| Repr::parse(&p)) else {
                continue;
            };
            let mut reply = Repr::binding_success(req.transaction_id);
            reply.xor_mapped_address = Some(from);
            reply.other_address = Some(other);
            reply.response_origin = Some(other);
            if let Ok(bytes) = reply.to_bytes() {
                let _ = socket.send_to(&bytes, from).await;
            }
        }
    });
    (primary, task)
}

/// The liar's change replies come from the wrong address: alone it leaves filtering
/// unknown, and no NAT with unknown filtering is not "open internet" but P2PD's
/// firewall type, marked assumed; listed before a good server, the good one decides.
#[test]
fn a_server_ignoring_change_requests_is_not_believed() {
    runtime().block_on(async {
        let (liar, task) = lying_server().await;
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let alone = load_nat(local, &[liar], NatOptions::default()).await;
        println!("{alone}");
        assert_eq!(alone.filtering, None);
        assert_eq!(alone.nat_type(), NatType::SymmetricUdpFirewall);
        assert_eq!(alone.assumed, vec![Assumed::Filtering]);
        assert!(matches!(
            alone.stun[0].kind,
            ServerKind::IgnoresChange { .. }
        ));

        let good = StunServer::start(addr("127.0.0.4:0"), Some(addr("127.0.0.5:0")))
            .await
            .unwrap();
        let both = load_nat(local, &[liar, good.local_addrs()[0]], NatOptions::default()).await;
        assert_eq!(
            both.filtering,
            Some(FilteringBehaviour::EndpointIndependent)
        );
        assert_eq!(both.nat_type(), NatType::OpenInternet);
        assert!(both.assumed.is_empty());
        assert!(both.servers.contains(&liar));
        task.abort();
    });
}

/// IPv6: only a plain server on ::1 (no second loopback address for an alternate): its
/// RESPONSE-PORT reply reaches a socket that never sent, so the path is open; and an
/// IPv6 local address with only IPv4 servers: nothing to ask, said so.
#[test]
fn ipv6_gets_a_sensible_answer() {
    runtime().block_on(async {
        let local: IpAddr = "::1".parse().unwrap();
        let Ok(server) = StunServer::start(addr("[::1]:0"), None).await else {
            return cannot_run("ipv6_gets_a_sensible_answer", "no ::1 on this host");
        };
        let report = load_nat(local, server.local_addrs(), NatOptions::default()).await;
        println!("{report}");
        assert_eq!(report.nat_type(), NatType::OpenInternet);
        assert_eq!(report.external, Some(report.local));
        assert_eq!(report.open_path, Some(true));
        assert_eq!(
            report.filtering,
            Some(FilteringBehaviour::EndpointIndependent)
        );
        assert!(report.assumed.is_empty());

        let v4_only = [addr("127.0.0.1:3478")];
        let report = load_nat(local, &v4_only, NatOptions::default()).await;
        assert!(!report.tested());
        let why = report.untested.clone().unwrap_or_default();
        assert!(why.contains("1 configured, 1 not IPv6"), "{why}");
        assert!(report.servers.is_empty());
        assert!(report.to_string().contains("Not tested"), "{report}");
    });
}

/// The lifetime check on loopback: nothing expires, so every check is alive.
#[test]
fn loopback_mapping_outlives_a_short_maximum() {
    runtime().block_on(async {
        let server = StunServer::start(addr("127.0.0.1:0"), Some(addr("127.0.0.2:0")))
            .await
            .unwrap();
        let max = Duration::from_millis(200);
        let window = Duration::from_millis(50);
        let l = mapping_lifetime(
            "127.0.0.1".parse().unwrap(),
            server.local_addrs()[0],
            max,
            3,
            Duration::from_millis(100),
            window,
        )
        .await
        .expect("measured");
        assert_eq!(l.alive, Some(max));
        assert_eq!(l.expired, None);
    });
}

// ----------------------------------------------------------------------------------------
// Namespace lab

fn lab_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/natlab/lab.sh")
}

fn lab(args: &[&str]) -> std::process::Output {
    Command::new(lab_script())
        .args(args)
        .env("P2PD_LAB_PREFIX", PREFIX)
        .stdin(Stdio::null())
        .output()
        .expect("run tests/natlab/lab.sh")
}

/// Takes the lab down on every exit, panics included.
struct LabGuard;

impl Drop for LabGuard {
    fn drop(&mut self) {
        let out = lab(&["down"]);
        if !out.status.success() {
            eprintln!("lab.sh down: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
}

/// Why the lab cannot run here, if it cannot.
fn lab_unavailable() -> Option<String> {
    if !is_root() {
        return Some("not root".into());
    }
    for tool in [
        ["ip", "netns", "list"],
        ["nft", "--version", ""],
        ["conntrack", "--version", ""],
    ] {
        let args: Vec<&str> = tool[1..]
            .iter()
            .copied()
            .filter(|a| !a.is_empty())
            .collect();
        let ok = Command::new(tool[0])
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return Some(format!("`{}` is not available", tool.join(" ").trim()));
        }
    }
    None
}

/// Child role: serve STUN on the lab's two internet addresses until killed (at most two
/// minutes, in case the parent died without taking the lab down).
fn serve() {
    runtime().block_on(async {
        let server = StunServer::start(addr(PRIMARY), Some(addr(ALTERNATE)))
            .await
            .expect("bind the lab STUN server");
        println!("NATLAB_READY {:?}", server.local_addrs());
        tokio::time::sleep(Duration::from_secs(120)).await;
    });
}

/// Child role: run load_nat from the client namespace and print the report.
fn probe() {
    let local: IpAddr = std::env::var(LOCAL_ENV)
        .expect("P2PD_NATLAB_LOCAL")
        .parse()
        .expect("client IP");
    let mut opts = NatOptions::default();
    if let Ok(max) = std::env::var(LIFETIME_ENV) {
        opts.lifetime = true;
        opts.lifetime_max = Duration::from_secs(max.parse().expect("lifetime seconds"));
        opts.lifetime_checks = 4;
    }
    let report: NatReport = runtime().block_on(load_nat(local, &[addr(PRIMARY)], opts));
    println!("NATLAB_JSON {}", report.to_json());
}

/// Brings `variant` up with the STUN server running and waits until it serves.
fn lab_up(variant: &str, extra: &[&str]) -> Result<String, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let exe = exe.to_string_lossy().into_owned();
    let mut args = vec!["up", variant];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--", "env", "P2PD_NATLAB_ROLE=server", &exe]);
    args.extend_from_slice(&["--exact", "natlab_every_variant", "--nocapture"]);
    let out = lab(&args);
    if !out.status.success() {
        return Err(format!(
            "lab.sh up {variant}: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let state = PathBuf::from(format!("/run/{PREFIX}lab"));
    let log = state.join("server0.log");
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        if std::fs::read_to_string(&log).is_ok_and(|s| s.contains("NATLAB_READY")) {
            let env = std::fs::read_to_string(state.join("env")).map_err(|e| e.to_string())?;
            return env
                .lines()
                .find_map(|l| l.strip_prefix("CLIENT_IP=").map(str::to_owned))
                .ok_or_else(|| "no CLIENT_IP in the lab env".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(format!(
        "STUN server not ready: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    ))
}

/// Runs the probe in the client namespace and returns its JSON report.
fn run_probe(client_ip: &str, lifetime: Option<&str>) -> Result<Value, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    // `timeout`: a hung probe must fail the test, not hang it (load_nat itself is bounded).
    let mut cmd = Command::new("timeout");
    cmd.args(["60", "ip", "netns", "exec", &format!("{PREFIX}client")])
        .arg(exe)
        .args(["--exact", "natlab_every_variant", "--nocapture"])
        .env(ROLE_ENV, "probe")
        .env(LOCAL_ENV, client_ip)
        .stdin(Stdio::null());
    if let Some(max) = lifetime {
        cmd.env(LIFETIME_ENV, max);
    }
    let out = cmd.output().map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("NATLAB_JSON "))
        .ok_or_else(|| {
            format!(
                "no report from the probe: {stdout}{}",
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
    serde_json::from_str(line).map_err(|e| e.to_string())
}

/// Every field of a lab report against the expectation, and the server it used.
fn mismatches(e: &Expect, v: &Value, client_ip: &str) -> Vec<String> {
    let mut bad = e.mismatches(v, client_ip, PUBLIC_IP);
    if v["servers"][0] != PRIMARY {
        bad.push(format!("servers: {}", v["servers"]));
    }
    bad
}

/// Every lab variant, one after another: bring it up, probe, check every field.
#[test]
fn natlab_every_variant() {
    match std::env::var(ROLE_ENV).as_deref() {
        Ok("server") => return serve(),
        Ok("probe") => return probe(),
        _ => {}
    }
    if let Some(why) = lab_unavailable() {
        return cannot_run(
            "natlab_every_variant",
            &format!("{why} (needs root, ip netns, nft, conntrack)"),
        );
    }
    let _lock = LabLock::take();
    let _guard = LabGuard;
    let mut failures = Vec::new();
    for e in EXPECTED.iter().filter(|e| !e.variant.starts_with("v6-")) {
        let mut last = Vec::new();
        for attempt in 1..=ATTEMPTS {
            let result = lab_up(e.variant, &[]).and_then(|ip| Ok((run_probe(&ip, None)?, ip)));
            last = match result {
                Ok((v, ip)) => {
                    println!(
                        "{:<21} type {} delta {} mapping {} filtering {} hairpin {} alloc {} ext {} in {:.1} ms",
                        e.variant,
                        v["p2pd"]["type"],
                        v["p2pd"]["delta"],
                        v["mapping"],
                        v["filtering"],
                        v["hairpin"],
                        v["allocation"],
                        v["external"],
                        v["elapsed_ms"].as_f64().unwrap_or(f64::NAN)
                    );
                    mismatches(e, &v, &ip)
                }
                Err(err) => vec![err],
            };
            if last.is_empty() {
                break;
            }
            println!("  attempt {attempt} of {}: {}", e.variant, last.join("; "));
        }
        if !last.is_empty() {
            failures.push(format!("{}: {}", e.variant, last.join("; ")));
        }
    }
    lifetime_on_the_lab(&mut failures);
    assert!(
        failures.is_empty(),
        "NAT lab failures:\n{}",
        failures.join("\n")
    );
}

/// Mapping lifetime on a port-restricted NAT whose UDP timeout is 3 s: checks after 1, 2,
/// 4 and 8 s of silence must find it alive at 2 s and gone at 4 s.
fn lifetime_on_the_lab(failures: &mut Vec<String>) {
    let result =
        lab_up("port-restricted", &["--udp-timeout", "3"]).and_then(|ip| run_probe(&ip, Some("8")));
    match result {
        Ok(v) => {
            println!("lifetime (udp timeout 3 s): {}", v["lifetime"]);
            let l = &v["lifetime"];
            if l["alive_ms"] != 2000.0 || l["expired_ms"] != 4000.0 {
                failures.push(format!(
                    "lifetime: got {l}, want alive 2000 ms, expired 4000 ms"
                ));
            }
        }
        Err(err) => failures.push(format!("lifetime: {err}")),
    }
}
