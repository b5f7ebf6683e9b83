//! The guided tour and the tutorial's own lines, as a person meets them: offline, in a
//! terminal (a pty, keystrokes in, screen out), on this host and in a namespace that has
//! no network at all. Nothing leaves loopback: the tour's world is local (`--offline`, or
//! found offline because only a loopback server is configured or no route exists).

mod common;

use common::netns::{Netns, cannot_run};
use p2pd::repl::front::Front;
use p2pd::repl::tour::steps::{Step, embedded};
use p2pd::script::{Cancel, MemorySink, Session, SessionOptions};
use rexpect::session::{PtySession, spawn_command};
use std::process::Command;
use std::sync::Arc;

const BIN: &str = env!("CARGO_BIN_EXE_p2pd-repl");

fn home() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp home")
}

/// The REPL in a pty with its own home (history never touches the user's).
fn spawn(mut cmd: Command, home: &std::path::Path, args: &[&str]) -> PtySession {
    cmd.arg("--no-color")
        .args(args)
        .env("HOME", home)
        .env_remove("XDG_STATE_HOME")
        .env_remove("P2PD_STUN")
        .env("TERM", "xterm");
    let mut p = spawn_command(cmd, Some(15_000)).expect("spawn the REPL in a pty");
    p.exp_string("help() for help").expect("banner");
    p
}

fn enter(p: &mut PtySession) {
    p.send("\r").unwrap();
    p.flush().unwrap();
}

/// At the prompt the tour filled in: clears it (Ctrl-U), types `line` instead, and
/// expects what it shows.
fn instead(p: &mut PtySession, line: &str, shows: &[&str]) {
    p.exp_string(">>> ").unwrap();
    p.send("\x15").unwrap();
    p.send_line(line).unwrap();
    for text in shows {
        p.exp_string(text)
            .unwrap_or_else(|e| panic!("{line} shows {text:?}: {e}"));
    }
}

/// Walks every step: its header and explanation, Enter to run the code put at the prompt,
/// each expected text and the notice, Enter to go on. Ends after the last step.
fn walk(p: &mut PtySession, steps: &[Step]) {
    for (i, step) in steps.iter().enumerate() {
        let header = format!("[{}/{}] {}", i + 1, steps.len(), step.section);
        p.exp_string(&header)
            .unwrap_or_else(|e| panic!("{header}: {e}"));
        let first_line = step.explain.lines().next().unwrap_or_default();
        p.exp_string(first_line).unwrap();
        p.exp_string(">>> ").unwrap();
        // The code is already at the prompt: Enter runs it.
        enter(p);
        for text in &step.expect {
            p.exp_string(text)
                .unwrap_or_else(|e| panic!("step {} shows {text:?}: {e}", i + 1));
        }
        let notice = step.notice.lines().next().unwrap_or_default();
        p.exp_string(notice)
            .unwrap_or_else(|e| panic!("step {} notice: {e}", i + 1));
        p.exp_string(">>> ").unwrap();
        enter(p);
    }
    p.exp_string("the tour is over").unwrap();
    p.exp_string(">>> ").unwrap();
}

#[test]
fn the_whole_tour_runs_offline_and_keeps_its_variables() {
    let h = home();
    let mut p = spawn(Command::new(BIN), h.path(), &["--tour", "--offline"]);
    p.exp_string("Offline (--offline): this session uses a local world")
        .unwrap();
    p.exp_string("www.google.com:80: a local web stand-in on 127.0.0.80:")
        .unwrap();
    walk(&mut p, embedded());
    // Out of the tour, the REPL goes on with everything the tour made.
    p.send_line("[route.is_bound, out.len() > 0, hosts().len()]")
        .unwrap();
    p.exp_string("[true, true, 1]").unwrap();
    // A key sent before the prompt is back meets a terminal in cooked mode, where Ctrl-D is
    // the line discipline's and never reaches the editor: wait for the prompt first.
    p.exp_string(">>> ").unwrap();
    p.send_control('d').unwrap();
    p.exp_eof().unwrap();
}

#[test]
fn the_tour_goes_offline_by_itself_and_moves_around() {
    let h = home();
    // Only a silent loopback server is configured: the tour decides it is offline.
    let mut p = spawn(Command::new(BIN), h.path(), &["--stun", "127.0.0.1:9"]);
    p.exp_string(">>> ").unwrap();
    p.send_line("let mine = 41;").unwrap();
    p.exp_string("let mine = 41;").unwrap();
    p.exp_string(">>> ").unwrap();
    p.send_line("tour()").unwrap();
    p.exp_string("Asking the STUN servers").unwrap();
    p.exp_regex(r"Offline \((none of the 1 STUN server\(s\) from --stun answered within 1\.5 s|this machine has no default route)\)")
        .unwrap();
    p.exp_string("[1/15] Running async code").unwrap();
    // Move with commands instead of running the offered code.
    instead(
        &mut p,
        "step(3)",
        &["[3/15] Network interface cards", "(Not run yet: steps 1-2."],
    );
    instead(&mut p, "back()", &["[2/15] Running async code"]);
    instead(
        &mut p,
        "steps()",
        &[" >  2  Running async code: netifaces = await init_p2pd();"],
    );
    // steps() offers the current code again; a failing edit comes back to fix.
    instead(
        &mut p,
        "netifaces = no_such_thing()",
        &[
            "Function not found: no_such_thing",
            "That failed: it is back at the prompt",
        ],
    );
    instead(&mut p, "step(99)", &["The tour has steps 1 to 15."]);
    p.exp_string(">>> ").unwrap();
    // Ctrl-D leaves the tour, not the REPL; the session is as it was.
    p.send("\x15").unwrap();
    p.send_control('d').unwrap();
    p.exp_string("Left the tour at step 2 of 15").unwrap();
    p.exp_string(">>> ").unwrap();
    p.send_line("[mine + 1, offline().stun.len()]").unwrap();
    p.exp_string("[42, 2]").unwrap();
    // Outside the tour, next() is an ordinary (unknown) call.
    p.send_line("next()").unwrap();
    p.exp_string("Function not found: next").unwrap();
    p.exp_string(">>> ").unwrap();
    p.send_control('d').unwrap();
    p.exp_eof().unwrap();
}

/// Types the lines, each with the texts its result must show (in order). A line is sent
/// only once the previous one is back at a prompt: rustyline drops what arrives in the
/// same read as an Enter. Output printed while a prompt is up is drawn above it and the
/// prompt redrawn, so every result is followed by a prompt. Returns everything shown.
fn type_lines(p: &mut PtySession, lines: &[(&str, &[&str])]) -> String {
    let mut shown = String::new();
    for (line, expect) in lines {
        p.send_line(line).unwrap();
        p.exp_string(line)
            .unwrap_or_else(|e| panic!("echo of {line}: {e}"));
        for text in *expect {
            let before = p
                .exp_string(text)
                .unwrap_or_else(|e| panic!("{line} shows {text:?}: {e}"));
            shown.push_str(&before);
            shown.push_str(text);
        }
        shown.push_str(&p.exp_string(">>> ").unwrap());
    }
    shown
}

#[test]
fn the_tutorials_own_lines_run_as_written() {
    let h = home();
    let mut p = spawn(Command::new(BIN), h.path(), &["--offline"]);
    p.exp_string("The same code runs unchanged online.")
        .unwrap();
    let shown = type_lines(
        &mut p,
        &[
            ("import asyncio", &["note: nothing to import (asyncio)"]),
            ("from p2pd import *", &["note: nothing to import (p2pd)"]),
            ("netifaces = await init_p2pd() # Loads netifaces.", &[]),
            ("# Start the default interface.", &[]),
            ("i = await Interface().start()", &[]),
            ("await i.load_nat()", &["NAT report:", "* Type: "]),
            // The dict itself, as the tutorial prints it: a quoted string would show
            // `\"rp\"` on one long line instead.
            ("repr(i)", &["Interface.from_dict({", "\"rp\": {", "})"]),
            ("ifs = await load_interfaces(netifaces=netifaces)", &[]),
            ("af = i.supported()[0]", &[]),
            ("route = await i.route(af).bind()", &[]),
            ("route", &["<Route IPv4 [", " bound "]),
            (
                "dest = await Address(\"www.google.com\", 80, route).res()",
                &[],
            ),
            ("pipe = await pipe_open(TCP, dest, route)", &[]),
            ("pipe.subscribe()", &[]),
            (r#"buf = b"Test\r\n\r\n""#, &[]),
            ("await pipe.send(buf)", &[]),
            ("out = await pipe.recv(timeout=3)", &[]),
            ("print(out)", &["b'HTTP/1.0 400 Bad Request\\r\\n"]),
            ("await pipe.close()", &[]),
            // The tutorial's Python function needs Rhai's shape; the prompt says which.
            ("async def main():", &["Rhai writes `fn main() { ... }`"]),
        ],
    );
    let errors = shown.matches("rror").count();
    assert_eq!(errors, 0, "{shown}");
    p.send_control('d').unwrap();
    p.exp_eof().unwrap();
}

#[test]
fn the_tour_runs_where_there_is_no_network_at_all() {
    let ns = match Netns::lo_only("tr") {
        Ok(ns) => ns,
        Err(e) => return cannot_run("the tour in a namespace with only lo", &e),
    };
    let h = home();
    let mut p = spawn(ns.command(), h.path(), &["--tour"]);
    p.exp_string("Offline (this machine has no default route)")
        .unwrap();
    p.exp_string("Interface(): lo, as this machine has no default interface")
        .unwrap();
    walk(&mut p, embedded());
    p.send_control('d').unwrap();
    p.exp_eof().unwrap();
}

/// Every step's code through the REPL's own front end, without a terminal: the tour's
/// expectations hold, one step after another, in one session.
#[test]
fn every_step_shows_what_the_tour_promises() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let sink = Arc::new(MemorySink::default());
    let session = Session::new(
        rt.handle().clone(),
        Cancel::new(),
        sink.clone(),
        SessionOptions::default(),
    );
    let mut front = Front::new(session, sink.clone(), false);
    front.go_offline("a test");
    let mut prompt = front.start_tour();
    for (i, step) in embedded().iter().enumerate() {
        assert_eq!(
            prompt.initial.as_deref(),
            Some(step.code.as_str()),
            "step {}",
            i + 1
        );
        sink.take();
        front.line(&step.code);
        let shown = sink.take().join("\n");
        for text in &step.expect {
            assert!(
                shown.contains(text),
                "step {} shows {text:?}:\n{shown}",
                i + 1
            );
        }
        assert!(shown.contains(&step.notice), "step {}: {shown}", i + 1);
        prompt = front.line("");
    }
    assert!(sink.take().join("\n").contains("the tour is over"));
}

/// A session whose output is kept in memory, for the hosts table and hand-made routes.
fn shell() -> common::Shell {
    common::shell()
}

#[test]
fn hosts_entries_send_names_where_they_say() {
    let mut s = shell();
    s.run(r#"let srv = echo_server(TCP, "127.0.0.1", 0);"#);
    // "name:port" moves the port too: the tutorial's port 80 reaches a high port.
    let table = s.echo(r#"hosts(#{"echo.test:80": `127.0.0.1:${srv.local[1]}`})"#);
    assert!(
        table.starts_with(r#"#{"echo.test:80": "127.0.0.1:"#),
        "{table}"
    );
    let dest = s.echo(r#"Address("echo.test", 80).res()"#);
    assert!(dest.contains("(echo.test)"), "{dest}");
    assert_eq!(
        s.echo(r#"let p = pipe_open(TCP, ["ECHO.test", 80]); p.send(b"hi"); let m = p.recv(2); p.close(); m"#),
        "b'hi'"
    );
    // Other ports of the name are not in the table (and never reach DNS here: the
    // lookup below asks for a port the entry does not cover, of a family it has not).
    let e = s.error(r#"resolve("echo.test", 80, IP6)"#);
    assert!(
        e.contains("in the session's hosts table") && e.contains("the route is IPv6"),
        "{e}"
    );
    // A bad entry changes nothing, and says what is wrong.
    let e = s.error(r#"hosts(#{"ok.test": "127.0.0.9", "bad key": "127.0.0.1"})"#);
    assert!(e.contains("bad hosts key \"bad key\""), "{e}");
    assert_eq!(s.echo("hosts().len()"), "1");
    let e = s.error(r#"hosts(#{"echo.test": "127.0.0.1:8080"})"#);
    assert!(e.contains("give the port on both sides"), "{e}");
    assert_eq!(s.echo(r#"hosts(#{"echo.test:80": ()})"#), "#{}");
}

#[test]
fn routes_are_made_by_hand_from_ranges() {
    let mut s = shell();
    assert_eq!(
        s.echo(
            r#"Route(IP4, [IPRange("192.168.0.20"), "193.168.0.0/16"], [IPRange("1.3.3.7", 32)])"#
        ),
        "<Route IPv4 [192.168.0.20/32, 193.168.0.1/16] -> [1.3.3.7/32]>"
    );
    assert_eq!(s.echo(r#"IPRange("8.8.0.0/255.255.0.0").cidr"#), "16");
    assert!(
        s.error(r#"Route(IP4, ["10.0.0.1"], ["::1"])"#)
            .contains("not an IPv4 address")
    );
    assert!(
        s.error("Route(IP4, [], [])")
            .contains("at least one NIC address")
    );
    assert!(s.error(r#"IPRange("1.2.3.4", 40)"#).contains("40"));
    assert!(
        s.error(r#"Route(IP4, [1], [])"#)
            .contains("IPRange values or")
    );
    assert_eq!(s.echo("offline()"), "");
}

#[test]
fn scripts_stay_strict_rhai_and_say_how_to_write_it() {
    let run = |code: &str| {
        Command::new(BIN)
            .args(["-e", code])
            .env("NO_COLOR", "1")
            .output()
            .expect("run p2pd-repl")
    };
    for (code, hint) in [
        ("x = 1", "declare a new variable with `let x = ...;`"),
        ("import asyncio", "Rhai needs no import"),
        (
            "let p = 1;\np.recv(timeout=3)",
            "`recv(timeout=3)` is `recv((), 3)`",
        ),
        ("let a = 1 # one", "Rhai comments start with `//`"),
    ] {
        let out = run(code);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{code}: {err}");
        assert!(
            err.contains("hint: ") && err.contains(hint),
            "{code}: {err}"
        );
    }
    let out = run("tour()");
    assert!(String::from_utf8_lossy(&out.stderr).contains("p2pd-repl --tour"));
}
