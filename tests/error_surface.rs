//! Every registered function, called with wrong types, empty values and huge ones (a 10 MB
//! string, 10 MB of bytes, a 1 MB blob), must fail the same way: a catchable map with `kind` and
//! `message` (or one of Rhai's own engine errors), a message of bounded length that echoes
//! no value in full and renders no Rust type, and never a panic.
//!
//! The list of functions comes from the engine (`gen_fn_signatures`), so a function added
//! later is walked too; a parameter type this file has no sample for fails the test,
//! naming the type to add. Everything stays on loopback: the session's STUN servers are a
//! built-in server on 127.0.0.1, the port mapping comes from the scripted gateway of
//! `common::pmp_gateway` on 127.66.x.y, and no sample is a host name, so nothing is
//! looked up.

mod common;

use p2pd::net::config::StunConfig;
use p2pd::script::{MemorySink, SessionOptions};
use rhai::Dynamic;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A call still waiting after this long is interrupted (as Ctrl-C would): waits are not
/// what this test is about.
const CALL_LIMIT: Duration = Duration::from_millis(100);
/// Longest message allowed: a sentence, one echoed value (80 characters) and a hint.
const MAX_MESSAGE: usize = 600;

const SETUP: &str = r#"
    let HUGE = ""; HUGE.pad(10485760, "x");
    let SRV = stun_server("127.0.0.1:0", "127.0.0.2:0");
    stun_servers([SRV.primary]);
    let LO = Interface("lo");
    let STARTED = Interface("lo").start(1);
    let ROUTE = STARTED.route(IP4);
    let RANGE = ROUTE.nic_ips[0];
    let PIPE = pipe_open(UDP, (), "127.0.0.1");
    let ADDR = Address("127.0.0.1", 9);
    let NET = init_p2pd();
    let TASK = create_task(|| 1);
    let TIMER = call_later(1000, || 1);
    let NAT = STARTED.load_nat(#{timeout: 0.5});
    let NETCHECK = netcheck("lo");
"#;

/// Values every argument position is tried with (Rhai expressions over `SETUP`).
const BAD_VALUES: &[&str] = &[
    "()",
    "0",
    "-1",
    "70000",
    "9223372036854775807",
    "1e308",
    "-0.5",
    "true",
    "\"\"",
    "HUGE",
    "\"127.0.0.1:70000\"",
    "\"a\\tb\"",
    "[]",
    "[HUGE, 70000]",
    "[1, \"x\", ()]",
    "#{}",
    "#{name: HUGE, rp: HUGE}",
    "b\"\"",
    "bytes(HUGE)",
    "blob(1000000, 120)",
    "|| ()",
    "|a, b, c| ()",
    "LO",
    "PIPE",
    "ROUTE",
    "ADDR",
];

/// A plausible value of a parameter type, so that one bad argument at a time is tried.
fn sample(ty: &str) -> Option<&'static str> {
    let ty = ty.trim().trim_start_matches("&mut ").trim();
    Some(match ty {
        "Pipe" => "PIPE",
        "Interface" => "STARTED",
        "Route" => "ROUTE",
        "Address" => "ADDR",
        "StunServer" => "SRV",
        "Task" => "TASK",
        "Timer" => "TIMER",
        "NatReport" => "NAT",
        "NetcheckReport" => "NETCHECK",
        "Mapping" => "MAPPING",
        "netifaces" => "NET",
        "InterfaceClass" => "Interface",
        "IPRange" => "RANGE",
        "bytes" => "b\"ab\"",
        "string" | "&str" | "ImmutableString" => "\"127.0.0.1\"",
        "i64" | "INT" => "1",
        "f64" | "FLOAT" => "0.5",
        "bool" => "true",
        "char" => "'a'",
        "array" | "Array" => "[]",
        "map" | "Map" => "#{}",
        "blob" | "Blob" => "\"ab\".to_blob()",
        "Fn" | "FnPtr" => "|| ()",
        "range" | "Range<i64>" => "0..1",
        "range=" | "RangeInclusive<i64>" => "0..=1",
        t if t.ends_with("Dynamic") => "()",
        _ => return None,
    })
}

/// `name(_: T, _: U) -> R` as (name, parameter types).
fn parse_signature(sig: &str) -> (String, Vec<String>) {
    let open = sig.find('(').unwrap_or(sig.len());
    let name = sig[..open].to_string();
    let mut depth = 0;
    let mut params = Vec::new();
    let mut current = String::new();
    for c in sig[open..].chars().skip(1) {
        match c {
            '(' | '<' => depth += 1,
            ')' if depth == 0 => break,
            ')' | '>' => depth -= 1,
            ',' if depth == 0 => {
                params.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    if !current.trim().is_empty() {
        params.push(current);
    }
    let types = params
        .iter()
        .map(|p| {
            p.split_once(':')
                .map_or(p.as_str(), |(_, t)| t)
                .trim()
                .to_string()
        })
        .collect();
    (name, types)
}

/// The source of one call of `name` with these argument expressions.
fn call(name: &str, args: &[String]) -> String {
    let arg = |i: usize| format!("({})", args.get(i).map_or("()", String::as_str));
    if let Some(prop) = name.strip_prefix("get$") {
        return format!("{}.{prop}", arg(0));
    }
    if name == "index$get$" {
        return format!("{}[{}]", arg(0), arg(1));
    }
    if name == "__await" {
        return format!("await {}", arg(0));
    }
    if !name.starts_with(|c: char| c.is_alphabetic() || c == '_') {
        return format!("{} {name} {}", arg(0), arg(1));
    }
    format!("{name}({})", args.join(", "))
}

/// What is wrong with an error message, if anything.
fn bad_message(message: &str) -> Option<String> {
    if message.chars().count() > MAX_MESSAGE {
        return Some(format!("{} characters long", message.chars().count()));
    }
    if message.contains(&"x".repeat(100)) {
        return Some("echoes a huge value".into());
    }
    const DEBUG_TEXT: &[&str] = &[
        "Dynamic",
        "Reference(",
        "Some(",
        "None)",
        "p2pd::",
        "alloc::",
        "core::",
        "std::",
        "rhai::",
        "smartstring",
        "Box<",
        "ImmutableString",
        "&str",
        "{ code:",
        "kind: ",
        "Error {",
    ];
    DEBUG_TEXT
        .iter()
        .find(|d| message.contains(*d))
        .map(|d| format!("has Rust debug text {d:?}"))
}

/// What is wrong with a caught error value, if anything.
fn bad_caught(value: &Dynamic) -> Option<String> {
    let Some(map) = value.read_lock::<rhai::Map>() else {
        return Some(format!("threw a {} instead of a map", value.type_name()));
    };
    let Some(message) = map.get("message").and_then(|m| {
        m.read_lock::<rhai::ImmutableString>()
            .map(|s| s.to_string())
    }) else {
        return Some("no string \"message\"".into());
    };
    // Rhai's own errors (a missing function, bad types) come as maps with Rhai's fields;
    // ours carry a kind.
    let ours = map.contains_key("kind");
    if ours && map.get("kind").is_none_or(|k| !k.is_string()) {
        return Some("\"kind\" is not a string".into());
    }
    if !ours && !map.contains_key("error") {
        return Some(format!(
            "neither a \"kind\" nor Rhai's \"error\": {message}"
        ));
    }
    if ours {
        bad_message(&message)
    } else {
        // A caught Rhai error keeps Rhai's text; the shell prints it as message_of does.
        bad_message(&p2pd::script::error::rhai_type_names(&message))
    }
}

#[test]
fn every_function_fails_cleanly_on_bad_arguments() {
    let stun = StunConfig::resolve(&["127.0.0.1:9".to_string()], None, None).unwrap();
    let opts = SessionOptions {
        stun,
        ..SessionOptions::default()
    };
    let mut shell = common::Shell::new(Arc::new(MemorySink::default()), 2, opts);
    shell.run(SETUP);
    let gateway = common::pmp_gateway::PmpGateway::start(Default::default());
    shell.run(&format!(
        r#"let MAPPING = map_port("{}", UDP, 4000, 0, 60);"#,
        gateway.ip
    ));

    // Interrupts any call that waits longer than CALL_LIMIT.
    let started: Arc<Mutex<Option<Instant>>> = Arc::default();
    let cancel = shell.session.cancel().clone();
    let watching = started.clone();
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(Duration::from_millis(10));
            let since = *watching.lock().unwrap();
            if since.is_some_and(|t| t.elapsed() > CALL_LIMIT) {
                cancel.trip();
            }
        }
    });

    let signatures = shell.session.engine().engine.gen_fn_signatures(false);
    let mut failures = Vec::new();
    let mut calls = 0;
    let mut slowest = Vec::new();
    let walk_started = Instant::now();
    for sig in &signatures {
        let (name, types) = parse_signature(sig);
        let samples: Vec<String> = match types.iter().map(|t| sample(t)).collect::<Option<Vec<_>>>()
        {
            Some(s) => s.into_iter().map(String::from).collect(),
            None => {
                failures.push(format!(
                    "{sig}: no sample value for one of its types; add it to `sample`"
                ));
                continue;
            }
        };
        // The receiver of a method stays what it is; every other position gets each bad value.
        let first_varied = usize::from(types.first().is_some_and(|t| t.starts_with("&mut")));
        let mut arg_sets = vec![samples.clone()];
        for i in first_varied..samples.len() {
            for bad in BAD_VALUES {
                let mut args = samples.clone();
                args[i] = bad.to_string();
                arg_sets.push(args);
            }
        }
        for args in arg_sets {
            let expr = call(&name, &args);
            let src = format!("let r = \"ok\"; try {{ {expr}; }} catch (e) {{ r = e; }} r");
            let call_started = Instant::now();
            *started.lock().unwrap() = Some(call_started);
            let outcome =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| shell.session.eval(&src)));
            *started.lock().unwrap() = None;
            calls += 1;
            slowest.push((call_started.elapsed(), expr.clone()));
            let problem = match outcome {
                Err(_) => Some("panicked".to_string()),
                Ok(Ok(caught)) if caught.clone().into_string().is_ok_and(|s| s == "ok") => None,
                Ok(Ok(caught)) => bad_caught(&caught),
                Ok(Err(e)) if e.interrupted => None,
                Ok(Err(e)) => bad_message(&e.message),
            };
            for line in shell.sink.take() {
                if let Some(err) = line.strip_prefix("callback error: ")
                    && let Some(p) = bad_message(err)
                {
                    failures.push(format!("{expr}: callback error {p}: {}", cut(err)));
                }
            }
            if let Some(p) = problem {
                failures.push(format!("{expr}: {p}"));
            }
        }
    }
    slowest.sort();
    for (t, e) in slowest.iter().rev().take(40) {
        eprintln!("{:>6.1} ms {}", t.as_secs_f64() * 1e3, cut(e));
    }
    eprintln!(
        "{calls} calls of {} signatures in {:.1} s",
        signatures.len(),
        walk_started.elapsed().as_secs_f64()
    );
    assert!(
        signatures.len() > 150,
        "only {} functions registered?",
        signatures.len()
    );
    drop(gateway);
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures
            .iter()
            .take(40)
            .map(|f| cut(f))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

fn cut(text: &str) -> String {
    text.chars().take(300).collect()
}

#[test]
fn the_walk_notices_what_it_checks() {
    assert!(bad_message(&"x".repeat(200)).is_some());
    assert!(bad_message("DynamicReadLock(Reference(\"a\")) is not \"host:port\"").is_some());
    assert!(bad_message(&"y".repeat(MAX_MESSAGE + 1)).is_some());
    assert!(bad_message("dest \"127.0.0.1:70000\": port 70000 is not in 0..=65535").is_none());
    assert!(bad_caught(&Dynamic::from("a plain string")).is_some());
    let mut no_kind = rhai::Map::new();
    no_kind.insert("message".into(), "m".into());
    assert!(bad_caught(&Dynamic::from_map(no_kind)).is_some());
    let (name, types) =
        parse_signature("bind(_: &mut Route, _: i64, _: string) -> Result<Route, Box<E>>");
    assert_eq!((name.as_str(), types.len()), ("bind", 3));
    assert_eq!(types[0], "&mut Route");
}
