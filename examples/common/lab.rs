//! What the lab benchmarks (`nat_bench`, `interface_bench`) share: driving the namespace
//! lab (`tests/natlab/lab.sh`), running children in its client namespace, and medians.
//! Included with `#[path]`; it is not an example of its own.

use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Stdio};

pub fn manifest(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Packets this namespace's eth0 has sent (the lab's client side).
pub fn tx_packets() -> u64 {
    std::fs::read_to_string("/sys/class/net/eth0/statistics/tx_packets")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// Runs `lab.sh ARGS` with the bench's own namespace prefix.
pub fn lab(prefix: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(manifest("tests/natlab/lab.sh"))
        .args(args)
        .env("P2PD_LAB_PREFIX", prefix)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Takes the lab down when the bench ends, however it ends.
pub struct LabGuard(pub &'static str);

impl Drop for LabGuard {
    fn drop(&mut self) {
        let _ = lab(self.0, &["down"]);
    }
}

/// A command that runs `program` in the lab's client namespace.
pub fn in_client(prefix: &str, program: &str) -> Command {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &format!("{prefix}client"), program]);
    cmd
}

/// JSON lines a child printed.
pub fn json_lines(cmd: &mut Command) -> Vec<Value> {
    let out = match cmd.stdin(Stdio::null()).output() {
        Ok(out) => out,
        Err(e) => {
            eprintln!("cannot run {cmd:?}: {e}");
            return Vec::new();
        }
    };
    if !out.status.success() {
        eprintln!("{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

pub fn median(mut v: Vec<f64>) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => v.get(n / 2).copied(),
        _ => Some((v.get(n / 2 - 1)? + v.get(n / 2)?) / 2.0),
    }
}

/// Median of a numeric field over JSON runs.
pub fn stat(runs: &[Value], key: &str) -> Option<f64> {
    median(runs.iter().filter_map(|r| r[key].as_f64()).collect())
}
