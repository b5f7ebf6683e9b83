//! The port-mapping lab: tests/natlab/lab.sh's `masquerade` variant (client 10.77.0.10
//! behind 10.77.0.1, public 203.0.113.100, inet 203.0.113.1 and .2) with a daemon on the
//! router (the scripted gateway tests/natlab/gateway.py, or miniupnpd), scripts run by
//! the real `p2pd-repl` in the client namespace, and packets sent from inet to the public
//! address. Shared by tests/portmap.rs and tests/netcheck.rs, which take the lab lock.

use super::natlab::Lab;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const PUBLIC_IP: &str = "203.0.113.100";
pub const CLIENT_IP: &str = "10.77.0.10";
pub const GATEWAY_IP: &str = "10.77.0.1";

/// The namespaces' prefix: `P2PD_LAB_PREFIX` when set (to keep clear of another lab on
/// the machine), else `default`.
pub fn prefix(default: &'static str) -> &'static str {
    static PREFIX: OnceLock<String> = OnceLock::new();
    PREFIX.get_or_init(|| {
        std::env::var("P2PD_LAB_PREFIX")
            .ok()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| default.to_string())
    })
}

/// The lab, up as `masquerade` with `server` (if any) started in inet.
pub fn up(prefix: &'static str, server: &[&str]) -> Result<Lab, String> {
    let lab = Lab::new(prefix);
    let mut args = vec!["up", "masquerade"];
    if !server.is_empty() {
        args.push("--");
        args.extend_from_slice(server);
    }
    lab.ok(&args)?;
    Ok(lab)
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_p2pd-repl")
}

/// The namespace of `role` (client, router, inet) in the lab named by `prefix`.
pub fn ns(prefix: &str, role: &str) -> String {
    format!("{prefix}{role}")
}

/// A daemon in the router namespace, its output in a file; stopped on drop.
pub struct Daemon {
    child: Child,
    log: PathBuf,
}

impl Daemon {
    /// Starts `args` in `prefix`'s router and waits until its output holds `ready`.
    pub fn start(prefix: &str, args: &[&str], ready: &str) -> Daemon {
        let log = std::env::temp_dir().join(format!("p2pd-portmap-{}.log", std::process::id()));
        let file = std::fs::File::create(&log).expect("log file");
        let child = Command::new("ip")
            .args(["netns", "exec", &ns(prefix, "router")])
            .args(args)
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log"))
            .stderr(file)
            .spawn()
            .expect("start daemon");
        let d = Daemon { child, log };
        let started = Instant::now();
        while !d.text().contains(ready) {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "{args:?} not ready: {}",
                d.text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        d
    }

    pub fn text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// How many times the log holds `needle`.
    pub fn count(&self, needle: &str) -> usize {
        self.text().matches(needle).count()
    }

    /// Waits until the log holds `needle` `n` times (10 s at most).
    pub fn wait_for(&self, needle: &str, n: usize) {
        self.wait_within(needle, n, Duration::from_secs(10));
    }

    /// Waits until the log holds `needle` `n` times; fails after `limit`.
    pub fn wait_within(&self, needle: &str, n: usize, limit: Duration) {
        let started = Instant::now();
        while self.count(needle) < n {
            assert!(
                started.elapsed() < limit,
                "no {needle:?} within {limit:?} in:\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // SIGTERM first: the scripted gateway removes its nftables table on the way out.
        // SAFETY: kill(2) on the pid of a child this handle still owns (not yet reaped).
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let started = Instant::now();
        while self.child.try_wait().ok().flatten().is_none()
            && started.elapsed() < Duration::from_secs(2)
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// The scripted gateway (tests/natlab/gateway.py) with `args`, ready.
pub fn gateway(prefix: &str, args: &[&str]) -> Daemon {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/natlab/gateway.py");
    let mut all = vec!["python3", script.to_str().expect("utf-8 path")];
    all.extend_from_slice(args);
    Daemon::start(prefix, &all, "\"ready\"")
}

/// Runs `p2pd-repl ARGS` in the client namespace (killed after 30 s).
pub fn repl(prefix: &str, args: &[&str]) -> Output {
    super::netns::run(
        Command::new("ip")
            .args(["netns", "exec", &ns(prefix, "client"), bin()])
            .args(args),
        Duration::from_secs(30),
    )
}

/// Runs a script in the client namespace, which must succeed: its `name=value` lines,
/// and everything it printed.
pub fn client(prefix: &str, script: &str) -> (Vec<(String, String)>, String) {
    let out = repl(prefix, &["-e", script]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let text = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let vals = stdout
        .lines()
        .filter_map(|l| {
            l.split_once('=')
                .map(|(a, b)| (a.to_string(), b.to_string()))
        })
        .collect();
    assert!(out.status.success(), "script failed: {text}");
    (vals, text)
}

/// The value of the `name=` line.
pub fn get<'a>(vals: &'a [(String, String)], name: &str, text: &str) -> &'a str {
    vals.iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {name}= in:\n{text}"))
}

/// Runs python `code` in the inet namespace; whether it exited 0, and its output.
fn inet_python(prefix: &str, code: &str) -> (bool, String) {
    let out = super::netns::run(
        Command::new("ip").args(["netns", "exec", &ns(prefix, "inet"), "python3", "-c", code]),
        Duration::from_secs(10),
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Sends a UDP datagram from inet (203.0.113.2) to the public address.
pub fn inet_udp(prefix: &str, port: u16, payload: &str) {
    let code = format!(
        "import socket; s=socket.socket(2,2); s.bind(('203.0.113.2',0)); s.sendto(b'{payload}',('{PUBLIC_IP}',{port}))"
    );
    let (ok, text) = inet_python(prefix, &code);
    assert!(ok, "inet send: {text}");
}

/// Connects from inet to the public address over TCP (1 s limit) and sends `payload`:
/// `Ok` once sent, else why not.
pub fn inet_tcp(prefix: &str, port: u16, payload: &str) -> Result<(), String> {
    let code = format!(
        "import socket; s=socket.create_connection(('{PUBLIC_IP}',{port}),timeout=1,source_address=('203.0.113.2',0)); s.sendall(b'{payload}'); s.close()"
    );
    match inet_python(prefix, &code) {
        (true, _) => Ok(()),
        (false, text) => Err(text.lines().last().unwrap_or_default().to_string()),
    }
}

/// The DNAT rules the scripted gateway has installed now.
pub fn dnat_rules(prefix: &str) -> String {
    let out = super::netns::run(
        Command::new("ip").args([
            "netns",
            "exec",
            &ns(prefix, "router"),
            "nft",
            "list",
            "table",
            "ip",
            "p2pdgw",
        ]),
        Duration::from_secs(10),
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("dnat"))
        .collect::<Vec<_>>()
        .join("\n")
}
