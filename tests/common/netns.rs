//! Throw-away network namespaces for tests that need a routing table of their own (no
//! default route, or one of their own making), and a way to run the REPL binary inside.
//! Addresses come from 198.51.100.0/24 only; nothing is added to the host namespace.
//!
//! Needs root. Without it (or when namespaces cannot be made) a test skips loudly, except
//! under CI (`CI` set), where that is a failure: see [`cannot_run`].

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Namespaces deleted on drop; the first is where [`Netns::repl`] runs.
pub struct Netns {
    names: Vec<String>,
}

/// Runs `cmd` to completion, killing it after `limit` (a hung child must not hang tests).
pub fn run(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("command starts");
    let started = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

/// Runs `ip ARGS`, its stderr as the error.
pub fn ip(args: &[&str]) -> Result<(), String> {
    let out = run(Command::new("ip").args(args), Duration::from_secs(10));
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// Fails under CI, skips loudly elsewhere.
pub fn cannot_run(test: &str, why: &str) {
    if in_ci() {
        panic!("{test}: {why} (CI is set, so this is a failure)");
    }
    // Straight to the stderr handle: libtest captures `eprintln!` of passing tests, and a
    // skip must be seen.
    let line = format!("\n*** SKIP {test}: {why} ***\n");
    let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

impl Netns {
    /// Unique per process and `tag`, short enough for interface names (15 bytes).
    fn name(tag: &str, role: char) -> String {
        format!("p2n{}{tag}{role}", std::process::id() % 100_000)
    }

    fn add(&mut self, name: String) -> Result<(), String> {
        if !is_root() {
            return Err("needs root for network namespaces".into());
        }
        ip(&["netns", "add", &name])?;
        self.names.push(name);
        ip(&["-n", self.main(), "link", "set", "lo", "up"])
    }

    fn main(&self) -> &str {
        self.names.first().map_or("", String::as_str)
    }

    /// A namespace with only loopback up: no interface, no default route.
    pub fn lo_only(tag: &str) -> Result<Netns, String> {
        let mut ns = Netns { names: Vec::new() };
        ns.add(Netns::name(tag, 'l'))?;
        Ok(ns)
    }

    /// A namespace whose `eth0` has `nic` (in 198.51.100.0/24) and an IPv4 default route via
    /// 198.51.100.1, the far end of a veth pair in a second namespace.
    pub fn with_default_route(tag: &str, nic: &str) -> Result<Netns, String> {
        let mut ns = Netns { names: Vec::new() };
        ns.add(Netns::name(tag, 'c'))?;
        let gw = Netns::name(tag, 'g');
        ip(&["netns", "add", &gw])?;
        ns.names.push(gw.clone());
        let (near, far) = (Netns::name(tag, 'a'), Netns::name(tag, 'b'));
        ip(&["link", "add", &near, "type", "veth", "peer", "name", &far])?;
        let c = ns.main().to_string();
        ip(&["link", "set", &near, "netns", &c])?;
        ip(&["link", "set", &far, "netns", &gw])?;
        ip(&["-n", &c, "link", "set", &near, "name", "eth0"])?;
        ip(&["-n", &c, "addr", "add", &format!("{nic}/24"), "dev", "eth0"])?;
        ip(&["-n", &c, "link", "set", "eth0", "up"])?;
        ip(&["-n", &gw, "addr", "add", "198.51.100.1/24", "dev", &far])?;
        ip(&["-n", &gw, "link", "set", &far, "up"])?;
        ip(&["-n", &c, "route", "add", "default", "via", "198.51.100.1"])?;
        Ok(ns)
    }

    /// A command running the REPL binary inside the namespace (for a pty, say).
    pub fn command(&self) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args([
            "netns",
            "exec",
            self.main(),
            env!("CARGO_BIN_EXE_p2pd-repl"),
        ]);
        cmd
    }

    /// Runs the REPL binary with `args` inside the namespace; it must exit 0.
    pub fn repl(&self, args: &[&str]) -> Output {
        let out = run(self.command().args(args), Duration::from_secs(30));
        assert!(
            out.status.success(),
            "p2pd-repl {args:?} failed in the namespace: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// A kernel counter of the namespace from `/proc/net/snmp` (e.g. `("Udp", "OutDatagrams")`).
    pub fn snmp(&self, group: &str, field: &str) -> u64 {
        let out = run(
            Command::new("ip").args(["netns", "exec", self.main(), "cat", "/proc/net/snmp"]),
            Duration::from_secs(10),
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let prefix = format!("{group}:");
        let mut rows = text.lines().filter(|l| l.starts_with(&prefix));
        let (Some(names), Some(values)) = (rows.next(), rows.next()) else {
            panic!("no {group} counters in /proc/net/snmp: {text}");
        };
        names
            .split_whitespace()
            .zip(values.split_whitespace())
            .find(|(n, _)| *n == field)
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or_else(|| panic!("no {group} {field} in /proc/net/snmp"))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for name in &self.names {
            let _ = ip(&["netns", "del", name]);
        }
    }
}

/// The value a script printed as a `name=value` line, from the binary's stdout.
pub fn printed(out: &Output, name: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let prefix = format!("{name}=");
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| {
            panic!(
                "no {name}= line; stdout:\n{stdout}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
        .to_string()
}
