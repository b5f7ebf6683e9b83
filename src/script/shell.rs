//! The shell's own functions: `help`, `repr`, `sleep` and `tour` (the REPL's, refused in
//! scripts).

use super::args::seconds;
use super::bridge;
use super::bytes::Bytes;
use super::error::error;
use super::registry::{Help, HelpIndex, Registrar};
use super::sink::Sink;
use super::status;
use crate::text::quoted;
use rhai::{Array, Dynamic, EvalAltResult, FnPtr, Map, NativeCallContext};
use std::sync::{Arc, OnceLock};

const HELP: Help = Help::function(
    "shell",
    &["help()", "help(\"name\")", "help(name)"],
    "List every function by area, or show one function's signatures and an example.",
    r#"help("sleep")"#,
);
const REPR: Help = Help::function(
    "shell",
    &["repr(value)"],
    "The value as the REPL echoes it: strings quoted, bytes as b'...', objects in full.",
    r#"repr([1, "two", b"3"])"#,
);
const TOUR: Help = Help::function(
    "shell",
    &["tour()"],
    "At the REPL prompt, walk P2PD's Basics tutorial step by step (Enter runs a step, Enter again goes on; next(), back(), step(n), steps(), quit); offline by itself without internet.",
    r#"help("tour")"#,
);
const YIELD_NOW: Help = Help::function(
    "shell",
    &["yield_now()"],
    "Let every task and callback that can run go first, like `await asyncio.sleep(0)`; then the script goes on.",
    "yield_now()",
);
const SLEEP: Help = Help::function(
    "shell",
    &["sleep(secs)"],
    "Wait secs seconds (int or float); tasks and callbacks run meanwhile, Ctrl-C cancels it; sleep(0) is yield_now().",
    "sleep(0.5)",
);

/// Registers the shell functions. `help` reads the index once registration is over,
/// so it is filled in later through `index`.
pub fn register(reg: &mut Registrar, sink: Arc<dyn Sink>, index: Arc<OnceLock<Arc<HelpIndex>>>) {
    let show = {
        let (sink, index) = (sink.clone(), index.clone());
        move |name: &str| -> Result<(), Box<EvalAltResult>> {
            let Some(index) = index.get() else {
                return Ok(());
            };
            match index.describe(name) {
                Some(text) => {
                    sink.out(&text);
                    Ok(())
                }
                None => Err(error(
                    "not_found",
                    format!("no help for {}{}", quoted(name), suggest(index, name)),
                )),
            }
        }
    };
    let show_ptr = show.clone();
    reg.func("help", &HELP, move || {
        if let Some(index) = index.get() {
            sink.out(index.overview().trim_end());
        }
    })
    .func("help", &HELP, move |name: &str| show(name))
    .func("help", &HELP, move |f: FnPtr| show_ptr(f.fn_name()))
    .func("tour", &TOUR, || -> Result<(), Box<EvalAltResult>> {
        // The REPL answers `tour()` itself, before anything is evaluated.
        Err(super::error::error(
            "repl_only",
            "tour() runs at the REPL prompt: start it with p2pd-repl --tour",
        ))
    })
    .func("repr", &REPR, |ctx: NativeCallContext, v: Dynamic| {
        repr(&ctx, v)
    })
    // Rhai's own `sleep(INT)`/`sleep(FLOAT)` block the thread with no way to cancel;
    // typed overloads registered on the engine take precedence over them.
    .func("sleep", &SLEEP, |ctx: NativeCallContext, s: rhai::INT| {
        sleep(&ctx, Dynamic::from(s))
    })
    .func("sleep", &SLEEP, |ctx: NativeCallContext, s: rhai::FLOAT| {
        sleep(&ctx, Dynamic::from(s))
    })
    .func("sleep", &SLEEP, |ctx: NativeCallContext, s: Dynamic| {
        sleep(&ctx, s)
    })
    .func("yield_now", &YIELD_NOW, |ctx: NativeCallContext| {
        yield_now(&ctx)
    });
}

fn sleep(ctx: &NativeCallContext, secs: Dynamic) -> Result<(), Box<EvalAltResult>> {
    let d = seconds(&secs, "sleep duration")?;
    if d.is_zero() {
        // asyncio's `sleep(0)`: exactly one turn for everything runnable.
        return yield_now(ctx);
    }
    let label = move || {
        format!(
            "sleep: {}",
            status::seconds(d).unwrap_or_else(|| "a long time".into())
        )
    };
    status::wait(ctx, label, async move {
        tokio::time::sleep(d).await;
        Ok::<_, Box<EvalAltResult>>(())
    })
}

fn yield_now(ctx: &NativeCallContext) -> Result<(), Box<EvalAltResult>> {
    super::sched::yield_now(&*bridge::bridge_of(ctx)?)
        .map_err(|_| bridge::interrupted(ctx.call_position()))
}

fn suggest(index: &HelpIndex, name: &str) -> String {
    // No function name is this long: nothing to compare, and comparing would be slow.
    if name.len() > 64 {
        return "; help() lists every function".to_string();
    }
    let close: Vec<&str> = index
        .entries
        .keys()
        .filter(|k| k.contains(name) || name.contains(k.as_str()))
        .map(String::as_str)
        .take(5)
        .collect();
    if close.is_empty() {
        "; help() lists every function".to_string()
    } else {
        format!("; did you mean {}?", close.join(", "))
    }
}

/// Python-like representation; custom types use their own `to_debug`.
pub fn repr(ctx: &NativeCallContext, value: Dynamic) -> String {
    if value.is_unit() {
        return "()".into();
    }
    if let Some(s) = value.read_lock::<rhai::ImmutableString>() {
        return format!("{:?}", s.as_str());
    }
    if let Some(b) = value.read_lock::<Bytes>() {
        return b.repr();
    }
    if value.is_array() {
        let items: Array = value.cast::<Array>();
        let parts: Vec<String> = items.into_iter().map(|v| repr(ctx, v)).collect();
        return format!("[{}]", parts.join(", "));
    }
    if value.is_map() {
        let map: Map = value.cast::<Map>();
        let parts: Vec<String> = map
            .into_iter()
            .map(|(k, v)| format!("{:?}: {}", k.as_str(), repr(ctx, v)))
            .collect();
        return format!("#{{{}}}", parts.join(", "));
    }
    if value.is_int() || value.is_float() || value.is_bool() || value.is_char() {
        return value.to_string();
    }
    ctx.call_fn::<String>("to_debug", (value.clone(),))
        .unwrap_or_else(|_| value.to_string())
}
