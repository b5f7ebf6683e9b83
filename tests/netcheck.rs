//! `p2pd-repl netcheck`, the real binary, in the namespace lab (tests/natlab/lab.sh
//! `masquerade`: the built-in STUN server on inet's 203.0.113.1:3478 / .2:3479, the
//! scripted gateway tests/natlab/gateway.py on the router): from the client namespace it
//! must give the external address, the NAT type and behaviour the lab really has
//! (tests/common/expected.rs), the gateway's port mapping protocols and an RTT for every
//! STUN server asked, and map nothing; so must `netcheck()` in a script. Offline it must
//! end within a few seconds and say why: STUN servers that never answer (203.0.113.41 is
//! nobody's), with the gateway answering and then silent too; and a namespace with no
//! default route at all.
//!
//! Needs root; skips loudly without it, fails under CI. `P2PD_LAB_PREFIX` renames the
//! namespaces (default `p2pdc-`).

mod common;

use common::expected::expect;
use common::natlab::{LabLock, unavailable};
use common::netns::{cannot_run, ip, run};
use common::portmap_lab::{self as lab, CLIENT_IP, GATEWAY_IP, PUBLIC_IP, bin, repl};
use serde_json::Value;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const STUN: &str = "203.0.113.1:3478";
/// Nothing answers there: the router's ARP for it goes unanswered.
const SILENT_STUN: &str = "203.0.113.41:3478";
/// Generous against the 2 s interface start and 1 s gateway probe: "a few seconds".
const OFFLINE_LIMIT: Duration = Duration::from_secs(5);

fn p() -> &'static str {
    lab::prefix("p2pdc-")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `netcheck ARGS` in `ns` (`None`: the lab's client), which must exit with `code`;
/// its output and how long it took.
fn netcheck_in(ns: Option<&str>, args: &[&str], code: i32) -> (Output, Duration) {
    let mut all = vec!["netcheck"];
    all.extend_from_slice(args);
    let started = Instant::now();
    let out = match ns {
        None => repl(p(), &all),
        Some(ns) => run(
            Command::new("ip")
                .args(["netns", "exec", ns, bin()])
                .args(&all),
            Duration::from_secs(30),
        ),
    };
    let took = started.elapsed();
    assert_eq!(
        out.status.code(),
        Some(code),
        "netcheck {args:?}:\n{}",
        text(&out)
    );
    (out, took)
}

fn netcheck_json(args: &[&str]) -> (Value, Duration) {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let (out, took) = netcheck_in(None, &all, 0);
    let v = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("netcheck --json is not JSON ({e}):\n{}", text(&out)));
    (v, took)
}

fn online() {
    let gw = lab::gateway(p(), &["--pmp", "--pcp", "--upnp"]);
    let (v, took) = netcheck_json(&["--stun", STUN]);
    let v4 = &v["ipv4"];
    assert_eq!(v["interface"], "eth0", "{v:#}");
    assert_eq!(v4["local"], CLIENT_IP, "{v:#}");
    assert_eq!(v4["external"], PUBLIC_IP, "{v:#}");
    assert_eq!(v["ipv6"]["local"], Value::Null, "the lab has no IPv6 here");
    let bad = expect("masquerade").mismatches(&v4["nat"], CLIENT_IP, PUBLIC_IP);
    assert!(bad.is_empty(), "NAT: {bad:?}\n{:#}", v4["nat"]);
    let pm = &v["port_mapping"];
    for key in ["upnp", "pmp", "pcp"] {
        assert_eq!(pm[key], true, "{key}: {pm:#}");
    }
    assert_eq!(pm["gateway"], GATEWAY_IP);
    assert_eq!(pm["external_ip"], PUBLIC_IP);
    // Every server the NAT test asked (the one given and its RFC 5780 alternates), with
    // a round trip.
    let rtts = v4["stun_rtt_ms"].as_object().expect("stun_rtt_ms");
    for server in [
        STUN,
        "203.0.113.2:3478",
        "203.0.113.2:3479",
        "203.0.113.1:3479",
    ] {
        let ms = rtts.get(server).and_then(Value::as_f64);
        assert!(
            ms.is_some_and(|ms| ms > 0.0 && ms < 1000.0),
            "{server}: {rtts:?}"
        );
    }
    assert!(took < OFFLINE_LIMIT, "took {took:?}");
    assert!(
        !gw.text().contains("\"map\""),
        "netcheck mapped something: {}",
        gw.text()
    );

    // The same report as an object in the REPL.
    let script = "let r = netcheck().to_map(); print(`external=${r.ipv4.external}`); \
                  print(`nat=${r.ipv4.nat.p2pd.type}`); print(`pcp=${r.port_mapping.pcp}`);";
    let out = repl(p(), &["--stun", STUN, "-e", script]);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    for line in ["external=203.0.113.100", "nat=5", "pcp=true"] {
        assert!(said.lines().any(|l| l == line), "no {line:?} in:\n{said}");
    }

    table_says(
        STUN,
        &[
            "* IPv4: yes, external 203.0.113.100 (local 10.77.0.10)",
            "* NAT (IPv4): 5 (restrict port); mapping endpoint-independent, filtering address-and-port-dependent",
            "* Hairpinning (IPv4): false",
            "* Port mapping: UPnP, NAT-PMP, PCP (gateway 10.77.0.1, external 203.0.113.100)",
            "- 203.0.113.1:3478: ",
        ],
    );
}

/// The table `netcheck --stun STUN` prints holds each of `lines`, within the bound.
fn table_says(stun: &str, lines: &[&str]) {
    let (out, took) = netcheck_in(None, &["--stun", stun], 0);
    let table = text(&out);
    for line in lines {
        assert!(table.contains(line), "no {line:?} in:\n{table}");
    }
    assert!(took < OFFLINE_LIMIT, "took {took:?}:\n{table}");
}

/// STUN servers that never answer: no external address, said in words, within the
/// interface start's bound, with the gateway answering and then with it silent too.
fn offline_stun() {
    {
        let _gw = lab::gateway(p(), &["--pmp", "--pcp"]);
        let (v, took) = netcheck_json(&["--stun", SILENT_STUN]);
        assert_eq!(v["ipv4"]["local"], CLIENT_IP, "{v:#}");
        assert_eq!(v["ipv4"]["external"], Value::Null, "{v:#}");
        assert_eq!(v["ipv4"]["nat"], Value::Null, "{v:#}");
        assert_eq!(v["port_mapping"]["pcp"], true, "{v:#}");
        assert!(took < OFFLINE_LIMIT, "took {took:?}");
    }
    table_says(
        SILENT_STUN,
        &[
            "* IPv4: no external address (no STUN server answered from 10.77.0.10)",
            "* Port mapping: none (no port mapping protocol answered (UPnP, NAT-PMP, PCP) at 10.77.0.1 within 1 s)",
            "* Warning: 203.0.113.41:3478: no reply within 2.0 s",
        ],
    );
}

/// A namespace of this test's own with only loopback up.
struct NoRoute(String);

impl Drop for NoRoute {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.0]);
    }
}

fn no_default_route() -> Result<(), String> {
    let ns = NoRoute(lab::ns(p(), "noroute"));
    ip(&["netns", "add", &ns.0])?;
    ip(&["-n", &ns.0, "link", "set", "lo", "up"])?;
    for json in [false, true] {
        let args: &[&str] = if json {
            &["--json", "--stun", STUN]
        } else {
            &["--stun", STUN]
        };
        let (out, took) = netcheck_in(Some(&ns.0), args, 1);
        let said = text(&out);
        assert!(
            said.contains(
                "p2pd-repl netcheck: no default interface for IPv4 or IPv6: the routing table has no default route"
            ),
            "{said}"
        );
        assert!(took < OFFLINE_LIMIT, "took {took:?}");
    }
    Ok(())
}

#[test]
fn netcheck_lab() {
    if let Some(why) = unavailable(&["ip", "nft", "conntrack", "python3"]) {
        return cannot_run(
            "netcheck_lab",
            &format!("{why} (needs root, ip netns, nft, conntrack, python3)"),
        );
    }
    let _lock = LabLock::take();
    let begun = Instant::now();
    let primary = STUN;
    let alternate = "203.0.113.2:3479";
    let lab = match lab::up(p(), &[bin(), "stun-server", primary, alternate]) {
        Ok(l) => l,
        Err(e) => return cannot_run("netcheck_lab", &e),
    };
    let log = lab.state_dir().join("server0.log");
    let started = Instant::now();
    while !std::fs::read_to_string(&log).is_ok_and(|s| s.contains(alternate)) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "STUN server not ready: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let up = begun.elapsed();
    online();
    let checked = begun.elapsed();
    offline_stun();
    let offline = begun.elapsed();
    drop(lab);
    if let Err(e) = no_default_route() {
        cannot_run("netcheck_lab (no default route)", &e);
    }
    eprintln!(
        "netcheck_lab: lab up {:.1} s, online {:.1} s, silent STUN {:.1} s, down and no route {:.1} s",
        up.as_secs_f64(),
        (checked - up).as_secs_f64(),
        (offline - checked).as_secs_f64(),
        (begun.elapsed() - offline).as_secs_f64()
    );
}
