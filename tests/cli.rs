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
    // With the default limits, as a user runs it: the string passes its own limit first.
    let doubling = r#"let s = "x"; loop { s += s; }"#;
    let out = run(&["-e", doubling]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("string grew past the limit of 268435456 bytes"),
        "{err}"
    );
    assert!(err.contains("--limit string=N"), "{err}");
    // Without it, the heap passes 1 GiB.
    let out = run(&["--limit", "string=0", "-e", doubling]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("memory limit of 1073741824 bytes"), "{err}");
    assert!(err.contains("--limit memory=N"), "{err}");
    // One call asking for 10 GB is refused before it allocates, by the string limit or,
    // without it, the memory limit.
    let pad = r#"let s = ""; s.pad(10000000000, "x");"#;
    let out = run(&["-e", pad]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("limit of 268435456 bytes"));
    let out = run(&["--limit", "string=0", "-e", pad]);
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

/// Runs `code` in the script and in a task (a fiber, on a 2 MiB stack in a release build);
/// both must end with exit code 1 and a message containing `expected`, never in an abort
/// (a signal, no exit code).
fn fails_in_script_and_task(args: &[&str], code: &str, expected: &str) {
    for code in [
        code.to_string(),
        format!("await create_task(|| {{ {code} }})"),
    ] {
        let out = run(&[args, &["-e", &code]].concat());
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{code}: {err}");
        assert!(err.contains(expected), "{code}: {err}");
    }
}

#[test]
fn values_put_into_themselves_end_at_the_nesting_limit_not_in_a_stack_overflow() {
    // Without the limit, each of these ends in a stack overflow (an abort) when the value
    // is cloned, printed or dropped, or at the end of the input.
    for code in [
        "let a = []; for i in 0..2000000 { a = [a]; }",
        "let m = #{}; loop { m = #{inner: m}; }",
        "let a = []; loop { let t = []; t.push(a); a = t; }",
        "let a = [0]; loop { a[0] = a; }",
        "let m = #{}; loop { m.x = m; }",
        "let a = [[0]]; loop { a[0][0] = a; }",
        "let a = []; loop { let t = [1]; t.insert(0, a); a = t; }",
        r#"let f = Fn("g"); loop { f = Fn("g").curry(f); }"#,
        // Closures capturing closures: each holds the last through a shared variable.
        "let k = |x| x; loop { let prev = k; k = |x| prev.call(x + 1); }",
    ] {
        fails_in_script_and_task(&[], code, "nesting limit of 256 levels, its most");
    }
    // A lower limit is named with how to raise it again.
    fails_in_script_and_task(
        &["--limit", "nesting=10"],
        "let a = []; loop { a = [a]; }",
        "nesting limit of 10 levels: raise it with limits(#{nesting: N})",
    );
    // Doubling (`[a, a]`) runs into the memory limit first, and the value is dropped.
    fails_in_script_and_task(
        &["--limit", "memory=100000000"],
        "let a = []; loop { a = [a, a]; }",
        "memory limit of 100000000 bytes",
    );
}

#[test]
fn the_deepest_value_allowed_can_be_copied_printed_compared_and_dropped() {
    let build = "let a = []; for i in 1..256 { a = [a]; }";
    let ops = "let b = a; print(a == b); print(a.to_string().len()); print(`${a}`.len()); \
               debug(a.len()); print(#{inner: a[0]}.to_json().len());";
    for code in [
        format!("{build} {ops}"),
        format!("await create_task(|| {{ {build} {ops} }})"),
    ] {
        let out = run(&["-e", &code]);
        assert_eq!(out.status.code(), Some(0), "{code}: {}", text(&out.stderr));
        assert_eq!(text(&out.stdout), "true\n512\n512\n1\n520\n", "{code}");
    }
    // Deep in calls in a task, where little of its stack is left: printing may fall back
    // to Rhai's own formatting near the end of the stack, and comparing may stop with the
    // task's stack error, but the process lives.
    let code = format!(
        "fn f(n, a) {{ if n == 0 {{ print(a.to_string().len()); print(a == a); }} else {{ f(n - 1, a) }} }} \
         await create_task(|| {{ {build} f(240, a) }}); print(\"done\")"
    );
    let out = run(&["-e", &code]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(stdout.starts_with("512\n"), "{stdout} {stderr}");
    match out.status.code() {
        Some(0) => assert_eq!(stdout, "512\ntrue\ndone\n"),
        Some(1) => assert!(
            stderr.contains("calls in this task nest too deeply"),
            "{stderr}"
        ),
        other => panic!("exit {other:?}: {stderr}"),
    }
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
    let out = run(&["--limit", "nesting=300", "-e", "1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("limit nesting must be in 1..=256"));
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
