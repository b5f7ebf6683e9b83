//! Shell benchmark: cold start to the first evaluated line, peak RSS, and the cost of
//! an awaitable call through the async bridge. Prints figures; asserts nothing.
//!
//! Run with `cargo bench --bench shell`.

use p2pd::script::{Cancel, MemorySink, Session, SessionOptions};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_p2pd-repl");

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Runs the binary once; returns wall time and peak RSS in KiB (from wait4's rusage).
fn run_once(args: &[&str]) -> (Duration, i64) {
    let start = Instant::now();
    // Reaped below with wait4, which also reports the peak RSS.
    #[allow(clippy::zombie_processes)]
    let child = Command::new(BIN)
        .args(args)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn p2pd-repl");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain data that wait4 fills in; pid is our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = start.elapsed();
    assert_eq!(rc, pid, "wait4 failed");
    (wall, usage.ru_maxrss)
}

fn calls_per_second(session: &mut Session, src: &str, calls: u64) -> f64 {
    let _ = session.eval(src).expect("warm-up");
    let start = Instant::now();
    let _ = session.eval(src).expect("bench loop");
    calls as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let runs = 30;
    let mut walls = Vec::new();
    let mut rss = Vec::new();
    for _ in 0..runs {
        let (w, r) = run_once(&["-e", "print(1)"]);
        walls.push(w);
        rss.push(r);
    }
    rss.sort();
    println!(
        "shell benchmark ({} build)",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    println!(
        "  cold start to first evaluated line (-e 'print(1)'): median {:.1} ms over {runs} runs",
        median(walls).as_secs_f64() * 1e3
    );
    println!(
        "  peak RSS: median {:.1} MiB",
        rss[rss.len() / 2] as f64 / 1024.0
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let mut session = Session::new(
        rt.handle().clone(),
        Cancel::new(),
        Arc::new(MemorySink::default()),
        SessionOptions::default(),
    );
    let n = 100_000;
    let plain = calls_per_second(
        &mut session,
        &format!("for i in 0..{n} {{ type_of(i) }}"),
        n,
    );
    let awaited = calls_per_second(
        &mut session,
        &format!("for i in 0..{n} {{ yield_now() }}"),
        n,
    );
    println!("  plain native call (type_of): {:.0} calls/s", plain);
    println!(
        "  awaitable no-op (yield_now through the bridge): {:.0} calls/s, {:.2} us per call",
        awaited,
        1e6 / awaited
    );
}
