//! Addresses and pipes through the scripting session, as a REPL user types them: loopback
//! only, each case on IPv4 (127.0.0.1) and IPv6 (::1). TCP and UDP clients and servers,
//! subscriptions (regex, peer, copies), timeouts and polling, bounded queues, callbacks on
//! the script thread (during awaits and while idle), linked pipes, close and re-bind, and
//! errors that leave the session usable. Time bounds only tell "at once" from "waited".

use p2pd::script::{Cancel, Session, SessionOptions, Sink};
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

struct Shell {
    session: Session,
    sink: Arc<ThreadSink>,
    _rt: tokio::runtime::Runtime,
}

/// `TCP`/`UDP`/`IP4`/`IP6` as P2PD numbers them, for branches where the interface
/// bindings (which define them as constants) are not there; scope values take precedence
/// over constants, so this is harmless where they are.
const PRELUDE: &str = "let TCP = 1; let UDP = 2; let IP4 = 2; let IP6 = 10;";

fn shell(v6: bool) -> Shell {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let sink = Arc::new(ThreadSink::default());
    let session = Session::new(
        rt.handle().clone(),
        Cancel::new(),
        sink.clone(),
        SessionOptions::default(),
    );
    let mut s = Shell {
        session,
        sink,
        _rt: rt,
    };
    s.run(PRELUDE);
    let lo = if v6 { "::1" } else { "127.0.0.1" };
    s.run(&format!(
        "let LO = \"{lo}\"; let AF = {};",
        if v6 { 10 } else { 2 }
    ));
    s
}

impl Shell {
    fn run(&mut self, src: &str) {
        if let Err(e) = self.session.eval(src) {
            panic!("{src}\n{}", e.render("<test>", src));
        }
    }
    fn echo(&mut self, src: &str) -> String {
        match self.session.eval_line(src) {
            Ok(v) => v.unwrap_or_default(),
            Err(e) => panic!("{src}\n{}", e.render("<test>", src)),
        }
    }
    fn error(&mut self, src: &str) -> String {
        self.session.eval_line(src).expect_err(src).message
    }
    /// The printed lines so far, emptied.
    fn printed(&self) -> Vec<(ThreadId, String)> {
        std::mem::take(&mut *self.sink.lines.lock().unwrap())
    }
    fn texts(&self) -> Vec<String> {
        self.printed().into_iter().map(|(_, t)| t).collect()
    }
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
    s.printed();
    s.run(r#"let c = pipe_open(TCP, srv.local); c.send("hi");"#);
    // The reply proves the callback ran (and could itself await a send) during this recv.
    assert_eq!(s.echo("c.recv(2)"), "b'hi!'");
    s.run("c.close(); sleep(0.3);");
    assert_eq!(s.echo("seen"), r#"["up true", "msg b'hi'", "end false"]"#);
    let printed = s.printed();
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
        s.texts()
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
    let printed = s.printed();
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
