//! NAT classification from a script: `i.load_nat()`, `i.nat`, `nat_report(i)`, `repr(i)`.

mod common;

use common::{Shell, shell};
use std::time::{Duration, Instant};

/// A session whose only STUN server is a built-in one on 127.0.0.1 / 127.0.0.2.
fn with_local_server() -> Shell {
    let mut s = shell();
    s.echo(r#"let srv = stun_server("127.0.0.1:0", "127.0.0.2:0"); stun_servers([srv.primary]);"#);
    s
}

#[test]
fn load_nat_on_loopback_is_open_and_fills_the_interface() {
    let mut s = with_local_server();
    s.echo(r#"let i = Interface("lo"); let r = await i.load_nat();"#);
    assert_eq!(s.echo("r.type"), "1");
    assert_eq!(s.echo("i.nat.type"), "1");
    assert_eq!(s.echo("i.nat.nat_info"), "\"open internet (no NAT)\"");
    assert_eq!(s.echo("i.nat.delta"), r#"#{"type": 2, "value": 0}"#);
    assert_eq!(s.echo("r.filtering"), "\"endpoint-independent\"");
    assert_eq!(s.echo("r.is_open && r.can_predict && !r.is_hard"), "true");
    assert_eq!(s.echo("r.external == r.local"), "true");
    assert!(s.echo("r.servers.len()").parse::<i64>().unwrap() >= 2);
    // The table, as `print(i.nat)` and `nat_report(i)` show it.
    s.echo("print(i.nat); print(nat_report(i));");
    let printed = s.sink.take();
    assert_eq!(printed.len(), 2);
    assert!(
        printed[0].starts_with("NAT report:")
            && printed[0].contains("Filtering: endpoint-independent")
    );
    assert_eq!(printed[0], printed[1]);
    // repr keeps P2PD's dict shape.
    let repr = s.echo("repr(i)");
    assert!(
        repr.contains(r#"\"nat\": {"#)
            && repr.contains(r#"\"nat_info\": \"open internet (no NAT)\""#),
        "{repr}"
    );
    // JSON output for machines.
    let text = s
        .session
        .eval("nat_report(i).to_json()")
        .unwrap()
        .into_string()
        .unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["p2pd"]["type"], 1);
    assert_eq!(json["filtering"], "endpoint-independent");
}

#[test]
fn nothing_answering_is_blocked_within_the_timeout() {
    let mut s = shell();
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    s.echo(&format!(r#"stun_servers(["{addr}"]);"#));
    let start = Instant::now();
    assert_eq!(
        s.echo(r#"Interface("lo").load_nat(#{timeout: 0.5}).type"#),
        "7"
    );
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn bad_nat_inputs_are_clear_errors() {
    let mut s = with_local_server();
    s.echo(r#"let i = Interface("lo");"#);
    assert!(s.error("nat_report(i)").contains("run i.load_nat() first"));
    assert!(
        s.error("i.load_nat(#{tiemout: 1})")
            .contains("unknown load_nat option \"tiemout\"")
    );
    assert!(
        s.error(r#"i.load_nat(#{timeout: "x"})"#)
            .contains("number of seconds")
    );
    assert!(
        s.error(r#"i.load_nat(#{hairpin: 1})"#)
            .contains("true or false")
    );
    // The session is intact after the errors.
    assert_eq!(s.echo("i.load_nat().type"), "1");
}

#[test]
fn stun_probe_tells_what_a_server_really_does() {
    let mut s = with_local_server();
    // The built-in RFC 5780 server: its change reply proves it changes address.
    s.echo("let p = await stun_probe(srv.primary);");
    assert_eq!(s.echo("p.changes_address"), "true");
    assert_eq!(s.echo("p.other_address != ()"), "true");
    assert_eq!(s.echo("p.mapped != () && p.rtt > 0.0"), "true");
    assert!(s.echo("p.software").contains("p2pd-repl"));
    // A plain one (no alternate) refuses CHANGE-REQUEST: it does not change address.
    s.echo(r#"let plain = stun_server("127.0.0.3:0"); let q = await stun_probe(plain.primary);"#);
    assert_eq!(s.echo("q.changes_address"), "false");
    assert_eq!(s.echo("q.other_address"), "");
    assert!(
        s.echo("q.verdict").contains("plain"),
        "{}",
        s.echo("q.verdict")
    );
    // Nothing listening: an error naming the server, the session intact.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    let err = s.error(&format!(r#"stun_probe("{addr}")"#));
    assert!(
        err.contains(&addr.to_string()) && err.contains("no reply"),
        "{err}"
    );
    assert!(
        s.error(r#"stun_probe("no port:x")"#)
            .contains("stun_probe's server")
    );
    assert_eq!(s.echo("p.changes_address"), "true");
}

#[test]
fn nothing_to_ask_is_not_tested_and_said_why() {
    let mut s = shell();
    // Only an IPv6 server for an IPv4 probe: nothing is sent.
    s.echo(r#"stun_servers(["[::1]:3478"]);"#);
    s.echo(r#"let r = await Interface("lo").load_nat(#{family: IP4});"#);
    let text = s.echo("r.to_string()");
    assert!(
        text.contains("Not tested: no STUN server could be asked"),
        "{text}"
    );
    assert_eq!(s.echo("r.type == ()"), "true");
    assert_eq!(s.echo("r.tested"), "false");
}
