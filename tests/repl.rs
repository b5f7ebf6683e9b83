//! The REPL driven as a person would: through a pseudo-terminal, with keystrokes.

use rexpect::session::{PtySession, spawn_command};
use std::process::Command;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_p2pd-repl");

/// Starts the REPL in a pty with its own home, so history never touches the user's.
fn repl(home: &std::path::Path) -> PtySession {
    let mut cmd = Command::new(BIN);
    cmd.arg("--no-color")
        .env("HOME", home)
        .env_remove("XDG_STATE_HOME")
        .env("TERM", "xterm");
    let mut p = spawn_command(cmd, Some(10_000)).expect("spawn the REPL in a pty");
    p.exp_string("help() for help").expect("banner");
    p.exp_string(">>> ").expect("first prompt");
    p
}

/// Ctrl-C during an evaluation: `KeyboardInterrupt`, and the prompt back within a second.
fn interrupt_and_expect_the_prompt(p: &mut PtySession) {
    let start = Instant::now();
    p.send_control('c').unwrap();
    p.exp_string("KeyboardInterrupt").unwrap();
    p.exp_string(">>> ").unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "prompt back after {:?}",
        start.elapsed()
    );
}

fn home() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp home")
}

#[test]
fn banner_names_the_version_and_help() {
    let h = home();
    let mut cmd = Command::new(BIN);
    cmd.arg("--no-color")
        .env("HOME", h.path())
        .env("TERM", "xterm");
    let mut p = spawn_command(cmd, Some(10_000)).unwrap();
    p.exp_string(&format!("p2pd-repl {}", env!("CARGO_PKG_VERSION")))
        .unwrap();
    p.exp_string("help() for help").unwrap();
    p.exp_string(">>> ").unwrap();
}

#[test]
fn expression_values_echo_and_unit_does_not() {
    let h = home();
    let mut p = repl(h.path());
    p.send_line("let x = 40;").unwrap();
    p.exp_string(">>> ").unwrap();
    p.send_line("x + 2").unwrap();
    p.exp_string("42").unwrap();
    p.send_line(r#"b"Test\r\n\r\n""#).unwrap();
    p.exp_string(r"b'Test\r\n\r\n'").unwrap();
    p.send_line(r#"#{name: "eth0", ips: [1, 2]}"#).unwrap();
    p.exp_string(r#"#{"ips": [1, 2], "name": "eth0"}"#).unwrap();
}

#[test]
fn multi_line_input_continues_while_braces_are_open() {
    let h = home();
    let mut p = repl(h.path());
    p.send_line("fn double(v) {").unwrap();
    p.exp_string("... ").unwrap();
    p.send_line("  v * 2").unwrap();
    p.exp_string("... ").unwrap();
    p.send_line("}").unwrap();
    p.exp_string(">>> ").unwrap();
    p.send_line("double(21)").unwrap();
    p.exp_string("42").unwrap();
    p.send_line(r#"let s = "open"#).unwrap();
    p.exp_string("... ").unwrap();
    p.send_line(r#"string";"#).unwrap();
    p.exp_string(">>> ").unwrap();
}

#[test]
fn tab_completes_functions_variables_and_methods() {
    let h = home();
    let mut p = repl(h.path());
    p.send_line("let distinctive_name = 31;").unwrap();
    p.exp_string(">>> ").unwrap();
    p.send("distinctive_n\t").unwrap();
    p.send_line("").unwrap();
    p.exp_string("31").unwrap();
    p.send(r#"b"\x01\xab".to_bl"#).unwrap();
    p.send("\t").unwrap();
    p.send_line("()").unwrap();
    p.exp_string("01ab").unwrap();
    p.send("call_la\t").unwrap();
    p.send_line("").unwrap();
    // A bare function name is a function pointer: the completion produced a real name.
    p.exp_string("call_later").unwrap();
}

#[test]
fn a_failing_line_leaves_every_variable_intact() {
    let h = home();
    let mut p = repl(h.path());
    p.send_line("let kept = 10;").unwrap();
    p.exp_string(">>> ").unwrap();
    p.send_line("kept = 20; let extra = 1; no_such_function();")
        .unwrap();
    p.exp_string("Function not found").unwrap();
    p.send_line("kept").unwrap();
    p.exp_string("10").unwrap();
    p.send_line("extra").unwrap();
    p.exp_string("Variable not found: extra").unwrap();
}

#[test]
fn a_runaway_string_ends_in_a_limit_error_and_the_session_lives_on() {
    let h = home();
    let mut p = repl(h.path());
    p.send_line("let kept = 10; limits(#{memory: 200000000}).memory")
        .unwrap();
    p.exp_string("200000000").unwrap();
    // The new limit is in force from this input on.
    p.send_line(r#"let s = "x"; loop { s += s; }"#).unwrap();
    p.exp_string("memory limit of 200000000 bytes").unwrap();
    p.exp_string("limits(#{memory: N})").unwrap();
    p.send_line("kept + 1").unwrap();
    p.exp_string("11").unwrap();
    p.send_line("s").unwrap();
    p.exp_string("Variable not found: s").unwrap();
}

#[test]
fn ctrl_c_cancels_an_await_and_keeps_the_scope() {
    let h = home();
    let mut p = repl(h.path());
    p.send_line("let still_here = 7;").unwrap();
    p.exp_string(">>> ").unwrap();
    p.send_line("sleep(30)").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    interrupt_and_expect_the_prompt(&mut p);
    p.send_line("still_here").unwrap();
    p.exp_string("7").unwrap();
}

#[test]
fn ctrl_c_stops_a_busy_loop() {
    let h = home();
    let mut p = repl(h.path());
    p.send_line("let n = 0; loop { n += 1; }").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    p.send_control('c').unwrap();
    p.exp_string("KeyboardInterrupt").unwrap();
    p.send_line("40 + 2").unwrap();
    p.exp_string("42").unwrap();
}

#[test]
fn ctrl_c_at_the_prompt_clears_the_line() {
    let h = home();
    let mut p = repl(h.path());
    p.send("this is not code").unwrap();
    p.send_control('c').unwrap();
    p.exp_string(">>> ").unwrap();
    p.send_line("6 * 7").unwrap();
    p.exp_string("42").unwrap();
}

#[test]
fn callbacks_print_while_the_prompt_is_idle() {
    let h = home();
    let mut p = repl(h.path());
    p.send_line(r#"call_later(0.2, || print("ping from a timer"));"#)
        .unwrap();
    // Nothing else is typed: the callback runs while the editor waits for input.
    p.exp_string("ping from a timer").unwrap();
    p.send_line(r#"call_later(0.1, || throw "broken callback");"#)
        .unwrap();
    p.exp_string("broken callback").unwrap();
    p.send_line("1 + 1").unwrap();
    p.exp_string("2").unwrap();
}

#[test]
fn history_persists_across_runs() {
    let h = home();
    {
        let mut p = repl(h.path());
        p.send_line("let remembered = 99;").unwrap();
        p.exp_string(">>> ").unwrap();
        p.send_control('d').unwrap();
        p.exp_eof().unwrap();
    }
    let file = h.path().join(".local/state/p2pd-repl/history");
    let saved = std::fs::read_to_string(&file).expect("history file written");
    assert!(saved.contains("let remembered = 99;"), "{saved}");

    let mut p = repl(h.path());
    p.send("\x1b[A").unwrap(); // Up arrow recalls the previous run's line.
    p.send_line("").unwrap();
    p.send_line("remembered").unwrap();
    p.exp_string("99").unwrap();
}

#[test]
fn help_lists_areas_and_describes_one_function() {
    let h = home();
    let mut p = repl(h.path());
    p.send_line("help()").unwrap();
    p.exp_string("shell:").unwrap();
    p.exp_string("bytes:").unwrap();
    p.send_line("help(sleep)").unwrap();
    p.exp_string("sleep(secs)").unwrap();
    p.exp_string("example: sleep(0.5)").unwrap();
}

/// Starts the REPL with colour allowed (a terminal, no NO_COLOR).
fn coloured_repl(home: &std::path::Path, no_color_env: bool) -> PtySession {
    let mut cmd = Command::new(BIN);
    cmd.env("HOME", home)
        .env("TERM", "xterm")
        .env_remove("NO_COLOR");
    if no_color_env {
        cmd.env("NO_COLOR", "1");
    }
    let mut p = spawn_command(cmd, Some(10_000)).unwrap();
    p.exp_string(">>> ").unwrap();
    p
}

#[test]
fn keywords_strings_and_numbers_are_coloured_on_a_terminal() {
    let h = home();
    let mut p = coloured_repl(h.path(), false);
    p.send(r#"let s = "txt" + 42"#).unwrap();
    p.flush().unwrap();
    // Keyword in bold magenta, string in green, number in cyan.
    p.exp_string("\x1b[1m\x1b[35mlet").unwrap();
    p.exp_string("\x1b[32m\"txt\"").unwrap();
    p.exp_string("\x1b[36m42").unwrap();
    p.send_line("").unwrap();
    // rustyline drops bytes that arrive in the same read as Enter, so wait for the
    // next prompt (a real paste is bracketed and unaffected).
    p.exp_string(">>> ").unwrap();
    p.send_line("no_such_var").unwrap();
    p.exp_string("\x1b[31m<stdin>:1:1: Variable not found")
        .unwrap();
}

#[test]
fn no_color_turns_colour_off() {
    let h = home();
    let mut p = coloured_repl(h.path(), true);
    p.send_line(r#"let s = "txt" + 42; s"#).unwrap();
    let (before, _) = p.exp_regex("txt42").unwrap();
    assert!(
        !before.contains("\x1b[35m") && !before.contains("\x1b[32m"),
        "{before:?}"
    );
}

#[test]
fn callback_output_does_not_break_the_line_being_typed() {
    let h = home();
    let mut p = repl(h.path());
    p.send_line(r#"call_later(0.5, || print("tick-tock"));"#)
        .unwrap();
    p.exp_string(">>> ").unwrap();
    p.send("40 + ").unwrap();
    p.flush().unwrap();
    p.exp_string("tick-tock").unwrap();
    // The half-typed line survived the print: finishing it evaluates all of it.
    p.send_line("2").unwrap();
    p.exp_string("42").unwrap();
}

#[test]
fn ctrl_c_cancels_the_tasks_of_the_line_and_keeps_earlier_ones() {
    let h = home();
    let mut p = repl(h.path());
    p.send_line(r#"let bg = create_task(|| { sleep(2); print("background done") });"#)
        .unwrap();
    p.exp_string(">>> ").unwrap();
    p.send_line(r#"create_task(|| { sleep(1.2); print("line task done") }); sleep(30)"#)
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    interrupt_and_expect_the_prompt(&mut p);
    // The earlier line's task goes on between lines; the interrupted line's never prints.
    let before = p.exp_string("background done").unwrap();
    assert!(!before.contains("line task done"), "{before:?}");
    p.send_line("bg.done()").unwrap();
    p.exp_string("true").unwrap();
}

/// A UDP pipe towards a port nobody answers on: its `recv` waits out its timeout.
const SILENT_RECV: &str = r#"let p = pipe_open(UDP, "127.0.0.1:9"); p.recv(timeout=1)"#;

#[test]
fn a_long_wait_shows_what_it_waits_for_then_erases_it() {
    let h = home();
    let mut p = coloured_repl(h.path(), false);
    p.send_line(SILENT_RECV).unwrap();
    // Not before 300 ms; then the line with the time so far, redrawn in place.
    p.exp_string("\r\x1b[2Krecv: waiting up to 1 s, 0.3 s")
        .unwrap();
    p.exp_string("\r\x1b[2Krecv: waiting up to 1 s, 0.4 s")
        .unwrap();
    // Erased once the wait is over, before the next prompt.
    let (between, _) = p.exp_regex(r"\r\x1b\[2K[^r]*>>> ").unwrap();
    assert!(
        between.contains("0.9 s") || between.contains("0.8 s"),
        "{between:?}"
    );
}

#[test]
fn ctrl_c_stops_a_wait_with_its_status_line_at_once() {
    let h = home();
    let mut p = coloured_repl(h.path(), false);
    p.send_line(r#"let p = pipe_open(UDP, "127.0.0.1:9"); p.recv(timeout=30)"#)
        .unwrap();
    p.exp_string("recv: waiting up to 30 s, 0.5 s").unwrap();
    interrupt_and_expect_the_prompt(&mut p);
}

#[test]
fn plain_output_never_shows_a_status_line() {
    let h = home();
    // NO_COLOR (and --no-color): a terminal, but plain output.
    for mut p in [coloured_repl(h.path(), true), repl(h.path())] {
        p.send_line(SILENT_RECV).unwrap();
        p.exp_string("recv(timeout=1)").unwrap();
        // Everything from the end of the line to the next prompt, the whole wait included.
        let during = p.exp_string(">>> ").unwrap();
        assert!(!during.contains("waiting up to"), "{during:?}");
    }
    // A script on a terminal (strict Rhai: no keyword argument): never.
    let script = r#"let p = pipe_open(UDP, "127.0.0.1:9"); p.recv(1); print("script" + " done")"#;
    let mut cmd = Command::new(BIN);
    cmd.args(["-e", script])
        .env("HOME", h.path())
        .env("TERM", "xterm")
        .env_remove("NO_COLOR");
    let mut p = spawn_command(cmd, Some(10_000)).unwrap();
    let before = p.exp_string("script done").unwrap();
    assert!(!before.contains("waiting"), "{before:?}");
}
