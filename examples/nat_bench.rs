//! Benchmark: `load_nat` rightness, wall time and packets sent on every NAT lab variant,
//! next to P2PD 3.1.9's `load_nat()` on the same lab (benches/nat.sh builds this in
//! release mode and makes the P2PD venv). Needs root, `ip netns`, nft and conntrack.
//!
//! Usage: nat_bench [--runs N] [--python VENV_PYTHON] [--rtt MS] [--loss PCT] [--internet]
//!                  [VARIANT...]
//! (`P2PD_BENCH_DUMP=1` also prints the whole JSON report of every wrong run)
//!
//! For each variant the lab comes up (tests/natlab/lab.sh, its own namespace prefix) with
//! this binary serving STUN on 203.0.113.1:3478 / 203.0.113.2:3479 in the internet
//! namespace, the WAN link delayed and lossy as asked; with `--internet` ours probes the
//! lab's whole small internet by name instead (plain, RFC 5780, RFC 3489, dead, lying and
//! slow servers: the default-list code path). Ours and P2PD run alternately in two rounds
//! of N/2 runs each (the machines are noisy: interleaving keeps the comparison fair).
//! "right" counts runs where every field is what the variant is built to be (for P2PD,
//! which has no RFC 4787 fields, its type and delta); times are medians and maxima;
//! packets are the client interface's tx_packets over one call. The port-mapping probe
//! is off: this measures the NAT answer.

#[path = "common/lab.rs"]
mod common;
#[allow(dead_code)]
#[path = "../tests/common/expected.rs"]
mod expected;
use common::{LabGuard, in_client, json_lines, lab, manifest, runtime, stat, tx_packets};
use expected::expect;
use std::net::{IpAddr, SocketAddr};
use std::process::Command;
use std::time::{Duration, Instant};

use p2pd::net::config::parse_list;
use p2pd::net::ip_range::Family;
use p2pd::net::nat::{NatOptions, load_nat, load_nat_named, resolve_named};
use p2pd::net::stun::StunServer;
use serde_json::{Value, json};

const PREFIX: &str = "p2pdb-";

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

/// Child: `runs` load_nat calls from the client namespace, one JSON line each: the
/// report's JSON plus wall time and packets. With `list` (a server list file), the
/// servers are resolved by name as the shell does; else the lab's RFC 5780 server.
fn probe(local: IpAddr, runs: usize, list: Option<&str>) {
    let rt = runtime();
    let server: SocketAddr = "203.0.113.1:3478"
        .parse()
        .unwrap_or_else(|_| unreachable!());
    let servers = list.map(|path| {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        parse_list(&text, path).unwrap_or_default()
    });
    for _ in 0..runs {
        let before = tx_packets();
        let started = Instant::now();
        let report = rt.block_on(async {
            match &servers {
                Some(list) => {
                    let named =
                        resolve_named(list.clone(), Family::of(&local), Duration::from_secs(2))
                            .await;
                    load_nat_named(local, named, NatOptions::default()).await
                }
                None => load_nat(local, &[server], NatOptions::default()).await,
            }
        });
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let packets = tx_packets().saturating_sub(before);
        let mut line = report.to_json();
        line["ms"] = json!(ms);
        line["type"] = json!(report.nat_type().code());
        line["delta"] = report.delta().to_p2pd_json();
        line["packets"] = json!(packets);
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
    client_ip: String,
    public_ip: String,
    ours: Vec<Value>,
    theirs: Vec<Value>,
}

impl Row {
    /// Our runs with every field right.
    fn ours_right(&self) -> usize {
        let e = expect(self.variant);
        self.ours
            .iter()
            .filter(|v| e.mismatches(v, &self.client_ip, &self.public_ip).is_empty())
            .count()
    }

    /// P2PD's runs with the type and delta the variant is built to have.
    fn theirs_right(&self) -> usize {
        let e = expect(self.variant);
        self.theirs
            .iter()
            .filter(|v| v["type"] == e.nat && v["delta"] == e.delta.to_p2pd_json())
            .count()
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match std::env::var("P2PD_BENCH_ROLE").as_deref() {
        Ok("server") => return serve(),
        Ok("probe") => {
            let local = args.get(1).and_then(|a| a.parse().ok());
            let runs = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(1);
            let list = args.get(3).map(String::as_str);
            return match local {
                Some(ip) => probe(ip, runs, list),
                None => eprintln!("probe role needs LOCAL_IP RUNS [LIST]"),
            };
        }
        _ => {}
    }
    let mut runs = 10usize;
    let mut python: Option<String> = None;
    let mut path: Vec<String> = Vec::new();
    let mut internet = false;
    let mut variants: Vec<&'static str> = Vec::new();
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--runs" => runs = it.next().and_then(|n| n.parse().ok()).unwrap_or(runs),
            "--python" => python = it.next().cloned(),
            "--rtt" | "--loss" => {
                path.push(a.clone());
                path.push(it.next().cloned().unwrap_or_default());
            }
            "--internet" => internet = true,
            v => match expected::variants("4").into_iter().find(|k| *k == v) {
                Some(k) => variants.push(k),
                None => {
                    eprintln!(
                        "unknown argument or variant {v:?}; variants: {:?}",
                        expected::variants("4")
                    );
                    std::process::exit(2);
                }
            },
        }
    }
    if variants.is_empty() {
        variants = expected::variants("4");
    }
    let exe = std::env::current_exe().expect("own path");
    let exe = exe.to_string_lossy().into_owned();
    let _guard = LabGuard(PREFIX);
    let mut rows = Vec::new();
    for variant in variants {
        let mut up_args = vec!["up", variant];
        up_args.extend(path.iter().map(String::as_str));
        if internet {
            up_args.push("--internet");
        }
        up_args.extend(["--", "env", "P2PD_BENCH_ROLE=server", &exe]);
        let up = lab(PREFIX, &up_args);
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
        let public_ip = env
            .lines()
            .find_map(|l| l.strip_prefix("PUBLIC_IP="))
            .unwrap_or("203.0.113.100")
            .to_string();
        let list = env
            .lines()
            .find_map(|l| l.strip_prefix("STUN_LIST="))
            .filter(|_| internet)
            .map(str::to_string);
        let mut row = Row {
            variant,
            client_ip: client_ip.clone(),
            public_ip,
            ours: Vec::new(),
            theirs: Vec::new(),
        };
        // One run per process, each on a NAT with no state left from the one before (see
        // `fresh_nat`), ours and P2PD's interleaved.
        for _run in 0..runs {
            fresh_nat();
            let clashes_before = insert_failed();
            let mut ours = in_client(PREFIX, &exe);
            ours.env("P2PD_BENCH_ROLE", "probe")
                .args([client_ip.as_str(), "1"]);
            if let Some(list) = &list {
                ours.arg(list);
            }
            let mut got = json_lines(&mut ours);
            let clashes = insert_failed().saturating_sub(clashes_before);
            for v in &mut got {
                v["nat_clashes"] = json!(clashes);
            }
            row.ours.extend(got);
            if let Some(py) = &python {
                fresh_nat();
                let script = manifest("benches/p2pd_nat.py");
                let mut theirs = in_client(PREFIX, py);
                theirs.arg(script).arg("1");
                row.theirs.extend(json_lines(&mut theirs));
            }
        }
        let clashed = row
            .ours
            .iter()
            .filter(|v| v["nat_clashes"].as_u64().unwrap_or(0) > 0)
            .count();
        eprintln!(
            "{variant}: ours {} runs ({clashed} with a lab NAT port clash), P2PD {} runs",
            row.ours.len(),
            row.theirs.len()
        );
        let e = expect(variant);
        for v in &row.ours {
            let bad = e.mismatches(v, &row.client_ip, &row.public_ip);
            if !bad.is_empty() {
                eprintln!("  wrong run: {}", bad.join("; "));
                if std::env::var_os("P2PD_BENCH_DUMP").is_some() {
                    eprintln!("  its report: {v}");
                }
            }
        }
        rows.push(row);
    }
    print_table(&rows, python.is_some());
}

/// Packets the lab router's conntrack has dropped (a counter since it started) because a new
/// mapping clashed with one it holds (`conntrack -S` insert_failed, summed over CPUs).
fn insert_failed() -> u64 {
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &format!("{PREFIX}router"),
            "conntrack",
            "-S",
        ])
        .output();
    let text = out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
    text.unwrap_or_default()
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("insert_failed="))
        .filter_map(|n| n.parse::<u64>().ok())
        .sum()
}

/// Forgets the lab NAT's state (conntrack and the EIF/ADF maps). The lab's "hash" port
/// choice gives a new socket the external port of an older one now and then; a real NAT
/// never hands out a port it still maps, but the lab's does while the old entry lives
/// (30 s), and the new socket's unsolicited replies then go to the old one. Dozens of runs
/// a minute fill those 30 s with hundreds of mappings, a few percent of new sockets
/// collide, and the bench would measure the lab. Each run starts on a fresh NAT instead.
fn fresh_nat() {
    if let Err(e) = lab(PREFIX, &["flush"]) {
        eprintln!("lab.sh flush: {e}");
    }
}

fn print_table(rows: &[Row], with_p2pd: bool) {
    let fmt = |v: Option<f64>, digits: usize| v.map_or("-".into(), |v| format!("{v:.digits$}"));
    let max = |runs: &[Value]| {
        runs.iter()
            .filter_map(|r| r["ms"].as_f64())
            .reduce(f64::max)
    };
    println!(
        "\n{:<21} | {:>9} {:>7} {:>8} {:>8} {:>5} | {:>9} {:>7} {:>8} {:>5} | {:>8}",
        "variant",
        "ours",
        "right",
        "ms",
        "max ms",
        "pkts",
        "P2PD",
        "right",
        "ms",
        "pkts",
        "ms ratio"
    );
    println!("{}", "-".repeat(112));
    for r in rows {
        let (oms, opk) = (stat(&r.ours, "ms"), stat(&r.ours, "packets"));
        let (tms, tpk) = (stat(&r.theirs, "ms"), stat(&r.theirs, "packets"));
        let ratio = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| a / b);
        let (theirs, theirs_right) = if with_p2pd {
            (
                answer(&r.theirs),
                format!("{}/{}", r.theirs_right(), r.theirs.len()),
            )
        } else {
            ("n/a".into(), "-".into())
        };
        println!(
            "{:<21} | {:>9} {:>7} {:>8} {:>8} {:>5} | {:>9} {:>7} {:>8} {:>5} | {:>8}",
            r.variant,
            answer(&r.ours),
            format!("{}/{}", r.ours_right(), r.ours.len()),
            fmt(oms, 1),
            fmt(max(&r.ours), 1),
            fmt(opk, 0),
            theirs,
            theirs_right,
            fmt(tms, 1),
            fmt(tpk, 0),
            fmt(ratio(oms, tms), 3),
        );
    }
    println!(
        "(answer = NAT type/delta type, most common; right = every field as built (P2PD: type \
         and delta); ms and pkts are medians)"
    );
    println!(
        "P2PD never answers 2 (a firewall: it stops at 'mapped == local') and calls an \
         address-dependent mapping 4; on those rows its time is for another answer."
    );
    if !with_p2pd {
        println!("P2PD 3.1.9 was not available: only our numbers are shown.");
    }
}
