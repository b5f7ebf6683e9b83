//! Addresses and pipes through the scripting session, as a REPL user types them: loopback
//! only, each case on IPv4 (127.0.0.1) and IPv6 (::1). TCP and UDP clients and servers,
//! subscriptions (regex, peer, copies), timeouts and polling, bounded queues, callbacks on
//! the script thread (during awaits and while idle), linked pipes, close and re-bind, and
//! errors that leave the session usable. Time bounds only tell "at once" from "waited".
//! What a left-out route binds (loopback here; the default interface and its absence in
//! network namespaces of their own), and callbacks given to `pipe_open` itself.

mod common;

use common::netns::{Netns, cannot_run, printed};
use p2pd::script::{SessionOptions, Sink};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

/// Output lines, each with the thread that produced it.
#[derive(Default)]
struct ThreadSink {
    lines: Mutex<Vec<(ThreadId, String)>>,
}

impl Sink for ThreadSink {
    fn out(&self, text: &str) {
        let me = std::thread::current().id();
        self.lines.lock().unwrap().push((me, text.to_string()));
    }
    fn err(&self, text: &str) {
        self.out(text);
    }
}

type Shell = common::Shell<ThreadSink>;

/// A session with P2PD's LO/AF for the family, two runtime workers (so a callback running
/// elsewhere than the script thread would show).
fn shell(v6: bool) -> Shell {
    let mut s = Shell::new(
        Arc::new(ThreadSink::default()),
        2,
        SessionOptions::default(),
    );
    let lo = if v6 { "::1" } else { "127.0.0.1" };
    s.run(&format!(
        "let LO = \"{lo}\"; let AF = {};",
        if v6 { 10 } else { 2 }
    ));
    s
}

/// The printed lines so far, emptied.
fn printed_lines(s: &Shell) -> Vec<(ThreadId, String)> {
    std::mem::take(&mut *s.sink.lines.lock().unwrap())
}

fn texts(s: &Shell) -> Vec<String> {
    printed_lines(s).into_iter().map(|(_, t)| t).collect()
}

macro_rules! both_families {
    ($($case:ident),* $(,)?) => {
        mod v4 { $( #[test] fn $case() { super::$case(false) } )* }
        mod v6 { $( #[test] fn $case() { super::$case(true) } )* }
    };
}

both_families!(
    tcp_client_and_server,
    udp_client_and_server,
    await_server_accepts_after_opening,
    regex_and_peer_filters,
    every_subscription_gets_a_copy,
    timeouts_and_polling,
    udp_flood_is_bounded_and_counted,
    callbacks_run_on_the_script_thread,
    callbacks_run_while_idle,
    linked_pipes_relay,
    close_is_idempotent_and_frees_the_port,
    errors_are_clear_and_leave_the_session_usable,
    addresses_resolve_for_the_route_family,
    a_left_out_route_binds_loopback_towards_loopback,
    callbacks_given_at_open_see_the_first_events,
    a_msg_cb_at_open_means_no_automatic_subscription,
    bad_callback_arguments_are_named,
);

fn tcp_client_and_server(v6: bool) {
    let mut s = shell(v6);
    s.run("let e = await echo_server(TCP, LO, 0); let p = await pipe_open(TCP, e.local, LO);");
    assert_eq!(s.echo("p.proto == TCP"), "true");
    assert_eq!(s.echo("p.dest == e.local && e.dest == ()"), "true");
    s.run(r#"await p.send(b"hello")"#);
    assert_eq!(s.echo("await p.recv(2)"), "b'hello'");
    s.run(r#"p.send("again")"#);
    let full = s.echo("p.recv((), 2, true)");
    let port = s.echo("e.local[1]");
    assert!(
        full.ends_with(&format!(", {port}], b'again']")),
        "full recv gives [[ip, port], bytes]: {full}"
    );
    // A destination as "host:port" text, and the route given as IP4/IP6.
    let text_dest = if v6 {
        "`[::1]:${e.local[1]}`"
    } else {
        "`127.0.0.1:${e.local[1]}`"
    };
    s.run(&format!(
        "let q = pipe_open(TCP, {text_dest}, AF); q.send(\"t\");"
    ));
    assert_eq!(s.echo("q.recv(2)"), "b't'");
    assert_eq!(s.echo("e.clients.len()"), "2");
    s.run("p.close(); q.close(); e.close();");
    assert_eq!(s.echo("[p.is_running, e.is_running]"), "[false, false]");
}

fn udp_client_and_server(v6: bool) {
    let mut s = shell(v6);
    s.run("let e = echo_server(UDP, LO, 0); let p = pipe_open(UDP, e.local);");
    assert_eq!(s.echo("p.proto == UDP"), "true");
    s.run(r#"p.send(b"ping")"#);
    assert_eq!(s.echo("p.recv(2)"), "b'ping'");
    // A UDP server answers whoever wrote, with send(data, client).
    s.run("let srv = pipe_open(UDP, (), LO); srv.subscribe(); let c = pipe_open(UDP, srv.local);");
    s.run(r#"c.send("q"); let m = srv.recv((), 2, true); srv.send(m[1] + "!", m[0]);"#);
    assert_eq!(s.echo("c.recv(2)"), "b'q!'");
    // Without a destination, send needs one.
    assert!(s.error(r#"srv.send("x")"#).contains("no destination"));
    // A UDP client hears every sender (P2PD: the socket is not OS-connected).
    s.run(r#"srv.send("unasked", p.local);"#);
    assert_eq!(s.echo("p.recv(2)"), "b'unasked'");
}

fn await_server_accepts_after_opening(v6: bool) {
    let mut s = shell(v6);
    // `await pipe_open(...)` on a TCP server gives the server, as in P2PD...
    s.run("let srv = await pipe_open(TCP, (), LO);");
    assert!(s.echo("srv").starts_with("<Pipe TCP server"));
    // ...and a later `await srv` gives the next client, in arrival order.
    s.run("let a = pipe_open(TCP, srv.local); let b = pipe_open(TCP, srv.local);");
    s.run("let first = await srv; let second = srv.accept(2);");
    assert_eq!(
        s.echo("first.dest == a.local && second.dest == b.local"),
        "true"
    );
    s.run(r#"a.send("from a")"#);
    assert_eq!(s.echo("first.recv(2)"), "b'from a'");
    // The server's own subscription sees every client's messages.
    s.run(r#"srv.subscribe(); b.send("from b");"#);
    assert_eq!(s.echo("srv.recv(2)"), "b'from b'");
    assert_eq!(s.echo("srv.accept(0)"), "");
    // A server opened without `await` and awaited later also accepts.
    s.run("let srv2 = pipe_open(TCP, (), LO); let c = pipe_open(TCP, srv2.local);");
    assert_eq!(s.echo("let got = await srv2; got.dest == c.local"), "true");
    // Other pipes await to themselves.
    assert_eq!(s.echo("let same = await c; same == c"), "true");
}

fn regex_and_peer_filters(v6: bool) {
    let mut s = shell(v6);
    // Clients bound to loopback, so their `local` is the address the server sees.
    s.run("let srv = pipe_open(UDP, (), LO); let a = pipe_open(UDP, srv.local, LO); let b = pipe_open(UDP, srv.local, LO);");
    s.run(r#"let hello = srv.subscribe(b"^hello"); let from_a = srv.subscribe((), a.local); let any_port = srv.subscribe((), [LO, 0]);"#);
    s.run(r#"b.send("hello from b"); a.send("bye from a");"#);
    assert_eq!(s.echo("srv.recv(hello, 2)"), "b'hello from b'");
    assert_eq!(s.echo("srv.recv(hello, 0.2)"), "");
    assert_eq!(s.echo("srv.recv(from_a, 2)"), "b'bye from a'");
    assert_eq!(s.echo("srv.recv(from_a, 0)"), "");
    assert_eq!(s.echo("srv.recv(any_port, 2)"), "b'hello from b'");
    assert_eq!(s.echo("srv.recv(any_port, 2)"), "b'bye from a'");
    // P2PD's pair form and the two-argument form name the same queue.
    assert_eq!(s.echo("srv.subscribe([(), a.local]) == from_a"), "true");
    assert_eq!(s.echo("srv.unsubscribe((), a.local)"), "true");
    assert_eq!(s.echo("srv.unsubscribe(from_a)"), "false");
    assert!(s.error("srv.recv(from_a, 0)").contains("no subscription"));
    assert!(
        s.error(r#"srv.subscribe("(")"#)
            .contains("invalid subscription regex")
    );
}

fn every_subscription_gets_a_copy(v6: bool) {
    let mut s = shell(v6);
    s.run("let e = echo_server(TCP, LO, 0); let p = pipe_open(TCP, e.local);");
    s.run(r#"let m = p.subscribe("^m"); let digits = p.subscribe("[0-9]+");"#);
    s.run(r#"p.send("m42")"#);
    assert_eq!(s.echo("p.recv()"), "b'm42'");
    assert_eq!(s.echo("p.recv(m, 2)"), "b'm42'");
    assert_eq!(s.echo("p.recv(digits, 2)"), "b'm42'");
    // Dropping the catch-all leaves the narrower queues.
    assert_eq!(s.echo("p.unsubscribe()"), "true");
    s.run(r#"p.send("no digits")"#);
    assert_eq!(s.echo("p.recv(m, 0.3)"), "");
    assert!(s.error("p.recv(0)").contains("call pipe.subscribe"));
}

fn timeouts_and_polling(v6: bool) {
    let mut s = shell(v6);
    s.run("let e = echo_server(UDP, LO, 0); let p = pipe_open(UDP, e.local);");
    let t = Instant::now();
    assert_eq!(s.echo("p.recv(0)"), "");
    assert!(t.elapsed() < Duration::from_millis(500), "recv(0) polls");
    let t = Instant::now();
    assert_eq!(s.echo("p.recv(0.3)"), "");
    let waited = t.elapsed();
    assert!(waited >= Duration::from_millis(290), "waited {waited:?}");
    assert!(waited < Duration::from_secs(2), "waited {waited:?}");
    // A message that arrived earlier is there for a poll.
    s.run(r#"p.send("x"); sleep(0.2);"#);
    assert_eq!(s.echo("p.recv(0)"), "b'x'");
    assert!(s.error("p.recv(-1)").contains(">= 0"));
}

fn udp_flood_is_bounded_and_counted(v6: bool) {
    let mut s = shell(v6);
    // Nobody reads the server's queue while 3000 datagrams arrive; it keeps the newest 1024.
    s.run("let srv = pipe_open(UDP, (), LO); srv.subscribe(); let c = pipe_open(UDP, srv.local);");
    s.run(r#"for i in 0..3000 { c.send(`${i}`); if i % 100 == 99 { sleep(0.002) } } sleep(0.3);"#);
    let dropped: i64 = s.echo("srv.dropped").parse().unwrap();
    assert!(dropped > 0, "a flood past the queue bound is counted");
    s.run("let n = 0; while srv.recv(0) != () { n += 1 }");
    let kept: i64 = s.echo("n").parse().unwrap();
    assert_eq!(kept, 1024, "the queue holds its bound (dropped {dropped})");
}

fn callbacks_run_on_the_script_thread(v6: bool) {
    let mut s = shell(v6);
    let me = std::thread::current().id();
    s.run("let srv = pipe_open(TCP, (), LO); let seen = [];");
    s.run(r#"srv.add_up_cb(|m, c, p| { seen.push(`up ${m == ()}`); print("up") });"#);
    s.run(r#"srv.add_msg_cb(|m, c, p| { seen.push(`msg ${m}`); print("msg"); p.send(m + "!") });"#);
    s.run(r#"srv.add_end_cb(|m, c, p| { seen.push(`end ${c == ()}`); print("end") });"#);
    printed_lines(&s);
    s.run(r#"let c = pipe_open(TCP, srv.local); c.send("hi");"#);
    // The reply proves the callback ran (and could itself await a send) during this recv.
    assert_eq!(s.echo("c.recv(2)"), "b'hi!'");
    s.run("c.close(); sleep(0.3);");
    assert_eq!(s.echo("seen"), r#"["up true", "msg b'hi'", "end false"]"#);
    let printed = printed_lines(&s);
    assert_eq!(printed.len(), 3, "{printed:?}");
    assert!(
        printed.iter().all(|(t, _)| *t == me),
        "callbacks print from the script thread"
    );
    // Removing a callback stops it.
    s.run("let f = |m, c, p| seen.push(\"second\"); srv.add_msg_cb(f);");
    assert_eq!(s.echo("srv.del_msg_cb(f)"), "true");
    assert_eq!(s.echo("srv.del_msg_cb(f)"), "false");
    // A failing callback is reported and does not break the line that was waiting.
    s.run(r#"srv.add_up_cb(|m, c, p| throw "boom");"#);
    s.run("let d = pipe_open(TCP, srv.local); sleep(0.3);");
    assert!(
        texts(&s)
            .iter()
            .any(|t| t.contains("callback error") && t.contains("boom")),
        "callback errors reach the sink"
    );
    assert_eq!(s.echo("1 + 1"), "2");
}

fn callbacks_run_while_idle(v6: bool) {
    let mut s = shell(v6);
    let me = std::thread::current().id();
    s.run(r#"let srv = pipe_open(UDP, (), LO); srv.add_msg_cb(|m, c, p| print(`idle got ${m}`)); let c = pipe_open(UDP, srv.local); c.send("late");"#);
    // The line is over; the message is handled while the shell waits for the next one.
    s.session
        .idle(async { tokio::time::sleep(Duration::from_millis(300)).await });
    let printed = printed_lines(&s);
    assert!(
        printed
            .iter()
            .any(|(t, line)| *t == me && line == "idle got b'late'"),
        "{printed:?}"
    );
}

fn linked_pipes_relay(v6: bool) {
    let mut s = shell(v6);
    // sink <- b (its destination) <- relay from a <- c
    s.run(
        "let sink = pipe_open(UDP, (), LO); sink.subscribe(); let b = pipe_open(UDP, sink.local);",
    );
    s.run("let a = pipe_open(UDP, (), LO); let c = pipe_open(UDP, a.local); a.add_pipe(b);");
    s.run(r#"c.send("relayed")"#);
    assert_eq!(s.echo("sink.recv(2)"), "b'relayed'");
    s.run(r#"a.del_pipe(b); c.send("not relayed");"#);
    assert_eq!(s.echo("sink.recv(0.3)"), "");
}

fn close_is_idempotent_and_frees_the_port(v6: bool) {
    let mut s = shell(v6);
    for proto in ["TCP", "UDP"] {
        s.run(&format!(
            "let srv = pipe_open({proto}, (), LO); let port = srv.local[1];"
        ));
        s.run("await srv.close(); srv.close();");
        assert_eq!(s.echo("srv.is_running"), "false");
        // Re-bind the same port at once.
        s.run(&format!("let again = pipe_open({proto}, (), [LO, port]);"));
        assert_eq!(s.echo("again.local[1] == port"), "true");
        s.run("again.close();");
    }
}

fn errors_are_clear_and_leave_the_session_usable(v6: bool) {
    let mut s = shell(v6);
    s.run("let keep = 41; let srv = pipe_open(TCP, (), LO); let port = srv.local[1]; srv.close();");
    let refused = s.error("pipe_open(TCP, [LO, port])");
    assert!(
        refused.contains("refused") && refused.contains(&s.echo("port")),
        "{refused}"
    );
    assert_eq!(
        s.echo("let k = (); try { pipe_open(TCP, [LO, port]) } catch (e) { k = e.kind } k"),
        "\"refused\""
    );
    let unknown = s.error(r#"pipe_open(TCP, ["no-such-host.invalid", 80], AF)"#);
    assert!(unknown.contains("no-such-host.invalid"), "{unknown}");
    assert!(
        unknown.contains(if v6 { "IPv6" } else { "IPv4" }),
        "{unknown}"
    );
    let other = if v6 { "127.0.0.1" } else { "::1" };
    let wrong = s.error(&format!("pipe_open(UDP, [\"{other}\", 9], AF)"));
    assert!(
        wrong.contains(other) && wrong.contains("route is"),
        "{wrong}"
    );
    // A bind address decides the family like a route does.
    let bind = s.error(&format!("pipe_open(UDP, [LO, 9], \"{other}\")"));
    assert!(bind.contains("but the route is"), "{bind}");
    s.run("let e = echo_server(UDP, LO, 0); let p = pipe_open(UDP, e.local); p.close();");
    assert!(s.error(r#"p.send("late")"#).contains("is closed"));
    s.run("let t = echo_server(TCP, LO, 0); let q = pipe_open(TCP, t.local); q.close();");
    assert!(s.error(r#"q.send("late")"#).contains("is closed"));
    // recv raises the same, with or without a timeout, instead of returning ().
    for recv in ["p.recv(5)", "p.recv(0)", "q.recv()"] {
        assert!(s.error(recv).contains("is closed"), "{recv}");
    }
    assert_eq!(
        s.echo("let k = (); try { q.recv(1) } catch (x) { k = x.kind } k"),
        "\"closed\""
    );
    // A bad destination names the argument, the port range, and echoes it short.
    let port = s.error(r#"pipe_open(UDP, "127.0.0.1:70000")"#);
    assert_eq!(
        port,
        "dest \"127.0.0.1:70000\": port 70000 is not in 0..=65535"
    );
    let huge = s.error(r#"let h = ""; h.pad(10000000, "h"); pipe_open(UDP, h)"#);
    assert!(
        huge.len() < 200 && huge.contains("(10000000 characters)"),
        "{huge}"
    );
    assert!(s.error("pipe_open(3, ())").contains("TCP (1) or UDP (2)"));
    assert!(s.error("pipe_open(TCP, [LO])").contains("[host, port]"));
    assert!(s.error("pipe_open(TCP, [LO, 70000])").contains("0..=65535"));
    assert_eq!(s.echo("keep + 1"), "42");
}

fn addresses_resolve_for_the_route_family(v6: bool) {
    let mut s = shell(v6);
    s.run("let a = Address(\"localhost\", 8080, AF);");
    assert_eq!(s.echo("a.resolved"), "false");
    assert!(s.error("a.ip").contains("not resolved yet"));
    s.run("let b = await a;");
    let lo = if v6 { "::1" } else { "127.0.0.1" };
    assert_eq!(s.echo("b.ip"), format!("\"{lo}\""));
    assert_eq!(
        s.echo("[b.port, b.af == AF, b.host]"),
        "[8080, true, \"localhost\"]"
    );
    assert_eq!(s.echo("b.tup"), format!("[\"{lo}\", 8080]"));
    // res() resolves in place and returns the address; resolve() is the one-call form.
    s.run("a.res();");
    assert_eq!(s.echo("a.resolved && a.ip == b.ip"), "true");
    assert_eq!(s.echo("resolve(LO, 1).af == AF"), "true");
    // A literal without a route keeps its own family; "0.0.0.0" and "::" mean loopback.
    let any = if v6 { "::" } else { "0.0.0.0" };
    assert_eq!(
        s.echo(&format!("resolve(\"{any}\", 1).ip")),
        format!("\"{lo}\"")
    );
    assert!(s.echo("b").contains("localhost"));
    // An Address is a pipe destination.
    s.run("let e = echo_server(UDP, LO, 0); let p = pipe_open(UDP, Address(LO, e.local[1]), AF); p.send(\"a\");");
    assert_eq!(s.echo("p.recv(2)"), "b'a'");
    s.run("resolve_timeout(0.5);");
    assert_eq!(s.echo("resolve_timeout()"), "0.5");
}

#[test]
fn ctrl_c_cancels_a_wait_and_the_pipe_stays_usable() {
    let mut s = shell(false);
    s.run("let e = echo_server(UDP, LO, 0); let p = pipe_open(UDP, e.local);");
    let cancel = s.session.cancel().clone();
    let tripper = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        cancel.trip();
    });
    let t = Instant::now();
    let err = s.session.eval("p.recv(30)").expect_err("interrupted");
    tripper.join().unwrap();
    assert!(err.interrupted);
    assert!(t.elapsed() < Duration::from_secs(5));
    s.run(r#"p.send("still here")"#);
    assert_eq!(s.echo("p.recv(2)"), "b'still here'");
}

/// P2PD's `nic()` text for the loopback of the family (IPv6 exploded).
fn lo_nic(v6: bool) -> &'static str {
    if v6 {
        "\"0000:0000:0000:0000:0000:0000:0000:0001\""
    } else {
        "\"127.0.0.1\""
    }
}

fn a_left_out_route_binds_loopback_towards_loopback(v6: bool) {
    let mut s = shell(v6);
    for proto in ["UDP", "TCP"] {
        s.run(&format!(
            "let e = echo_server({proto}, LO, 0); let p = pipe_open({proto}, e.local);"
        ));
        // The pipe reports a route, bound where it really is: loopback, no external address.
        assert_eq!(s.echo("type_of(p.route)"), "\"Route\"");
        assert_eq!(s.echo("p.local[0] == LO"), "true");
        assert_eq!(s.echo("p.route.nic()"), lo_nic(v6));
        assert_eq!(s.echo("p.route.nic_ips.len()"), "1");
        assert_eq!(s.echo("p.route.ext()"), "");
        assert_eq!(
            s.echo("p.route.is_bound && p.route.bind_port == p.local[1]"),
            "true"
        );
        s.run(r#"p.send("lo")"#);
        assert_eq!(s.echo("p.recv(2)"), "b'lo'");
        // An unspecified destination reaches this host too, so it binds loopback as well.
        let any = if v6 { "::" } else { "0.0.0.0" };
        s.run(&format!(
            "let q = pipe_open({proto}, [\"{any}\", e.local[1]]); q.send(\"any\");"
        ));
        assert_eq!(s.echo("q.local[0] == LO"), "true");
        assert_eq!(s.echo("q.recv(2)"), "b'any'");
        s.run("p.close(); q.close(); e.close();");
    }
    // IP4/IP6 still mean the family's wildcard, with no route to report.
    s.run("let w = pipe_open(UDP, (), AF);");
    let any = if v6 { "\"::\"" } else { "\"0.0.0.0\"" };
    assert_eq!(s.echo("w.local[0]"), any);
    assert_eq!(s.echo("w.route"), "");
}

fn callbacks_given_at_open_see_the_first_events(v6: bool) {
    let mut s = shell(v6);
    // A server's msg_cb given at open answers the very first message, through the
    // accepted client (which shares the server's callbacks).
    s.run(r#"let srv = pipe_open(TCP, (), LO, |m, c, p| p.send(m + "!"));"#);
    s.run(r#"let c = pipe_open(TCP, srv.local); c.send("first");"#);
    assert_eq!(s.echo("c.recv(2)"), "b'first!'");
    // A client's up_cb given at open sees its own outgoing connection come up; one added
    // afterwards is too late for it. With only an up_cb the client keeps its catch-all.
    s.run("let e = echo_server(TCP, LO, 0); let ups = [];");
    s.run("let a = pipe_open(TCP, e.local, LO, (), |m, cl, p| ups.push(`at open ${m == ()} ${p.dest == e.local}`));");
    s.run("let b = pipe_open(TCP, e.local, LO); b.add_up_cb(|m, cl, p| ups.push(\"added later\")); sleep(0.3);");
    assert_eq!(s.echo("ups"), r#"["at open true true"]"#);
    s.run(r#"a.send("still queued")"#);
    assert_eq!(s.echo("a.recv(2)"), "b'still queued'");
    // Both at once, on a TCP server: every accepted client fires up_cb, every message msg_cb.
    s.run("let log = []; let both = pipe_open(TCP, (), LO, |m, c, p| log.push(`msg ${m}`), |m, c, p| log.push(\"up\"));");
    s.run(r#"let d = pipe_open(TCP, both.local); d.send("x"); sleep(0.3);"#);
    assert_eq!(s.echo("log"), r#"["up", "msg b'x'"]"#);
    // UDP: a server's msg_cb at open answers the sender.
    s.run(r#"let us = pipe_open(UDP, (), LO, |m, c, p| p.send(m + "?", c));"#);
    s.run(r#"let u = pipe_open(UDP, us.local); u.send("a");"#);
    assert_eq!(s.echo("u.recv(2)"), "b'a?'");
}

fn a_msg_cb_at_open_means_no_automatic_subscription(v6: bool) {
    let mut s = shell(v6);
    s.run("let got = []; let e = echo_server(UDP, LO, 0);");
    s.run(r#"let p = pipe_open(UDP, e.local, LO, |m, c, pipe| got.push(m)); p.send("z"); sleep(0.3);"#);
    assert_eq!(s.echo("got"), "[b'z']");
    // As in P2PD the msg_cb takes the messages: no queue exists, and recv says so (P2PD
    // returned None) instead of waiting for nothing.
    let err = s.error("p.recv(0)");
    assert!(err.contains("call pipe.subscribe"), "{err}");
    assert_eq!(
        s.echo("let k = (); try { p.recv() } catch (x) { k = x.kind } k"),
        "\"no_subscription\""
    );
    // Subscribing by hand queues copies as well.
    s.run(r#"p.subscribe(); p.send("y");"#);
    assert_eq!(s.echo("p.recv(2)"), "b'y'");
    // The same for a TCP client.
    s.run("let t = echo_server(TCP, LO, 0); let q = pipe_open(TCP, t.local, LO, |m, c, pipe| got.push(m));");
    s.run(r#"q.send("w"); sleep(0.3);"#);
    assert_eq!(s.echo("got"), "[b'z', b'y', b'w']");
    assert!(s.error("q.recv(0)").contains("call pipe.subscribe"));
}

fn bad_callback_arguments_are_named(v6: bool) {
    let mut s = shell(v6);
    s.run("let keep = 1;");
    let msg = s.error("pipe_open(TCP, (), LO, 5)");
    assert!(
        msg.contains("msg_cb") && msg.contains("|msg, client, pipe|") && msg.contains("i64"),
        "{msg}"
    );
    let up = s.error(r#"pipe_open(UDP, (), LO, (), "f")"#);
    assert!(up.contains("up_cb") && up.contains("string"), "{up}");
    assert_eq!(
        s.echo("let k = (); try { pipe_open(TCP, (), LO, [], ()) } catch (x) { k = x.kind } k"),
        "\"type\""
    );
    // The session goes on; a named function works as well as a closure.
    s.run("fn on_msg(m, c, p) { p.send(m, c) } let ok = pipe_open(UDP, (), LO, Fn(\"on_msg\"));");
    s.run(r#"let v = pipe_open(UDP, ok.local); v.send("named");"#);
    assert_eq!(s.echo("v.recv(2)"), "b'named'");
    assert_eq!(s.echo("ok.is_running && keep == 1"), "true");
}

#[test]
fn a_left_out_route_binds_the_default_interface_without_stun() {
    const TEST: &str = "a_left_out_route_binds_the_default_interface_without_stun";
    let ns = match Netns::with_default_route("d", "198.51.100.2") {
        Ok(ns) => ns,
        Err(why) => return cannot_run(TEST, &why),
    };
    // A STUN server is configured (on the gateway, which has none running): a lookup
    // would send to it, and the kernel counts every datagram the namespace sends.
    let script = r#"
        let s = pipe_open(TCP, ());
        print(`server=${s.local[0]}`);
        print(`server_nic=${s.route.nic()}`);
        print(`server_ext=${s.route.ext()}`);
        print(`server_port=${s.route.bind_port == s.local[1]}`);
        print(`server_iface=${s.route.interface}`);
        let u = pipe_open(UDP, ["198.51.100.1", 9]);
        print(`client=${u.local[0]} ${u.route.nic()}`);
        let e = echo_server(UDP, (), 0);
        print(`echo=${e.local[0]}`);
        let six = ();
        try { pipe_open(TCP, ["2001:db8::1", 80]) } catch (x) { six = x }
        print(`v6=${six.kind}: ${six.message}`);
    "#;
    let udp_before = ns.snmp("Udp", "OutDatagrams");
    let out = ns.repl(&["--stun", "198.51.100.1:3478", "-e", script]);
    assert_eq!(printed(&out, "server"), "198.51.100.2");
    assert_eq!(printed(&out, "server_nic"), "198.51.100.2");
    assert_eq!(printed(&out, "server_ext"), "");
    assert_eq!(printed(&out, "server_port"), "true");
    assert_eq!(printed(&out, "server_iface"), "eth0");
    assert_eq!(printed(&out, "client"), "198.51.100.2 198.51.100.2");
    assert_eq!(printed(&out, "echo"), "198.51.100.2");
    // The namespace has no IPv6 default route: a clear error, not a wildcard.
    let v6 = printed(&out, "v6");
    assert!(
        v6.starts_with("no_route: no default IPv6 interface to bind: pass a route, e.g. pipe_open(TCP, dest, \"::1\")"),
        "{v6}"
    );
    assert_eq!(
        ns.snmp("Udp", "OutDatagrams"),
        udp_before,
        "no STUN (or any UDP) datagram left the namespace"
    );
    assert!(
        out.stderr.is_empty(),
        "no warnings: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_left_out_route_without_a_default_interface_is_a_clear_error() {
    const TEST: &str = "a_left_out_route_without_a_default_interface_is_a_clear_error";
    let ns = match Netns::lo_only("n") {
        Ok(ns) => ns,
        Err(why) => return cannot_run(TEST, &why),
    };
    let script = r#"
        let keep = 41;
        let server = ();
        try { pipe_open(UDP, ()) } catch (x) { server = x }
        print(`server=${server.kind}: ${server.message}`);
        let client = ();
        try { pipe_open(TCP, ["198.51.100.7", 80]) } catch (x) { client = x.message }
        print(`client=${client}`);
        let echo = ();
        try { echo_server(TCP, (), 7000) } catch (x) { echo = x.message }
        print(`echo=${echo}`);
        // Loopback needs no default interface, and the session goes on.
        let e = echo_server(UDP, "127.0.0.1", 0);
        let p = pipe_open(UDP, e.local);
        p.send("still fine");
        print(`after=${p.recv(2)} ${keep + 1}`);
    "#;
    let out = ns.repl(&["-e", script]);
    assert_eq!(
        printed(&out, "server"),
        "no_route: no default IPv4 interface to bind: pass a route, e.g. pipe_open(UDP, (), \"127.0.0.1\"), or IP4 for any address"
    );
    assert_eq!(
        printed(&out, "client"),
        "no default IPv4 interface to bind: pass a route, e.g. pipe_open(TCP, dest, \"127.0.0.1\"), or IP4 for any address"
    );
    assert!(
        printed(&out, "echo").contains("echo_server(TCP, \"127.0.0.1\", 7000)"),
        "{}",
        printed(&out, "echo")
    );
    assert_eq!(printed(&out, "after"), "b'still fine' 42");
}
