//! Benchmark: `Interface(name).start()` (the OS snapshot read plus `start_stun`) against a
//! local built-in STUN server, and with no server reachable, next to P2PD 3.1.9's
//! `Interface(name).start()` in the NAT lab. benches/interface.sh builds this in release
//! mode (with the `p2pd-repl` binary, the lab's STUN server) and finds the P2PD venv.
//!
//! Usage: interface_bench [--runs N] [--timeout-runs M] [--python VENV_PYTHON]
//!                        [--repl P2PD_REPL] [--no-lab]
//!
//! Cases:
//! - loopback: `Interface("lo")` with two IPv4 (127.0.0.1, 127.0.0.2) and two IPv6 ([::1])
//!   servers. They are `stun::respond` behind counting sockets in this process, so the
//!   packets column is the datagrams the servers received; with `answer` off the same
//!   sockets are the silent servers (they read and count, never reply).
//! - lab (root, `ip netns`, nft): `tests/natlab/lab.sh up masquerade` with `p2pd-repl
//!   stun-server 203.0.113.1:3478 203.0.113.2:3479` in the internet namespace, the default
//!   interface of the client namespace; packets are its eth0 tx_packets over one call. The
//!   unreachable variant points at 203.0.113.77:3478/3479, on the lab's "internet" link
//!   where nobody owns the address. Ours and P2PD alternate in two rounds (the machine is
//!   noisy: interleaving keeps the comparison fair).
//!
//! Times are medians of wall time per call, each run starting a fresh `Interface`.

#[path = "common/lab.rs"]
mod common;
use common::{LabGuard, in_client, json_lines, lab, manifest, runtime, stat, tx_packets};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use p2pd::net::config::StunConfig;
use p2pd::net::interface::Interface;
use p2pd::net::ip_range::Family;
use p2pd::net::stun::{ServerConfig, Transport, respond};
use serde_json::{Value, json};
use tokio::net::UdpSocket;

const PREFIX: &str = "p2pdi-";
const LAB_SERVERS: &str = "203.0.113.1:3478,203.0.113.2:3479";
/// On the lab's internet link, owned by nobody: requests die at the router (no ARP reply).
const LAB_SILENT: &str = "203.0.113.77:3478,203.0.113.77:3479";

/// P2PD 3.1.9's `Interface("eth0").start(timeout=T)`, one JSON line per run. Imports
/// benches/p2pd_nat.py for its lab patches (is_private, no init_p2pd self-test) and
/// `tx_packets`; the map servers are replaced by argv's list.
const P2PD_START: &str = r#"
import asyncio, json, sys, time
sys.path.insert(0, sys.argv[1])
import p2pd_nat as lab
import netifaces
import p2pd.settings as S
from p2pd.interface import Interface

def servers(spec):
    pairs = (e.rsplit(":", 1) for e in spec.split(","))
    S.STUN_MAP_SERVERS[S.UDP][S.IP4][:] = [
        {"mode": 2, "host": None, "primary": {"ip": h, "port": int(p)},
         "secondary": {"ip": None, "port": None}} for h, p in pairs]
    S.STUN_MAP_SERVERS[S.UDP][S.IP6][:] = []

async def main(spec, runs, timeout):
    servers(spec)
    Interface.get_netifaces = staticmethod(lambda: netifaces)
    for _ in range(runs):
        before = lab.tx_packets("eth0")
        started = time.perf_counter()
        out = {"ok": True, "ext": None}
        try:
            i = await Interface("eth0").start(timeout=timeout)
            out["ext"] = str(i.route(S.IP4).ext())
        except Exception as e:  # offline P2PD ends in a bare AssertionError
            out["ok"], out["ext"] = False, repr(e)
        out["ms"] = (time.perf_counter() - started) * 1000
        out["packets"] = lab.tx_packets("eth0") - before
        print(json.dumps(out), flush=True)
        await asyncio.sleep(0.2)

asyncio.run(main(sys.argv[2], int(sys.argv[3]), float(sys.argv[4])))
"#;

fn config(servers: &[String]) -> StunConfig {
    StunConfig::resolve(servers, None, None).expect("benchmark STUN server list")
}

fn split(list: &str) -> Vec<String> {
    list.split(',').map(str::to_string).collect()
}

/// `runs` fresh `Interface(name).start(timeout)` calls; `packets` is read before each call
/// and 100 ms after it (so in-flight datagrams are counted), the difference is the row's.
fn measure(
    rt: &tokio::runtime::Runtime,
    name: Option<&str>,
    config: &StunConfig,
    timeout: Duration,
    runs: usize,
    packets: &dyn Fn() -> u64,
) -> Vec<Value> {
    let mut out = Vec::new();
    for _ in 0..runs {
        let before = packets();
        let started = Instant::now();
        let result = rt.block_on(async {
            let mut iface = Interface::by_name(name)?;
            iface.start_stun(config, timeout).await.map(|()| iface)
        });
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        std::thread::sleep(Duration::from_millis(100));
        let (ok, ext) = match &result {
            Ok(i) => {
                let ext = i.route(Some(Family::V4)).ok().and_then(|r| r.ext());
                (true, ext.map_or("none".into(), |e| e.to_string()))
            }
            Err(e) => (false, e.to_string()),
        };
        let sent = packets().saturating_sub(before);
        out.push(json!({"ms": ms, "ok": ok, "ext": ext, "packets": sent}));
        std::thread::sleep(Duration::from_millis(100));
    }
    out
}

/// UDP sockets answering STUN Binding requests as the built-in server does (or, with
/// `answer` off, not at all), counting every datagram received. They run on their own
/// thread and runtime so they do not compete with the measured calls' runtime.
fn counting_servers(binds: &[SocketAddr], answer: bool) -> (Vec<String>, Arc<AtomicU64>) {
    let count = Arc::new(AtomicU64::new(0));
    let (tx, rx) = std::sync::mpsc::channel();
    let (binds, counter) = (binds.to_vec(), Arc::clone(&count));
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("server runtime");
        rt.block_on(async move {
            let mut tasks = tokio::task::JoinSet::new();
            let mut addrs = Vec::new();
            for bind in binds {
                let socket = UdpSocket::bind(bind).await.expect("bind a loopback server");
                let local = socket.local_addr().expect("server address");
                addrs.push(local.to_string());
                let counter = Arc::clone(&counter);
                tasks.spawn(async move {
                    let config = ServerConfig::new(local, None);
                    let mut buf = vec![0u8; 2048];
                    while let Ok((n, from)) = socket.recv_from(&mut buf).await {
                        counter.fetch_add(1, Ordering::Relaxed);
                        let request = buf.get(..n).unwrap_or(&[]);
                        if answer
                            && let Some(reply) =
                                respond(request, from, local, &config, Transport::Udp)
                        {
                            let _ = socket.send_to(&reply.bytes, reply.to).await;
                        }
                    }
                });
            }
            let _ = tx.send(addrs);
            // Serves until the process exits.
            tasks.join_all().await;
        });
    });
    let addrs = rx.recv().expect("loopback servers started");
    (addrs, count)
}

struct Row {
    case: String,
    ours: Vec<Value>,
    theirs: Option<Vec<Value>>,
}

fn loopback(runs: usize, timeout_runs: usize, rows: &mut Vec<Row>) {
    let binds: Vec<SocketAddr> = ["127.0.0.1:0", "127.0.0.2:0", "[::1]:0", "[::1]:0"]
        .iter()
        .map(|a| a.parse().unwrap_or_else(|_| unreachable!()))
        .collect();
    let rt = runtime();
    let (addrs, count) = counting_servers(&binds, true);
    let answering = config(&addrs);
    let packets = || count.load(Ordering::Relaxed);
    let ours = measure(
        &rt,
        Some("lo"),
        &answering,
        answering.start_timeout,
        runs,
        &packets,
    );
    rows.push(Row {
        case: "lo, 2+2 servers answer".into(),
        ours,
        theirs: None,
    });
    let (addrs, count) = counting_servers(&binds, false);
    let silent = config(&addrs);
    let packets = || count.load(Ordering::Relaxed);
    for timeout in [silent.start_timeout, Duration::from_millis(500)] {
        let ours = measure(&rt, Some("lo"), &silent, timeout, timeout_runs, &packets);
        rows.push(Row {
            case: format!("lo, silent, timeout {:.1} s", timeout.as_secs_f64()),
            ours,
            theirs: None,
        });
    }
}

/// Child in the lab's client namespace: prints `measure`'s lines for the default interface.
fn probe(servers: &str, runs: usize, timeout: Duration) {
    let rt = runtime();
    let config = config(&split(servers));
    for line in measure(&rt, None, &config, timeout, runs, &tx_packets) {
        println!("{line}");
    }
}

fn in_lab(repl: &str, python: Option<&str>, runs: usize, timeout_runs: usize) -> Vec<Row> {
    let up = lab(
        PREFIX,
        &[
            "up",
            "masquerade",
            "--",
            repl,
            "stun-server",
            "203.0.113.1:3478",
            "203.0.113.2:3479",
        ],
    );
    let _guard = LabGuard(PREFIX);
    if let Err(e) = up {
        eprintln!("lab.sh up masquerade: {e}; skipping the lab cases");
        return Vec::new();
    }
    let exe = std::env::current_exe().expect("own path");
    let exe = exe.to_string_lossy().into_owned();
    let benches = manifest("benches").to_string_lossy().into_owned();
    let cases = [
        ("lab, 2 servers answer", LAB_SERVERS, 2.0, runs),
        (
            "lab, unroutable, timeout 2.0 s",
            LAB_SILENT,
            2.0,
            timeout_runs,
        ),
        (
            "lab, unroutable, timeout 0.5 s",
            LAB_SILENT,
            0.5,
            timeout_runs,
        ),
    ];
    let mut rows = Vec::new();
    for (case, servers, secs, n) in cases {
        let half = n.div_ceil(2).to_string();
        let ms = ((secs * 1000.0) as u64).to_string();
        let mut row = Row {
            case: case.into(),
            ours: Vec::new(),
            theirs: python.map(|_| Vec::new()),
        };
        for _round in 0..2 {
            let mut ours = in_client(PREFIX, &exe);
            ours.env("P2PD_BENCH_ROLE", "probe")
                .args([servers, &half, &ms]);
            row.ours.extend(json_lines(&mut ours));
            if let (Some(py), Some(theirs)) = (python, row.theirs.as_mut()) {
                let mut cmd = in_client(PREFIX, py);
                cmd.args([
                    "-c",
                    P2PD_START,
                    &benches,
                    servers,
                    &half,
                    &secs.to_string(),
                ]);
                theirs.extend(json_lines(&mut cmd));
            }
        }
        eprintln!(
            "{case}: ours {} runs, P2PD {} runs",
            row.ours.len(),
            row.theirs.as_ref().map_or(0, Vec::len)
        );
        rows.push(row);
    }
    rows
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if std::env::var("P2PD_BENCH_ROLE").as_deref() == Ok("probe") {
        let servers = args.get(1).map_or(LAB_SERVERS, String::as_str);
        let runs = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(1);
        let ms = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(2000);
        return probe(servers, runs, Duration::from_millis(ms));
    }
    let mut runs = 20usize;
    let mut timeout_runs = 6usize;
    let mut python: Option<String> = None;
    let mut repl: Option<String> = None;
    let mut with_lab = true;
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--runs" => runs = it.next().and_then(|n| n.parse().ok()).unwrap_or(runs),
            "--timeout-runs" => {
                timeout_runs = it
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(timeout_runs)
            }
            "--python" => python = it.next().cloned(),
            "--repl" => repl = it.next().cloned(),
            "--no-lab" => with_lab = false,
            other => {
                eprintln!("unknown argument {other:?}");
                std::process::exit(2);
            }
        }
    }
    let mut rows = Vec::new();
    loopback(runs, timeout_runs, &mut rows);
    let root = std::fs::metadata("/proc/self").is_ok_and(|m| {
        use std::os::unix::fs::MetadataExt;
        m.uid() == 0
    });
    let lab_note = match (with_lab, root, repl) {
        (false, _, _) => Some("lab cases skipped (--no-lab)"),
        (true, false, _) => Some("lab cases skipped: not root"),
        (true, true, None) => Some("lab cases skipped: no --repl binary for the STUN server"),
        (true, true, Some(repl)) => {
            rows.extend(in_lab(&repl, python.as_deref(), runs, timeout_runs));
            None
        }
    };
    print_table(&rows);
    if let Some(note) = lab_note {
        println!("{note}");
    } else if python.is_none() {
        println!("P2PD 3.1.9 was not available: only our numbers are shown.");
    }
}

/// "ok/runs ext" with the most common external address (or error).
fn outcome(runs: &[Value]) -> String {
    let ok = runs.iter().filter(|r| r["ok"] == true).count();
    let mut exts: Vec<&str> = runs.iter().filter_map(|r| r["ext"].as_str()).collect();
    exts.sort_unstable();
    let common = exts
        .chunk_by(|a, b| a == b)
        .max_by_key(|c| c.len())
        .and_then(|c| c.first())
        .unwrap_or(&"-");
    let common: String = common.chars().take(24).collect();
    format!("{ok}/{} {common}", runs.len())
}

fn print_table(rows: &[Row]) {
    let fmt = |v: Option<f64>, digits: usize| v.map_or("-".into(), |v| format!("{v:.digits$}"));
    println!(
        "\n{:<31} | {:<6} | {:<34} | {:>8} | {:>8} | {:>5} | {:>8}",
        "case", "impl", "started/runs, IPv4 ext (or error)", "med ms", "max ms", "pkts", "ms ratio"
    );
    println!("{}", "-".repeat(118));
    for r in rows {
        let ours_ms = stat(&r.ours, "ms");
        let theirs_ms = r.theirs.as_deref().and_then(|t| stat(t, "ms"));
        let ratio = ours_ms.zip(theirs_ms).map(|(a, b)| a / b);
        let line = |name: &str, runs: &[Value], ratio: Option<f64>| {
            let max = runs
                .iter()
                .filter_map(|r| r["ms"].as_f64())
                .reduce(f64::max);
            println!(
                "{:<31} | {:<6} | {:<34} | {:>8} | {:>8} | {:>5} | {:>8}",
                r.case,
                name,
                outcome(runs),
                fmt(stat(runs, "ms"), 1),
                fmt(max, 1),
                fmt(stat(runs, "packets"), 0),
                fmt(ratio, 3),
            );
        };
        line("ours", &r.ours, ratio);
        if let Some(theirs) = &r.theirs {
            line("P2PD", theirs, None);
        }
    }
    println!(
        "(med ms = median wall time of Interface(name) + start(); pkts = median packets sent per \
         call: datagrams the loopback servers got, or the lab client's eth0 tx_packets; \
         ms ratio = ours / P2PD)"
    );
}
