//! Benchmark: `load_nat` wall time and packets sent on every NAT lab variant, next to
//! P2PD 3.1.9's `load_nat()` on the same lab (benches/nat.sh builds this in release mode
//! and makes the P2PD venv). Needs root, `ip netns`, nft and conntrack.
//!
//! Usage: nat_bench [--runs N] [--python VENV_PYTHON] [VARIANT...]
//!
//! For each variant the lab comes up (tests/natlab/lab.sh, its own namespace prefix) with
//! this binary serving STUN on 203.0.113.1:3478 / 203.0.113.2:3479 in the internet
//! namespace; then ours and P2PD run alternately in two rounds of N/2 runs each (the
//! machines are noisy: interleaving keeps the comparison fair), each run in a fresh
//! process-internal state. Times are medians; packets are the client interface's
//! tx_packets over one call.

#[path = "common/lab.rs"]
mod common;
use common::{LabGuard, in_client, json_lines, lab, manifest, runtime, stat, tx_packets};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use p2pd::net::nat::{NatOptions, load_nat};
use p2pd::net::stun::StunServer;
use serde_json::{Value, json};

const PREFIX: &str = "p2pdb-";
const VARIANTS: [&str; 9] = [
    "none",
    "firewall",
    "full-cone",
    "restricted",
    "port-restricted",
    "symmetric-random",
    "symmetric-sequential",
    "addr-dependent",
    "masquerade",
];

/// Child: the lab's STUN server, for at most ten minutes.
fn serve() {
    runtime().block_on(async {
        let primary: SocketAddr = "203.0.113.1:3478"
            .parse()
            .unwrap_or_else(|_| unreachable!());
        let alternate: SocketAddr = "203.0.113.2:3479"
            .parse()
            .unwrap_or_else(|_| unreachable!());
        let _server = StunServer::start(primary, Some(alternate))
            .await
            .expect("bind the lab STUN server");
        println!("NATLAB_READY");
        tokio::time::sleep(Duration::from_secs(600)).await;
    });
}

/// Child: `runs` load_nat calls from the client namespace, one JSON line each.
fn probe(local: IpAddr, runs: usize) {
    let rt = runtime();
    let server: SocketAddr = "203.0.113.1:3478"
        .parse()
        .unwrap_or_else(|_| unreachable!());
    for _ in 0..runs {
        let before = tx_packets();
        let started = Instant::now();
        let report = rt.block_on(load_nat(local, &[server], NatOptions::default()));
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let packets = tx_packets().saturating_sub(before);
        let line = json!({"ms": ms, "type": report.nat_type().code(),
                          "delta": report.delta().to_p2pd_json(), "packets": packets});
        println!("{line}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// "type/delta-type" of the most common answer, "err" when there was none.
fn answer(runs: &[Value]) -> String {
    let mut seen: Vec<(String, usize)> = Vec::new();
    for r in runs {
        let a = if r["type"].is_null() {
            "err".to_string()
        } else {
            format!("{}/{}", r["type"], r["delta"]["type"])
        };
        match seen.iter_mut().find(|(s, _)| *s == a) {
            Some((_, n)) => *n += 1,
            None => seen.push((a, 1)),
        }
    }
    seen.sort_by_key(|s| std::cmp::Reverse(s.1));
    seen.first().map_or("-".into(), |(a, n)| {
        if *n == runs.len() {
            a.clone()
        } else {
            format!("{a} ({n}/{})", runs.len())
        }
    })
}

struct Row {
    variant: &'static str,
    ours: Vec<Value>,
    theirs: Vec<Value>,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match std::env::var("P2PD_BENCH_ROLE").as_deref() {
        Ok("server") => return serve(),
        Ok("probe") => {
            let local = args.get(1).and_then(|a| a.parse().ok());
            let runs = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(1);
            return match local {
                Some(ip) => probe(ip, runs),
                None => eprintln!("probe role needs LOCAL_IP RUNS"),
            };
        }
        _ => {}
    }
    let mut runs = 10usize;
    let mut python: Option<String> = None;
    let mut variants: Vec<&'static str> = Vec::new();
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--runs" => runs = it.next().and_then(|n| n.parse().ok()).unwrap_or(runs),
            "--python" => python = it.next().cloned(),
            v => match VARIANTS.iter().find(|k| **k == v) {
                Some(k) => variants.push(k),
                None => {
                    eprintln!("unknown argument or variant {v:?}; variants: {VARIANTS:?}");
                    std::process::exit(2);
                }
            },
        }
    }
    if variants.is_empty() {
        variants = VARIANTS.to_vec();
    }
    let exe = std::env::current_exe().expect("own path");
    let exe = exe.to_string_lossy().into_owned();
    let half = runs.div_ceil(2);
    let _guard = LabGuard(PREFIX);
    let mut rows = Vec::new();
    for variant in variants {
        let up = lab(
            PREFIX,
            &["up", variant, "--", "env", "P2PD_BENCH_ROLE=server", &exe],
        );
        if let Err(e) = up {
            eprintln!("lab.sh up {variant}: {e}");
            continue;
        }
        let env = std::fs::read_to_string(format!("/run/{PREFIX}lab/env")).unwrap_or_default();
        let client_ip = env
            .lines()
            .find_map(|l| l.strip_prefix("CLIENT_IP="))
            .unwrap_or("10.77.0.10")
            .to_string();
        let mut row = Row {
            variant,
            ours: Vec::new(),
            theirs: Vec::new(),
        };
        for _round in 0..2 {
            let mut ours = in_client(PREFIX, &exe);
            ours.env("P2PD_BENCH_ROLE", "probe")
                .args([client_ip.as_str(), &half.to_string()]);
            row.ours.extend(json_lines(&mut ours));
            if let Some(py) = &python {
                let script = manifest("benches/p2pd_nat.py");
                let mut theirs = in_client(PREFIX, py);
                theirs.arg(script).arg(half.to_string());
                row.theirs.extend(json_lines(&mut theirs));
            }
        }
        eprintln!(
            "{variant}: ours {} runs, P2PD {} runs",
            row.ours.len(),
            row.theirs.len()
        );
        rows.push(row);
    }
    print_table(&rows, python.is_some());
}

fn print_table(rows: &[Row], with_p2pd: bool) {
    let fmt = |v: Option<f64>, digits: usize| v.map_or("-".into(), |v| format!("{v:.digits$}"));
    println!(
        "\n{:<21} | {:>9} {:>9} {:>5} | {:>9} {:>9} {:>5} | {:>8} {:>8}",
        "variant", "ours", "ms", "pkts", "P2PD", "ms", "pkts", "ms ratio", "pkt ratio"
    );
    println!("{}", "-".repeat(100));
    for r in rows {
        let (oms, opk) = (stat(&r.ours, "ms"), stat(&r.ours, "packets"));
        let (tms, tpk) = (stat(&r.theirs, "ms"), stat(&r.theirs, "packets"));
        let ratio = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| a / b);
        let theirs = if with_p2pd {
            answer(&r.theirs)
        } else {
            "n/a".into()
        };
        println!(
            "{:<21} | {:>9} {:>9} {:>5} | {:>9} {:>9} {:>5} | {:>8} {:>8}",
            r.variant,
            answer(&r.ours),
            fmt(oms, 1),
            fmt(opk, 0),
            theirs,
            fmt(tms, 1),
            fmt(tpk, 0),
            fmt(ratio(oms, tms), 3),
            fmt(ratio(opk, tpk), 2),
        );
    }
    println!("(answer = NAT type/delta type, most common; ms and pkts are medians)");
    println!(
        "P2PD never answers 2 (firewall: it stops at 'mapped == local', inventory §9.11) and \
         calls an address-dependent mapping 4; on those rows its time is for another answer."
    );
    if !with_p2pd {
        println!("P2PD 3.1.9 was not available: only our numbers are shown.");
    }
}
