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
    p.exp_string(">>> ").unwrap();
    p.send_line("tour()").unwrap();
    p.exp_string("Asking the STUN servers").unwrap();
    p.exp_regex(r"Offline \((none of the 1 STUN server\(s\) from --stun answered within 1\.5 s|this machine has no default route)\)")
        .unwrap();
    p.exp_string("[1/15] Running async code").unwrap();
    // Clear the offered code (Ctrl-U) and move with commands instead.
    p.exp_string(">>> ").unwrap();
    p.send("\x15").unwrap();
    p.send_line("step(3)").unwrap();
    p.exp_string("[3/15] Network interface cards").unwrap();
    p.exp_string(">>> ").unwrap();
    p.send("\x15").unwrap();
    p.send_line("back()").unwrap();
    p.exp_string("[2/15] Running async code").unwrap();
    p.exp_string(">>> ").unwrap();
    p.send("\x15").unwrap();
    p.send_line("steps()").unwrap();
    p.exp_string(" >  2  Running async code: netifaces = await init_p2pd();")
        .unwrap();
    // steps() offers the current code again; a failing edit comes back to fix.
    p.exp_string(">>> ").unwrap();
    p.send("\x15").unwrap();
    p.send_line("netifaces = no_such_thing()").unwrap();
    p.exp_string("Function not found: no_such_thing").unwrap();
    p.exp_string("That failed: it is back at the prompt")
        .unwrap();
    p.exp_string(">>> ").unwrap();
    p.send("\x15").unwrap();
    p.send_line("step(99)").unwrap();
    p.exp_string("The tour has steps 1 to 15.").unwrap();
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
    p.send_control('d').unwrap();
    p.exp_eof().unwrap();
}

/// Sends one line and returns what the screen shows until the next prompt.
fn type_line(p: &mut PtySession, line: &str) -> String {
    p.send_line(line).unwrap();
    p.exp_string(">>> ")
        .unwrap_or_else(|e| panic!("{line}: {e}"))
}

#[test]
fn the_tutorials_own_lines_run_as_written() {
    let h = home();
    let mut p = spawn(Command::new(BIN), h.path(), &["--offline"]);
    // The notice's last line, then the prompt drawn after it.
    p.exp_string("The same code runs unchanged online.")
        .unwrap();
    p.exp_string(">>> ").unwrap();
    let shown = type_line(&mut p, "import asyncio");
    assert!(
        shown.contains("note: nothing to import (asyncio)"),
        "{shown}"
    );
    let shown = type_line(&mut p, "from p2pd import *");
    assert!(shown.contains("note: nothing to import (p2pd)"), "{shown}");
    for line in [
        "netifaces = await init_p2pd() # Loads netifaces.",
        "# Start the default interface.",
        "i = await Interface().start()",
    ] {
        let shown = type_line(&mut p, line);
        assert!(!shown.contains("rror"), "{line}: {shown}");
    }
    let shown = type_line(&mut p, "await i.load_nat()");
    assert!(shown.contains("NAT report:"), "{shown}");
    // repr(i) shows the dict itself, as the tutorial prints it (not a quoted string).
    let shown = type_line(&mut p, "repr(i)");
    assert!(shown.contains("Interface.from_dict({"), "{shown}");
    assert!(shown.contains("\"rp\": {"), "{shown}");
    assert!(!shown.contains("\\n"), "{shown}");
    let mut transcript = String::new();
    for line in [
        "ifs = await load_interfaces(netifaces=netifaces)",
        "af = i.supported()[0]",
        "route = await i.route(af).bind()",
        "route",
        "dest = await Address(\"www.google.com\", 80, route).res()",
        "pipe = await pipe_open(TCP, dest, route)",
        "pipe.subscribe()",
        r#"buf = b"Test\r\n\r\n""#,
        "await pipe.send(buf)",
        "out = await pipe.recv(timeout=3)",
        "print(out)",
        "await pipe.close()",
    ] {
        let shown = type_line(&mut p, line);
        assert!(!shown.contains("rror"), "{line}: {shown}");
        transcript.push_str(&shown);
    }
    assert!(transcript.contains("<Route IPv4 ["), "{transcript}");
    assert!(transcript.contains(" bound "), "{transcript}");
    assert!(
        transcript.contains("b'HTTP/1.0 400 Bad Request\\r\\n"),
        "{transcript}"
    );
    // The tutorial's Python function needs Rhai's shape; the prompt says which.
    let shown = type_line(&mut p, "async def main():");
    assert!(shown.contains("Rhai writes `fn main() { ... }`"), "{shown}");
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
