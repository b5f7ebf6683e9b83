//! How much stack Rhai takes per level of a nested value, for each recursive operation
//! on it (drop, clone, print, serialise, hash, compare), as the basis of
//! `script::limits::MAX_NESTING`: the deepest value allowed must fit, for every one of
//! them, in the stack reserve a task keeps. A stack overflow aborts the process, so each
//! try runs in a child process (this program again) on a thread with a 2 MiB stack, and
//! the deepest value that survives is found by bisection. Prints bytes per level.
//!
//! Run with `cargo run --release --example nesting_stack` (and without `--release` for
//! a debug build's figures).

use rhai::{Dynamic, Engine, Map, Scope};
use std::hash::Hash;
use std::process::{Command, Stdio};

const STACK: usize = 2 << 20;
const OPS: [&str; 9] = [
    "drop",
    "clone",
    "print",
    "json",
    "hash",
    "compare",
    "drop_map",
    "clone_map",
    "print_map",
];

/// A value nested `depth` levels: arrays, or maps for an op ending in `_map`.
fn nested(depth: usize, maps: bool) -> Dynamic {
    let mut value = Dynamic::from_array(Vec::new());
    for _ in 0..depth {
        value = if maps {
            let mut m = Map::new();
            m.insert("k".into(), value);
            Dynamic::from_map(m)
        } else {
            Dynamic::from_array(vec![value])
        };
    }
    value
}

/// Runs `op` on a value `depth` deep (in this process: it aborts if the stack is short).
/// Values other than the one measured are leaked, so that only `op` recurses.
fn child(op: &str, depth: usize) {
    let value = nested(depth, op.ends_with("_map"));
    match op.trim_end_matches("_map") {
        "drop" => drop(value),
        "clone" => std::mem::forget((value.clone(), value)),
        "print" => std::mem::forget((value.to_string(), value)),
        "json" => std::mem::forget((serde_json::to_string(&value), value)),
        "hash" => {
            value.hash(&mut std::collections::hash_map::DefaultHasher::new());
            std::mem::forget(value);
        }
        "compare" => {
            let engine = Engine::new();
            let mut scope = Scope::new();
            scope.push("a", value);
            let _ = engine.eval_with_scope::<bool>(&mut scope, "a == a");
            std::mem::forget(scope);
        }
        other => panic!("unknown op {other}"),
    }
}

fn survives(op: &str, depth: usize) -> bool {
    let me = std::env::current_exe().expect("own path");
    Command::new(me)
        .args([op, &depth.to_string()])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [op, depth] = args.as_slice() {
        let (op, depth) = (op.clone(), depth.parse().expect("a depth"));
        let run = std::thread::Builder::new()
            .stack_size(STACK)
            .spawn(move || child(&op, depth))
            .expect("a thread");
        std::process::exit(if run.join().is_ok() { 0 } else { 1 });
    }
    println!(
        "bytes of stack per level of nesting ({} KiB thread)",
        STACK >> 10
    );
    for op in OPS {
        let (mut ok, mut bad) = (1, 1 << 20);
        while bad - ok > ok / 50 + 1 {
            let mid = ok + (bad - ok) / 2;
            if survives(op, mid) {
                ok = mid;
            } else {
                bad = mid;
            }
        }
        println!(
            "{op:10} {:6} B (overflows past about {ok} levels)",
            STACK / ok
        );
    }
}
