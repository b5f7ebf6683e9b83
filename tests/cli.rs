//! The command line as scripts and CI use it: modes, exit codes, error format.

use rexpect::session::spawn_command;
use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_p2pd-repl");

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("run p2pd-repl")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn eval_prints_and_exits_zero() {
    let out = run(&["-e", "print(1 + 1)"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), "2\n");
}

#[test]
fn script_error_exits_one_with_file_line_col_and_caret() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.rhai");
    std::fs::write(&file, "let a = 1;\nlet b = a + missing;\n").unwrap();
    let out = run(&[file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    let expected = format!(
        "{}:2:13: Variable not found: missing\n    let b = a + missing;\n                ^\n",
        file.display()
    );
    assert_eq!(err, expected);
    assert!(out.stdout.is_empty());
}

#[test]
fn runaway_scripts_end_in_errors_not_aborts() {
    // With the default limits, as a user runs it: the string doubles past 1 GiB of heap.
    let out = run(&["-e", r#"let s = "x"; loop { s += s; }"#]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("memory limit of 1073741824 bytes"), "{err}");
    assert!(err.contains("--limit memory=N"), "{err}");
    // One call asking for 10 GB is refused before it allocates.
    let out = run(&["-e", r#"let s = ""; s.pad(10000000000, "x");"#]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("memory limit"));
    // Recursion deeper than the stack allows, even with the call depth limit raised.
    let deep = "fn f(n) { if n == 0 { 0 } else { f(n - 1) + 1 } } f(50000)";
    let out = run(&["--limit", "call_depth=100000", "-e", deep]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("too deep for the script thread's stack"));
    let out = run(&["-e", deep]);
    assert!(text(&out.stderr).contains("call depth limit of 256"));
    assert!(text(&out.stderr).contains("--limit call_depth=N"));
}

#[test]
fn limit_flags_are_checked() {
    let out = run(&["--limit", "strnig=5", "-e", "1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("unknown limit \"strnig\""));
    let out = run(&[
        "--limit",
        "string=1000",
        "-e",
        r#"let s = "x"; loop { s += s; }"#,
    ]);
    assert!(text(&out.stderr).contains("a string grew past the limit of 1000 bytes"));
    let out = run(&["--limit", "operations=1000", "-e", "loop { }"]);
    assert!(text(&out.stderr).contains("more than the limit of 1000 operations"));
}

#[test]
fn parse_error_is_a_script_error() {
    let out = run(&["-e", "let = 5;"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).starts_with("<eval>:1:"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn usage_errors_exit_two() {
    assert_eq!(run(&["--no-such-flag"]).status.code(), Some(2));
    let missing = run(&["/nonexistent/script.rhai"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing.stderr).contains("/nonexistent/script.rhai"));
    assert_eq!(run(&["-e", "1", "file.rhai"]).status.code(), Some(2));
}

#[test]
fn help_shows_examples_and_exit_codes() {
    let out = run(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let s = text(&out.stdout);
    assert!(
        s.contains("Examples:") && s.contains("p2pd-repl scripts/google.rhai"),
        "{s}"
    );
    assert!(s.contains("130 interrupted"), "{s}");
}

#[test]
fn script_arguments_are_args() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("args.rhai");
    std::fs::write(
        &file,
        "print(ARGS); fn inside() { ARGS.len() } print(inside());",
    )
    .unwrap();
    let out = run(&[file.to_str().unwrap(), "one", "--two"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "[\"one\", \"--two\"]\n2\n");
}

#[test]
fn stdin_that_is_not_a_terminal_runs_as_a_script() {
    let mut child = Command::new(BIN)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"let x = 20;\nprint(x * 2 + 2);\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), "42\n");
}

#[test]
fn script_mode_never_touches_history() {
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["-e", "print(1)"])
        .env("HOME", home.path())
        .env_remove("XDG_STATE_HOME")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(!home.path().join(".local/state/p2pd-repl").exists());
}

#[test]
fn colour_is_off_when_not_a_terminal() {
    let out = Command::new(BIN).args(["-e", "x"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        !text(&out.stderr).contains('\x1b'),
        "{:?}",
        text(&out.stderr)
    );
}

/// The exit status of a process that a pty session ran, as text ("Exited(Pid(..), 130)").
fn interrupted_status(code: &str, presses: usize) -> String {
    let mut cmd = Command::new(BIN);
    cmd.args(["--no-color", "-e", code]).env("TERM", "xterm");
    let mut p = spawn_command(cmd, Some(10_000)).unwrap();
    p.exp_string("started").unwrap();
    for _ in 0..presses {
        p.send_control('c').unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    p.exp_string("KeyboardInterrupt").unwrap();
    format!("{:?}", p.process.wait().unwrap())
}

#[test]
fn ctrl_c_in_script_mode_exits_130() {
    let status = interrupted_status(r#"print("started"); sleep(30); print("not reached")"#, 1);
    assert!(status.contains(", 130)"), "{status}");
}

#[test]
fn ctrl_c_stops_a_busy_script_and_a_second_one_forces_exit() {
    let status = interrupted_status(r#"print("started"); loop {}"#, 1);
    assert!(status.contains(", 130)"), "{status}");
    let status = interrupted_status(r#"print("started"); sleep(30)"#, 2);
    assert!(status.contains(", 130)"), "{status}");
}
