//! Driving the NAT lab (`tests/natlab/lab.sh`) from tests: the lock that keeps labs of
//! different tests and benches from running at once (they would share two cores and skew
//! each other's timing), and a lab handle that takes its namespaces down on drop.

use super::netns::run;
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

/// Serialises labs across threads and test binaries (bench scripts take the same file
/// with flock(1)).
pub struct LabLock {
    /// Held open for the lock; closing it releases the lock.
    _file: std::fs::File,
}

impl LabLock {
    pub fn take() -> LabLock {
        let file = std::fs::File::create(std::env::temp_dir().join("p2pd-natlab.lock"))
            .expect("lock file");
        // SAFETY: flock on a valid open descriptor owned by `file`; released on close.
        let rc = unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&file), libc::LOCK_EX) };
        assert_eq!(rc, 0, "flock");
        LabLock { _file: file }
    }
}

/// A lab under one namespace prefix; `lab.sh down` runs on drop.
pub struct Lab {
    prefix: &'static str,
}

impl Lab {
    pub fn new(prefix: &'static str) -> Lab {
        Lab { prefix }
    }

    /// Runs `lab.sh ARGS` (killed after `limit`); the REPL binary is this build's.
    pub fn sh(&self, args: &[&str], limit: Duration) -> Output {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/natlab/lab.sh");
        let mut cmd = Command::new("bash");
        cmd.arg(script)
            .args(args)
            .env("P2PD_LAB_PREFIX", self.prefix)
            .env("P2PD_REPL", env!("CARGO_BIN_EXE_p2pd-repl"));
        run(&mut cmd, limit)
    }

    /// `lab.sh ARGS`, which must succeed: its stdout, or what went wrong.
    pub fn ok(&self, args: &[&str]) -> Result<String, String> {
        let out = self.sh(args, Duration::from_secs(60));
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() {
            Ok(stdout)
        } else {
            Err(format!(
                "lab.sh {}: {stdout}{}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// Where the lab keeps its env file, logs and server lists.
    pub fn state_dir(&self) -> PathBuf {
        PathBuf::from(format!("/run/{}lab", self.prefix))
    }

    /// The lab's env file as a map (quotes removed).
    pub fn env(&self) -> HashMap<String, String> {
        let text = std::fs::read_to_string(self.state_dir().join("env")).unwrap_or_default();
        key_values(&text)
            .into_iter()
            .map(|(k, v)| (k, v.trim_matches('"').to_string()))
            .collect()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let out = self.sh(&["down"], Duration::from_secs(30));
        if !out.status.success() {
            eprintln!("lab.sh down: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
}

/// The namespaces named with `prefix` that exist now.
pub fn namespaces(prefix: &str) -> Vec<String> {
    let out = run(
        Command::new("ip").args(["netns", "list"]),
        Duration::from_secs(10),
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(prefix))
        .map(str::to_owned)
        .collect()
}

/// `KEY=VALUE` lines (comments and other lines skipped), as the lab's tools print them.
pub fn key_values(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// Why labs cannot run here, if they cannot: not root, or one of `tools` is missing.
pub fn unavailable(tools: &[&str]) -> Option<String> {
    if !super::netns::is_root() {
        return Some("not root".into());
    }
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| {
            !Command::new("sh")
                .args(["-c", &format!("command -v {t}")])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .collect();
    (!missing.is_empty()).then(|| format!("missing {}", missing.join(", ")))
}
