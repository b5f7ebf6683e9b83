//! The NAT lab's own infrastructure, before any NAT test leans on it: the delay line of
//! `lab.sh up ... --rtt MS --loss PCT` must give the round-trip time and the loss in each
//! direction it was asked for, and `--internet` must serve every kind of STUN server under
//! its name, as the lab's env file says.
//!
//! Measured with the lab's own UDP tools (`lab.sh measure`, `stunlab.py kind`), not with the
//! project's STUN client: the lab is what that client is judged by. Needs root and the
//! lab's tools; without them the tests skip loudly, except under CI, where that fails.
//! Both tests hold the lab lock, so they run one after the other.

mod common;

use common::natlab::{Lab, LabLock, key_values, namespaces, unavailable};
use common::netns::cannot_run;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// Namespaces of these tests, apart from natlab.rs's and any lab run by hand.
const PREFIX: &str = "p2pdp-";
const PATH_TOOLS: &[&str] = &["ip", "nft", "conntrack", "ethtool", "python3"];
const INTERNET_TOOLS: &[&str] = &[
    "ip",
    "nft",
    "conntrack",
    "ethtool",
    "python3",
    "ss",
    "turnserver",
    "stund",
];

/// One measurement through the lab (`lab.sh measure`): its key=value lines.
fn measure(lab: &Lab, family: &str, count: u32, interval_ms: u32) -> Result<Measured, String> {
    let out = lab.ok(&[
        "measure",
        "--family",
        family,
        "--count",
        &count.to_string(),
        "--interval",
        &interval_ms.to_string(),
    ])?;
    let v = key_values(&out);
    let num = |k: &str| -> Result<f64, String> {
        v.get(k)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("no number {k} in:\n{out}"))
    };
    Ok(Measured {
        sent: num("sent")?,
        server_received: num("server_received")?,
        loss_out: num("loss_out_pct")?,
        loss_back: num("loss_back_pct")?,
        median: num("rtt_median_ms")?,
        p90: num("rtt_p90_ms")?,
        reordered: num("reordered")?,
        duplicates: num("duplicates")?,
    })
}

struct Measured {
    sent: f64,
    server_received: f64,
    loss_out: f64,
    loss_back: f64,
    median: f64,
    p90: f64,
    reordered: f64,
    duplicates: f64,
}

/// What is wrong with `m` for a path of `rtt` ms and `loss` % each way. The RTT can only
/// exceed the setting (the line holds every packet at least that long); the rest is the
/// stacks on either side and scheduling on a shared 2-core machine. Loss is binomial: each
/// direction must lie within 4 standard deviations, plus a point, of the setting.
fn judge(m: &Measured, rtt: f64, loss: f64) -> Vec<String> {
    let mut bad = Vec::new();
    if m.median < rtt - 0.05 || m.median > rtt * 1.05 + 3.0 {
        bad.push(format!("median RTT {} ms for {rtt} ms", m.median));
    }
    let p = loss / 100.0;
    for (what, got, n) in [
        ("out", m.loss_out, m.sent),
        ("back", m.loss_back, m.server_received),
    ] {
        let tolerance = 100.0 * (4.0 * (p * (1.0 - p) / n.max(1.0)).sqrt() + 0.01);
        if (got - loss).abs() > tolerance {
            bad.push(format!(
                "loss {what} {got} % for {loss} % (tolerance {tolerance:.1})"
            ));
        }
    }
    if m.reordered > 0.0 || m.duplicates > 0.0 {
        bad.push(format!(
            "{} reordered, {} duplicated",
            m.reordered, m.duplicates
        ));
    }
    bad
}

/// The lab (with the lock held), or None after a loud skip when this host cannot run it.
fn lab_or_skip(test: &str, tools: &[&str]) -> Option<(LabLock, Lab)> {
    if let Some(why) = unavailable(tools) {
        cannot_run(test, &why);
        return None;
    }
    Some((LabLock::take(), Lab::new(PREFIX)))
}

#[test]
fn delay_line_gives_the_rtt_and_loss_asked_for() {
    let Some((_lock, lab)) = lab_or_skip("delay_line_gives_the_rtt_and_loss_asked_for", PATH_TOOLS)
    else {
        return;
    };
    // A real NAT on the IPv4 side and a stateful firewall on the IPv6 side: the line must
    // carry both without disturbing either.
    lab.ok(&["up", "port-restricted", "--ipv6", "firewall", "--rtt", "1"])
        .expect("lab up");
    let mut failures = Vec::new();
    // (rtt ms, loss %, family, probes, interval ms)
    let cells = [
        (1.0, 0.0, "4", 200, 2),
        (50.0, 0.0, "4", 100, 5),
        (150.0, 0.0, "6", 100, 5),
        (300.0, 0.0, "4", 100, 5),
        (1.0, 10.0, "4", 1000, 1),
        (20.0, 25.0, "6", 1000, 1),
    ];
    for (rtt, loss, family, count, interval) in cells {
        lab.ok(&[
            "path",
            "--rtt",
            &rtt.to_string(),
            "--loss",
            &loss.to_string(),
        ])
        .expect("lab.sh path");
        match measure(&lab, family, count, interval) {
            Ok(m) => {
                println!(
                    "IPv{family} rtt {rtt} loss {loss}: median {} ms (p90 {}), loss out {} %, back {} %",
                    m.median, m.p90, m.loss_out, m.loss_back
                );
                let bad = judge(&m, rtt, loss);
                if !bad.is_empty() {
                    failures.push(format!(
                        "IPv{family} rtt {rtt} loss {loss}: {}",
                        bad.join("; ")
                    ));
                }
            }
            Err(e) => failures.push(e),
        }
    }
    // The copier itself must have lost nothing, and the loss it made must be its own.
    lab.ok(&["status"]).expect("lab.sh status");
    let stats = std::fs::read_to_string(lab.state_dir().join("path.stats")).unwrap_or_default();
    let counters = key_values(&stats);
    for key in ["send_errors", "overflow", "kernel_drops"] {
        if counters.get(key).map(String::as_str) != Some("0 0") {
            failures.push(format!("delay line {key}: {:?}", counters.get(key)));
        }
    }
    let lost: Vec<u64> = counters
        .get("lost")
        .map(|v| v.split(' ').filter_map(|n| n.parse().ok()).collect())
        .unwrap_or_default();
    if lost.len() != 2 || lost.contains(&0) {
        failures.push(format!("delay line lost {lost:?}: want drops both ways"));
    }
    assert!(failures.is_empty(), "{}\n{stats}", failures.join("\n"));
}

/// One row of the lab's STUN server truth (`STUN_SERVER_N` in its env file).
#[derive(Debug)]
struct Server {
    host: String,
    port: String,
    family: String,
    kind: String,
    ip: String,
}

fn servers(env: &HashMap<String, String>) -> Vec<Server> {
    let count: usize = env
        .get("STUN_SERVER_COUNT")
        .and_then(|n| n.parse().ok())
        .expect("STUN_SERVER_COUNT in the lab env");
    (1..=count)
        .map(|n| {
            let row = &env[&format!("STUN_SERVER_{n}")];
            let f: Vec<&str> = row.split_whitespace().collect();
            assert_eq!(f.len(), 6, "STUN_SERVER_{n}: {row}");
            let ip = f[4].rsplit_once(':').expect("ip:port").0;
            Server {
                host: f[0].into(),
                port: f[1].into(),
                family: f[2].into(),
                kind: f[3].into(),
                ip: ip.trim_matches(['[', ']']).into(),
            }
        })
        .collect()
}

/// The (host, port) pairs of a server list file, each line checked against the format.
fn list_entries(text: &str) -> BTreeSet<(String, String)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(f.len(), 6, "list line {l}");
            assert!(["plain", "5780", "3489"].contains(&f[2]), "caps in {l}");
            assert!(["4", "6", "46"].contains(&f[3]), "families in {l}");
            assert_eq!(f[4], "lab", "source in {l}");
            assert!(
                f[5].len() == 10 && f[5].chars().filter(|&c| c == '-').count() == 2,
                "date in {l}"
            );
            (f[0].to_string(), f[1].to_string())
        })
        .collect()
}

/// The list files say what the env file says, and the lab has every kind it promises.
fn check_lists(lab: &Lab, rows: &[Server]) {
    let read = |name: &str| std::fs::read_to_string(lab.state_dir().join(name)).unwrap();
    let all: BTreeSet<_> = rows
        .iter()
        .map(|s| (s.host.clone(), s.port.clone()))
        .collect();
    let plain: BTreeSet<_> = rows
        .iter()
        .filter(|s| s.kind == "plain")
        .map(|s| (s.host.clone(), s.port.clone()))
        .collect();
    assert_eq!(list_entries(&read("stun_servers.txt")), all);
    assert_eq!(list_entries(&read("stun_servers_plain.txt")), plain);
    let plain_v4_ips: BTreeSet<_> = rows
        .iter()
        .filter(|s| s.kind == "plain" && s.family == "4")
        .map(|s| &s.ip)
        .collect();
    assert!(
        plain_v4_ips.len() >= 3,
        "plain IPv4 servers on {plain_v4_ips:?}"
    );
    let two_ports = rows.iter().any(|a| {
        rows.iter()
            .any(|b| a.kind == "plain" && b.kind == "plain" && a.ip == b.ip && a.port != b.port)
    });
    assert!(two_ports, "no plain server on two ports");
    for (kind, family) in [
        ("plain", "6"),
        ("5780", "4"),
        ("5780", "6"),
        ("3489", "4"),
        ("silent", "4"),
        ("closed", "4"),
        ("liar", "4"),
        ("wrong-source", "4"),
        ("slow", "4"),
    ] {
        assert!(
            rows.iter().any(|s| s.kind == kind && s.family == family),
            "no {kind} server on IPv{family}"
        );
    }
}

/// Every name resolves, with our resolver inside the client namespace, to its row's IP.
fn check_names(lab: &Lab, rows: &[Server]) -> Vec<String> {
    let script: String = rows
        .iter()
        .map(|s| {
            let family = if s.family == "6" { "IP6" } else { "IP4" };
            format!(
                "print(`{} {}: ${{resolve(\"{}\", {}, {family}).ip}}`);\n",
                s.host, s.family, s.host, s.port
            )
        })
        .collect();
    let out = match lab.ok(&[
        "exec",
        "client",
        env!("CARGO_BIN_EXE_p2pd-repl"),
        "-e",
        &script,
    ]) {
        Ok(out) => out,
        Err(e) => return vec![e],
    };
    let got: HashMap<&str, &str> = out.lines().filter_map(|l| l.split_once(": ")).collect();
    rows.iter()
        .filter_map(|s| {
            let key = format!("{} {}", s.host, s.family);
            let ip = got.get(key.as_str()).copied();
            (ip != Some(s.ip.as_str())).then(|| format!("{key} resolved to {ip:?}, want {}", s.ip))
        })
        .collect()
}

#[test]
fn small_internet_serves_every_kind_by_name() {
    let Some((_lock, lab)) =
        lab_or_skip("small_internet_serves_every_kind_by_name", INTERNET_TOOLS)
    else {
        return;
    };
    // Open on both families, so every reply reaches the client (a wrong-source reply
    // would be filtered anywhere else), through a 20 ms path.
    let rtt = 20.0;
    lab.ok(&[
        "up",
        "none",
        "--ipv6",
        "none",
        "--internet",
        "--rtt",
        "20",
        "--loss",
        "0",
    ])
    .expect("lab up");
    let env = lab.env();
    let rows = servers(&env);
    check_lists(&lab, &rows);
    let mut failures = check_names(&lab, &rows);
    for s in &rows {
        let local = if s.family == "6" {
            &env["CLIENT_IP6"]
        } else {
            &env["CLIENT_IP"]
        };
        let probe = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/natlab/stunlab.py");
        let slow_ms = (rtt + 200.0).to_string();
        let out = lab.ok(&[
            "exec",
            "client",
            "python3",
            &probe.to_string_lossy(),
            "kind",
            local,
            &s.ip,
            &s.port,
            "--wait",
            "0.5",
            "--slow-ms",
            &slow_ms,
        ]);
        let v = match out {
            Ok(out) => key_values(&out),
            Err(e) => {
                failures.push(e);
                continue;
            }
        };
        let kind = v.get("kind").map_or("", String::as_str);
        let rtt_ms: f64 = v.get("rtt_ms").and_then(|r| r.parse().ok()).unwrap_or(0.0);
        println!(
            "{} {} IPv{}: {} (probe: {kind}, {rtt_ms} ms)",
            s.host, s.port, s.family, s.kind
        );
        if kind != s.kind {
            failures.push(format!(
                "{} {}: is {}, probe says {kind}: {v:?}",
                s.host, s.port, s.kind
            ));
        }
        // Answers come through the delay line; the slow one adds its 400 ms.
        let floor = if s.kind == "slow" { rtt + 400.0 } else { rtt };
        if v.get("reply").map(String::as_str) == Some("yes") && rtt_ms < floor {
            failures.push(format!(
                "{} {}: answered in {rtt_ms} ms, under {floor}",
                s.host, s.port
            ));
        }
    }
    drop(lab);
    let leftovers = namespaces(PREFIX);
    assert!(leftovers.is_empty(), "lab.sh down left {leftovers:?}");
    assert!(
        !Path::new(&format!("/etc/netns/{PREFIX}client")).exists(),
        "lab.sh down left the client's hosts file"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
