//! Port mapping end to end in the namespace lab (tests/natlab/lab.sh, `masquerade`):
//! miniupnpd 2.3.1 on the router configured for UPnP only, NAT-PMP/PCP only, all three
//! and none; and the scripted gateway (tests/natlab/gateway.py) for what miniupnpd
//! cannot do with the lab's documentation-range WAN address: real mappings (nftables
//! DNAT rules), multicast-only SSDP from an odd port, a first descriptor that is not
//! the IGD, and refusals. Each mapping must let an unsolicited packet from the inet
//! namespace reach a pipe in the client namespace, and stop doing so once deleted by
//! `close()`, by dropping it, or by the REPL process exiting; so must a server pipe's own
//! mapping (`server.map()`, pipe_open's `map` option) when the pipe is closed, dropped
//! or left at exit.
//!
//! The same lifecycle without root, on loopback: tests/portmap_loopback.rs.
//! Needs root for the lab; skips loudly without it, fails under CI. `P2PD_LAB_PREFIX`
//! renames the namespaces (default `p2pdm-`).

mod common;

use common::natlab::{LabLock, unavailable};
use common::netns::cannot_run;
use common::portmap_lab::{
    self as lab, CLIENT_IP, Daemon, GATEWAY_IP, PUBLIC_IP, dnat_rules, get, inet_tcp, inet_udp,
};
use std::time::{Duration, Instant};

fn p() -> &'static str {
    lab::prefix("p2pdm-")
}

fn client(script: &str) -> (Vec<(String, String)>, String) {
    lab::client(p(), script)
}

fn gateway(args: &[&str]) -> Daemon {
    lab::gateway(p(), args)
}

fn miniupnpd(upnp: bool, natpmp: bool) -> Daemon {
    let yes = |b: bool| if b { "yes" } else { "no" };
    let conf = format!(
        "ext_ifname=wan0\nlistening_ip=lan0\nhttp_port=5000\nenable_upnp={}\nenable_natpmp={}\nsecure_mode=yes\nuuid=3d3cec3a-8cf0-11e0-98ee-001a6bd2d07b\nallow 1024-65535 10.77.0.0/16 1024-65535\ndeny 0-65535 0.0.0.0/0 0-65535\n",
        yes(upnp),
        yes(natpmp)
    );
    let dir = std::env::temp_dir().join(format!("p2pd-miniupnpd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("miniupnpd.conf");
    std::fs::write(&path, conf).unwrap();
    let pid = dir.join("pid");
    Daemon::start(
        p(),
        &[
            "miniupnpd",
            "-f",
            path.to_str().unwrap(),
            "-d",
            "-P",
            pid.to_str().unwrap(),
        ],
        if natpmp {
            "Listening for NAT-PMP"
        } else {
            "HTTP listening"
        },
    )
}

/// Probes the lab's gateway by address.
const BY_ADDRESS: &str = r#"portmap_probe("10.77.0.1")"#;
/// Probes the default interface's gateway, found in the routing table.
const BY_INTERFACE: &str = "Interface().load_portmap()";

/// Runs the probe `expr` in the client namespace; upnp/pmp/pcp must be `want`, within
/// `max` seconds.
fn probe_expect(expr: &str, want: [&str; 3], max: f64) -> (Vec<(String, String)>, String) {
    let (vals, text) = client(&format!(
        r#"let r = {expr};
print(`upnp=${{r.upnp}}`); print(`pmp=${{r.pmp}}`); print(`pcp=${{r.pcp}}`);
print(`gateway=${{r.gateway}}`); print(`client=${{r.client}}`);
print(`elapsed=${{r.elapsed}}`); print(`summary=${{r.summary}}`);
for d in r.details {{ print(`detail=${{d}}`) }}"#
    ));
    let got = [
        get(&vals, "upnp", &text),
        get(&vals, "pmp", &text),
        get(&vals, "pcp", &text),
    ];
    assert_eq!(got, want, "upnp/pmp/pcp:\n{text}");
    assert_eq!(get(&vals, "gateway", &text), GATEWAY_IP, "{text}");
    assert_eq!(get(&vals, "client", &text), CLIENT_IP, "{text}");
    let elapsed: f64 = get(&vals, "elapsed", &text).parse().unwrap();
    assert!(
        elapsed <= max,
        "probe took {elapsed} s (bound {max}):\n{text}"
    );
    (vals, text)
}

fn miniupnpd_cases() {
    {
        let d = miniupnpd(true, true);
        let (_, text) = probe_expect(BY_ADDRESS, ["true", "false", "true"], 0.3);
        assert!(
            text.contains("NAT-PMP: answered but refused: network failure (result 3)"),
            "{text}"
        );
        // The probe created nothing: no mapping action reached miniupnpd.
        let log = d.text();
        assert!(log.contains("GetExternalIPAddress"), "{log}");
        assert!(
            !log.contains("AddPortMapping") && !log.contains("AddAnyPortMapping"),
            "{log}"
        );
        // Its refusals come back in words.
        let (_, text) = client(
            r#"try { map_port("10.77.0.1", UDP, 4000) } catch (e) { print(`err=${e.message}`) }"#,
        );
        assert!(text.contains("PCP: no resources (result 8)"), "{text}");
        assert!(text.contains("UPnP: action failed (error 501)"), "{text}");
    }
    {
        let _d = miniupnpd(true, false);
        probe_expect(BY_ADDRESS, ["true", "false", "false"], 0.3);
    }
    {
        let _d = miniupnpd(false, true);
        probe_expect(BY_ADDRESS, ["false", "false", "true"], 0.3);
    }
    // None: nothing listens.
    let (vals, text) = probe_expect(BY_INTERFACE, ["false", "false", "false"], 1.1);
    assert!(get(&vals, "summary", &text).contains(
        "no port mapping protocol answered (UPnP, NAT-PMP, PCP) at 10.77.0.1 within 1 s"
    ));
    let started = Instant::now();
    let (_, text) = client(
        r#"try { map_port("10.77.0.1", UDP, 4000) } catch (e) { print(`err=${e.message}`) }"#,
    );
    assert!(
        text.contains(
            "err=no port mapping protocol answered (UPnP, NAT-PMP, PCP) at 10.77.0.1 within 1 s"
        ),
        "{text}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// No DNAT rule is left on the gateway.
fn assert_no_rule(what: &str) {
    let rules = dnat_rules(p());
    assert!(rules.is_empty(), "{what}: a rule is left: {rules}");
}

/// A mapping through the gateway `d` reaches a client pipe; `ending` is the script
/// text that ends it (close, drop, or nothing: the process exits).
fn inbound_case(d: &Daemon, via: &str, port: u16, ending: &str) {
    let script = format!(
        r#"let s = pipe_open(UDP, (), ["{CLIENT_IP}", {port}]); s.subscribe();
let m = map_port("{GATEWAY_IP}", UDP, {port}, 0, 60);
print(`protocol=${{m.protocol}}`); print(`external=${{m.external}}`);
let got = s.recv(5); print(`got=${{got}}`);
{ending}
let after = s.recv(1.5); print(`after=${{after}}`);"#
    );
    let before = d.count("\"map\"");
    let deletes = d.count("\"delete\"");
    let handle = std::thread::spawn(move || client(&script));
    d.wait_for("\"map\"", before + 1);
    inet_udp(p(), port, "hello");
    if !ending.is_empty() {
        d.wait_for("\"delete\"", deletes + 1);
        inet_udp(p(), port, "late");
    }
    let (vals, text) = handle.join().expect("client thread");
    assert_eq!(get(&vals, "protocol", &text), via, "{text}");
    assert_eq!(get(&vals, "external", &text), format!("{PUBLIC_IP}:{port}"));
    assert_eq!(get(&vals, "got", &text), "b'hello'", "{text}");
    if !ending.is_empty() {
        assert_eq!(
            get(&vals, "after", &text),
            "",
            "the deleted mapping still forwards:\n{text}"
        );
    } else {
        // Leaving the shell deleted it.
        d.wait_for("\"delete\"", deletes + 1);
    }
    assert_no_rule(&format!("map_port via {via}, ending {ending:?}"));
}

/// A TCP server maps its own port (`server.map()`): a connection from inet reaches it,
/// and after `server.close()` the gateway has no rule and a new server on that port
/// gets nothing.
fn tcp_server_case(d: &Daemon, via: &str, port: u16) {
    let script = format!(
        r#"let s = pipe_open(TCP, (), ["{CLIENT_IP}", {port}]);
let m = s.map();
print(`protocol=${{m.protocol}}`); print(`external=${{s.external[0]}}:${{s.external[1]}}`);
let c = s.accept(5);
let got = if type_of(c) == "Pipe" {{ c.recv(5) }} else {{ () }};
print(`got=${{got}}`);
s.close(); print(`open=${{m.is_open}}`); print(`mapping=${{type_of(s.mapping)}}`);
let again = pipe_open(TCP, (), ["{CLIENT_IP}", {port}]);
print(`late=${{type_of(again.accept(2.5))}}`);"#
    );
    let before = d.count("\"map\"");
    let deletes = d.count("\"delete\"");
    let handle = std::thread::spawn(move || client(&script));
    d.wait_for("\"map\"", before + 1);
    let first = inet_tcp(p(), port, "hello");
    // Deleted by close() itself, not at the end of the program (2.5 s later).
    d.wait_within("\"delete\"", deletes + 1, Duration::from_millis(1500));
    assert_no_rule(&format!("TCP server via {via} after close"));
    // The server script opens its second listener right after close.
    std::thread::sleep(Duration::from_millis(300));
    let late = inet_tcp(p(), port, "late");
    let (vals, text) = handle.join().expect("client thread");
    first.unwrap_or_else(|e| panic!("inet could not connect through the mapping: {e}\n{text}"));
    assert!(
        late.is_err(),
        "a connection got through after close:\n{text}"
    );
    assert_eq!(get(&vals, "protocol", &text), via, "{text}");
    assert_eq!(get(&vals, "external", &text), format!("{PUBLIC_IP}:{port}"));
    assert_eq!(get(&vals, "got", &text), "b'hello'", "{text}");
    assert_eq!(get(&vals, "open", &text), "false", "{text}");
    assert_eq!(get(&vals, "mapping", &text), "()", "{text}");
    assert_eq!(get(&vals, "late", &text), "()", "{text}");
    assert_eq!(d.count("\"map\""), before + 1, "{}", d.text());
}

/// A UDP server mapped by pipe_open's option, mapped again (the same mapping: one
/// grant on the gateway), reached from inet; then dropped (`drop` true: the script
/// keeps a copy of the Mapping, which does not keep it) or left to the end of the
/// program.
fn udp_server_case(d: &Daemon, via: &str, port: u16, drop: bool) {
    let ending = if drop {
        format!(
            r#"u = (); sleep(0.3);
let w = pipe_open(UDP, (), ["{CLIENT_IP}", {port}]); w.subscribe();
print(`late=${{w.recv(2.5)}}`); print(`open=${{again.is_open}}`);"#
        )
    } else {
        String::new()
    };
    let script = format!(
        r#"let u = pipe_open(UDP, (), ["{CLIENT_IP}", {port}], #{{map: 60}}); u.subscribe();
let again = u.map(60);
print(`protocol=${{u.mapping.protocol}}`); print(`external=${{u.external[0]}}:${{u.external[1]}}`);
print(`same=${{again.external == u.mapping.external}}`);
print(`got=${{u.recv(5)}}`);
{ending}"#
    );
    let before = d.count("\"map\"");
    let deletes = d.count("\"delete\"");
    let handle = std::thread::spawn(move || client(&script));
    d.wait_for("\"map\"", before + 1);
    inet_udp(p(), port, "hello");
    if drop {
        // Deleted by the drop, not at the end of the program (2.8 s later).
        d.wait_within("\"delete\"", deletes + 1, Duration::from_millis(1500));
    } else {
        d.wait_for("\"delete\"", deletes + 1);
    }
    if drop {
        std::thread::sleep(Duration::from_millis(400));
        inet_udp(p(), port, "late");
    }
    let (vals, text) = handle.join().expect("client thread");
    assert_eq!(get(&vals, "protocol", &text), via, "{text}");
    assert_eq!(get(&vals, "external", &text), format!("{PUBLIC_IP}:{port}"));
    assert_eq!(get(&vals, "same", &text), "true", "{text}");
    assert_eq!(get(&vals, "got", &text), "b'hello'", "{text}");
    if drop {
        assert_eq!(
            get(&vals, "late", &text),
            "",
            "forwarded after the drop:\n{text}"
        );
        assert_eq!(get(&vals, "open", &text), "false", "{text}");
    }
    assert_eq!(
        d.count("\"map\""),
        before + 1,
        "map() twice made two mappings: {}",
        d.text()
    );
    assert_no_rule(&format!("UDP server via {via}, dropped {drop}"));
}

fn scripted_cases() {
    {
        let d = gateway(&["--pmp", "--pcp", "--upnp"]);
        probe_expect(BY_INTERFACE, ["true", "true", "true"], 0.25);
        assert!(
            !d.text().contains("\"map\""),
            "the probe mapped something: {}",
            d.text()
        );
        inbound_case(&d, "PCP", 4001, "m.close();");
        tcp_server_case(&d, "PCP", 4011);
        udp_server_case(&d, "PCP", 4012, true);
    }
    {
        let d = gateway(&["--pmp"]);
        let (_, text) = probe_expect(BY_ADDRESS, ["false", "true", "false"], 0.3);
        assert!(text.contains("PCP: not spoken"), "{text}");
        inbound_case(&d, "NAT-PMP", 4002, "m = ();");
        tcp_server_case(&d, "NAT-PMP", 4021);
        udp_server_case(&d, "NAT-PMP", 4022, false);
    }
    {
        let d = gateway(&[
            "--upnp",
            "--igd",
            "1",
            "--ssdp",
            "multicast",
            "--ssdp-port",
            "41000",
            "--media-first",
        ]);
        let (_, text) = probe_expect(BY_ADDRESS, ["true", "false", "false"], 0.3);
        assert!(text.contains("IGD v1 (WANIPConnection:1)"), "{text}");
        inbound_case(&d, "UPnP", 4003, "");
        tcp_server_case(&d, "UPnP", 4031);
        udp_server_case(&d, "UPnP", 4032, true);
    }
    {
        let _d = gateway(&["--pmp", "--pcp", "--pmp-result", "2", "--pcp-result", "12"]);
        let (_, text) = client(
            r#"try { map_port("10.77.0.1", UDP, 4000) } catch (e) { print(`kind=${e.kind}`); print(`err=${e.message}`) }"#,
        );
        assert!(text.contains("PCP: address mismatch (result 12)"), "{text}");
        assert!(
            text.contains("NAT-PMP: not authorized (result 2)"),
            "{text}"
        );
        assert!(text.contains("kind=refused"), "{text}");
        // A server whose mapping is refused is not left open: its port is free again.
        let (vals, text) = client(
            r#"try { pipe_open(UDP, (), ["10.77.0.10", 4040], #{map: true}) } catch (e) { print(`err=${e.message}`) }
let again = pipe_open(UDP, (), ["10.77.0.10", 4040]); print(`rebound=${again.local[1]}`);"#,
        );
        assert!(
            get(&vals, "err", &text).contains("NAT-PMP: not authorized"),
            "{text}"
        );
        assert_eq!(get(&vals, "rebound", &text), "4040", "{text}");
    }
    {
        // Renewal at half the lifetime: 4 s granted, renewed by 2.5 s.
        let d = gateway(&["--pcp"]);
        client(
            r#"let m = map_port("10.77.0.1", TCP, 4004, 0, 4); sleep(2.6); print(`renewals=${m.renewals}`);"#,
        );
        d.wait_for("\"renew\"", 1);
        d.wait_for("\"delete\"", 1);
    }
}

#[test]
fn portmap_lab() {
    if let Some(why) = unavailable(&["ip", "nft", "conntrack", "python3", "miniupnpd"]) {
        return cannot_run(
            "portmap_lab",
            &format!(
                "{why} (needs root, ip netns, nft, conntrack, python3, miniupnpd: apt-get install miniupnpd-nftables)"
            ),
        );
    }
    let _lock = LabLock::take();
    let _lab = match lab::up(p(), &[]) {
        Ok(l) => l,
        Err(e) => return cannot_run("portmap_lab", &e),
    };
    let started = Instant::now();
    miniupnpd_cases();
    scripted_cases();
    eprintln!("portmap_lab: {:.1} s", started.elapsed().as_secs_f64());
}
