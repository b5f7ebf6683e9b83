//! The scripting session through the library API: what a Rust embedder and the REPL
//! both rely on.

mod common;

use common::shell;
use std::time::{Duration, Instant};

#[test]
fn bytes_behave_like_python_bytes() {
    let mut s = shell();
    assert_eq!(s.echo(r#"b"Test\r\n\r\n""#), r"b'Test\r\n\r\n'");
    assert_eq!(s.echo(r#"bytes("hi")"#), "b'hi'");
    assert_eq!(s.echo("bytes([0, 255, 65])"), r"b'\x00\xffA'");
    assert_eq!(s.echo(r#"b"abc".len()"#), "3");
    assert_eq!(s.echo(r#"b"abc".len"#), "3");
    assert_eq!(s.echo(r#"b"abc"[-1]"#), "99");
    assert_eq!(s.echo(r#"b"hello"[1..3]"#), "b'el'");
    assert_eq!(s.echo(r#"b"hello"[1..=3]"#), "b'ell'");
    assert_eq!(s.echo(r#"b"ab" + b"cd""#), "b'abcd'");
    assert_eq!(s.echo(r#"b"ab" + "cd""#), "b'abcd'");
    assert_eq!(s.echo(r#"b"ab" == "ab""#), "true");
    assert_eq!(s.echo(r#""ab" != b"ab""#), "false");
    assert_eq!(s.echo(r#"b"\x01\xab".hex()"#), "\"01ab\"");
    assert_eq!(s.echo(r#"b"caf\xc3\xa9\xff".text()"#), "\"café\u{fffd}\"");
    assert_eq!(s.echo(r#"bytes([1, 2]).to_blob()"#), "[0102]");
    assert_eq!(
        s.echo(r#"let n = 0; for x in b"\x01\x02" { n += x } n"#),
        "3"
    );
    assert!(s.error("bytes([256])").contains("item 0"));
    assert!(s.error(r#"b"abc"[3]"#).contains("out of range"));
    assert!(s.error(r#"b"€""#).contains("\\xff"));
    // A bad escape is named, with its place.
    let e = s
        .session
        .eval(r#"let ok = 1; let x = b"\xZZ";"#)
        .unwrap_err();
    assert!(
        e.message.contains(r"\xZZ is not an escape"),
        "{}",
        e.message
    );
    assert_eq!((e.line, e.column), (Some(1), Some(23)));
    assert!(s.error(r#"b"\q""#).contains(r"\q is not an escape"));
}

#[test]
fn b_stays_usable_as_a_variable_name() {
    let mut s = shell();
    assert_eq!(s.echo("let b = 5; b += 1; b + 1"), "7");
    assert_eq!(s.echo(r#"let m = #{b: 2}; m.b"#), "2");
    assert_eq!(s.echo(r#""a b\"c""#), "\"a b\\\"c\"");
}

#[test]
fn await_is_a_no_op_on_values_and_waits_for_tasks() {
    let mut s = shell();
    assert_eq!(s.echo("await 5"), "5");
    assert_eq!(s.echo("let v = await [1, 2]; v"), "[1, 2]");
    assert_eq!(s.echo("fn f() { await 3 } f()"), "3");
    assert_eq!(
        s.echo("let t = create_task(|| { sleep(0.05); 40 }); (await t) + 2"),
        "42"
    );
    assert!(
        s.error(r#"let t = create_task(|| throw "inside"); await t"#)
            .contains("inside")
    );
}

#[test]
fn sleep_takes_int_and_float_and_rejects_nonsense() {
    let mut s = shell();
    s.echo("sleep(0); sleep(0.01)");
    assert!(s.error("sleep(-1)").contains(">= 0"));
    assert!(s.error(r#"sleep("1")"#).contains("number of seconds"));
}

#[test]
fn timers_run_on_the_script_thread_and_cancel() {
    let mut s = shell();
    s.echo(
        r#"let hits = []; let t = every(0.02, || hits.push(1)); sleep(0.15); t.cancel();
           let seen = hits.len(); sleep(0.1);"#,
    );
    let seen: i64 = s.echo("seen").parse().unwrap();
    assert!(seen >= 2, "every fired {seen} times");
    assert_eq!(s.echo("hits.len()").parse::<i64>().unwrap(), seen);
    assert_eq!(s.echo("t.cancelled"), "true");
    s.echo(r#"let late = call_later(0.05, || print("never")); late.cancel(); sleep(0.1);"#);
    s.echo(r#"call_later(0.01, || print("fired")); sleep(0.1);"#);
    assert_eq!(s.sink.take(), vec!["fired".to_string()]);
}

#[test]
fn callback_errors_are_reported_and_the_session_lives_on() {
    let mut s = shell();
    s.echo(r#"call_later(0, || throw "bad callback"); sleep(0.05);"#);
    let out = s.sink.take();
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(out[0].contains("bad callback") && out[0].starts_with("callback error: <callback>:1:"));
    assert_eq!(s.echo("1 + 1"), "2");
}

#[test]
fn a_failed_input_changes_nothing() {
    let mut s = shell();
    s.echo("let x = 1; fn keep() { 1 }");
    s.error("x = 2; let y = 3; fn lost() { 2 } throw \"stop\"");
    assert_eq!(s.echo("x"), "1");
    assert!(s.error("y").contains("Variable not found"));
    assert!(s.error("lost()").contains("Function not found"));
    assert_eq!(s.echo("keep()"), "1");
}

#[test]
fn interrupt_cancels_an_await_quickly_and_keeps_the_scope() {
    let mut s = shell();
    s.echo("let kept = 5;");
    let cancel = s.session.cancel().clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        cancel.trip();
    });
    let start = Instant::now();
    let err = s.session.eval_line("kept = 6; sleep(30)").unwrap_err();
    assert!(err.interrupted);
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(s.echo("kept"), "5");
    // try/catch cannot swallow an interrupt.
    let cancel = s.session.cancel().clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        cancel.trip();
    });
    let err = s
        .session
        .eval_line("try { sleep(30) } catch (e) { 1 }")
        .unwrap_err();
    assert!(err.interrupted);
}

#[test]
fn limits_change_from_the_next_input_and_name_themselves() {
    let mut s = shell();
    assert_eq!(s.echo("limits().memory"), (1_i64 << 30).to_string());
    assert_eq!(s.echo("limits().string"), (256_i64 << 20).to_string());
    assert_eq!(s.echo("limits().nesting"), "256");
    s.echo("limits(#{string: 1000, map: 10});");
    let e = s.error(r#"let t = "x"; loop { t += t; }"#);
    assert!(
        e.contains("limit of 1000 bytes") && e.contains("limits(#{string: N})"),
        "{e}"
    );
    // Bytes obey the string limit too (Rhai does not measure them).
    let e = s.error(r#"let b = b"x"; loop { b += b; }"#);
    assert!(
        e.starts_with("bytes grew past the string limit of 1000"),
        "{e}"
    );
    // A map is measured at each indexed assignment, a value on its own: nested maps have
    // their own entries.
    let e = s.error("let m = #{}; for i in 0..20 { m[`${i}`] = i; }");
    assert!(e.contains("limit of 10 entries"), "{e}");
    assert_eq!(
        s.echo("let m = #{}; for i in 0..10 { m[`${i}`] = #{a: 1, b: 2}; } m.len()"),
        "10"
    );
    assert!(s.error("limits(#{strnig: 5})").contains("unknown limit"));
    assert!(
        s.error(r#"limits(#{string: "big"})"#)
            .contains("must be an integer")
    );
    // An array's limit counts its own items; a blob's, its bytes.
    s.echo("limits(#{array: 3});");
    assert_eq!(
        s.echo("let a = [[1, 2], [3, 4]]; a.push([5, 6]); a.len()"),
        "3"
    );
    let e = s.error("a.push([])");
    assert!(
        e.contains("limit of 3 items") && e.contains("limits(#{array: N})"),
        "{e}"
    );
    assert!(s.error("blob(4)").contains("limit of 3 items"));
    // 0 is no limit.
    s.echo("limits(#{string: 0, map: 0, array: 0});");
    assert_eq!(
        s.echo(r#"let t = "x"; for i in 0..12 { t += t; } t.len()"#),
        "4096"
    );
    assert_eq!(
        s.echo("let m = #{}; for i in 0..20 { m[`${i}`] = i; } m.len()"),
        "20"
    );
    assert_eq!(s.echo("a.push([]); a.len()"), "4");
}

#[test]
fn pad_and_blob_behave_as_rhai_s_and_check_the_limits_first() {
    let mut s = shell();
    assert_eq!(s.echo(r#"let t = "ab"; t.pad(5, "xy"); t"#), "\"abxyx\"");
    assert_eq!(s.echo(r#"let t = "é"; t.pad(3, '€'); t"#), "\"é€€\"");
    assert_eq!(s.echo(r#"let t = "abc"; t.pad(2, '.'); t"#), "\"abc\"");
    assert_eq!(s.echo("let a = [1]; a.pad(3, 0); a"), "[1, 0, 0]");
    assert_eq!(
        s.echo("let b = blob(2, 0x1ff); b.pad(4, 7); b"),
        "[ffff0707]"
    );
    assert_eq!(s.echo("blob(-1).len()"), "0");
    let huge = [
        r#"let t = ""; t.pad(10000000000, "x");"#,
        "let a = []; a.pad(10000000000, 1);",
        "blob(10000000000)",
        "let b = blob(0); b.pad(10000000000, 0);",
    ];
    // The size limits refuse first; without them, the memory limit does.
    for code in huge {
        let e = s.error(code);
        assert!(e.contains("grew past the limit of"), "{code}: {e}");
    }
    s.echo("limits(#{string: 0, array: 0});");
    for code in huge {
        assert!(s.error(code).contains("memory limit"), "{code}");
    }
}

#[test]
fn help_covers_every_registered_function() {
    let s = shell();
    let engine = &s.session.engine().engine;
    let help = &s.session.engine().help;
    let internal = |n: &str| {
        n.starts_with("__")
            || n.starts_with("get$")
            || n.starts_with("set$")
            || n.starts_with("index$")
            || matches!(n, "to_string" | "to_debug" | "is_empty")
            || !n.chars().next().is_some_and(|c| c.is_alphabetic())
    };
    let mut missing = Vec::new();
    for sig in engine.gen_fn_signatures(false) {
        let name = sig.split('(').next().unwrap_or("").trim();
        let name = name.rsplit(' ').next().unwrap_or(name);
        if !internal(name) && help.get(name).is_none() {
            missing.push(sig);
        }
    }
    assert!(missing.is_empty(), "functions without help: {missing:?}");
    for (name, h) in &help.entries {
        assert!(!h.signatures.is_empty() && !h.summary.is_empty(), "{name}");
        assert!(!h.example.is_empty(), "{name} has no example");
    }
}

#[test]
fn every_help_example_runs() {
    let mut s = shell();
    let examples: Vec<(String, String)> = s
        .session
        .engine()
        .help
        .entries
        .iter()
        .map(|(n, h)| (n.clone(), h.example.to_string()))
        .collect();
    for (name, example) in examples {
        if let Err(e) = s.session.eval_line(&example) {
            panic!("example of {name} fails: {example}: {}", e.message);
        }
    }
}

#[test]
fn help_of_an_unknown_name_suggests() {
    let mut s = shell();
    assert!(s.error(r#"help("slee")"#).contains("did you mean sleep"));
    s.echo("help(create_task)");
    assert!(s.sink.take()[0].starts_with("create_task(|| ...)"));
}

#[test]
fn constants_are_visible_in_functions_and_a_variable_can_shadow_them() {
    let mut s = shell();
    assert_eq!(s.echo("fn args_len() { ARGS.len() } args_len()"), "0");
    assert_eq!(s.echo("let ARGS = 7; ARGS"), "7");
    // A function name read as a variable is a function pointer (for help(sleep)),
    // unless the script has its own variable of that name.
    assert_eq!(s.echo("type_of(sleep)"), "\"Fn\"");
    assert_eq!(s.echo("let sleep = 3; sleep"), "3");
    assert!(s.error("no_such_name").contains("Variable not found"));
}
