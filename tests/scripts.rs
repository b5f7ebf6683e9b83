//! Every script in `scripts/` runs through the binary, and its output must contain each line
//! of `tests/scripts/expected/<name>.txt` (a script without that file fails: runnable
//! documentation that nobody checks rots).
//!
//! - Most scripts run on this host with `--stun` pointing at the built-in STUN server,
//!   started here on 127.0.0.1 and 127.0.0.2 (free ports): nothing leaves loopback.
//! - `google.rhai` is the tutorial's first networking program and must stay unmodified, so
//!   the internet is built around it: a client network namespace whose hosts file
//!   (`/etc/netns/NAME/hosts`) sends www.google.com to 198.51.100.1, where another namespace
//!   runs a small HTTP responder (written with this project's own pipes) and the built-in
//!   STUN server on 198.51.100.1:3478 / 198.51.100.3:3479. Needs root; without it the test
//!   is skipped loudly, except under CI (`CI` set), where that is a failure.

mod common;

use common::netns::{cannot_run, ip, run};
use p2pd::net::stun::StunServer;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// Scripts that need the namespace lab instead of loopback.
const LAB_SCRIPTS: &[&str] = &["google.rhai"];
/// A script that runs longer than this is hung.
const SCRIPT_LIMIT: Duration = Duration::from_secs(60);

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn scripts() -> Vec<PathBuf> {
    let mut all: Vec<PathBuf> = std::fs::read_dir(root().join("scripts"))
        .expect("scripts/ exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "rhai"))
        .collect();
    all.sort();
    all
}

fn name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

/// The expected substrings of a script, or why there are none.
fn expectations(script: &Path) -> Result<Vec<String>, String> {
    let stem = script.file_stem().unwrap().to_string_lossy();
    let file = root().join(format!("tests/scripts/expected/{stem}.txt"));
    let text = std::fs::read_to_string(&file)
        .map_err(|e| format!("no expectations file {}: {e}", file.display()))?;
    let lines: Vec<String> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    if lines.is_empty() {
        return Err(format!("{} holds no expected line", file.display()));
    }
    Ok(lines)
}

/// `None` if the run printed every expected line and exited 0, else what went wrong.
fn check(script: &Path, out: &Output) -> Option<String> {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = match expectations(script) {
        Ok(lines) => lines,
        Err(e) => return Some(e),
    };
    let missing: Vec<&String> = expected.iter().filter(|l| !text.contains(*l)).collect();
    if out.status.success() && missing.is_empty() {
        return None;
    }
    Some(format!(
        "{} ({}) is missing {missing:?}; output:\n{text}",
        name(script),
        out.status
    ))
}

#[test]
fn every_script_has_expectations() {
    let missing: Vec<String> = scripts()
        .iter()
        .filter_map(|s| expectations(s).err())
        .collect();
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

#[test]
fn loopback_scripts_print_what_they_promise() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let mut server = rt
        .block_on(StunServer::start(
            "127.0.0.1:0".parse().unwrap(),
            Some("127.0.0.2:0".parse().unwrap()),
        ))
        .expect("built-in STUN server on loopback");
    let addrs = server.local_addrs().to_vec();
    // The primary address and the alternate one (other IP, other port).
    let (primary, alternate) = (addrs[0].to_string(), addrs[3].to_string());
    let mut failures = Vec::new();
    let mut ran = 0;
    for script in scripts() {
        if LAB_SCRIPTS.contains(&name(&script).as_str()) {
            continue;
        }
        let out = run(
            Command::new(env!("CARGO_BIN_EXE_p2pd-repl"))
                .args(["--stun", &primary, "--stun", &alternate])
                .arg(&script)
                .current_dir(root()),
            SCRIPT_LIMIT,
        );
        ran += 1;
        failures.extend(check(&script, &out));
    }
    rt.block_on(server.close());
    assert!(ran > 0, "no script ran");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The responder www.google.com becomes: it answers anything with a 400, as Google does
/// to the tutorial's malformed request. Written in Rhai with this project's pipes
/// (1 = TCP, as P2PD numbers it).
const WEB: &str = r#"
let s = pipe_open(1, (), ["198.51.100.1", 80]);
s.add_msg_cb(|m, c, p| {
    p.send(b"HTTP/1.0 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
    p.close();
});
print("ready");
sleep(300);
"#;

/// Two namespaces joined by a veth pair: `c` (eth0 198.51.100.2/24, default route via
/// .1) and `w` (198.51.100.1 and .3), plus `/etc/netns/c/{hosts,resolv.conf}`.
struct Lab {
    client: String,
    web: String,
    children: Vec<Child>,
}

impl Lab {
    fn up() -> Result<Lab, String> {
        let id = std::process::id();
        let mut lab = Lab {
            client: format!("p2g{id}c"),
            web: format!("p2g{id}w"),
            children: Vec::new(),
        };
        ip(&["netns", "add", &lab.client])?;
        ip(&["netns", "add", &lab.web])?;
        let (vc, vw) = (format!("p2g{id}a"), format!("p2g{id}b"));
        ip(&["link", "add", &vc, "type", "veth", "peer", "name", &vw])?;
        ip(&["link", "set", &vc, "netns", &lab.client])?;
        ip(&["link", "set", &vw, "netns", &lab.web])?;
        let (c, w) = (lab.client.clone(), lab.web.clone());
        ip(&["-n", &c, "link", "set", &vc, "name", "eth0"])?;
        ip(&["-n", &c, "addr", "add", "198.51.100.2/24", "dev", "eth0"])?;
        ip(&["-n", &c, "link", "set", "eth0", "up"])?;
        ip(&["-n", &c, "link", "set", "lo", "up"])?;
        ip(&["-n", &c, "route", "add", "default", "via", "198.51.100.1"])?;
        for addr in ["198.51.100.1/24", "198.51.100.3/24"] {
            ip(&["-n", &w, "addr", "add", addr, "dev", &vw])?;
        }
        ip(&["-n", &w, "link", "set", &vw, "up"])?;
        ip(&["-n", &w, "link", "set", "lo", "up"])?;
        let etc = lab.etc();
        std::fs::create_dir_all(&etc).map_err(|e| format!("mkdir {}: {e}", etc.display()))?;
        std::fs::write(
            etc.join("hosts"),
            "127.0.0.1 localhost\n198.51.100.1 www.google.com\n",
        )
        .and_then(|_| std::fs::write(etc.join("resolv.conf"), "nameserver 198.51.100.1\n"))
        .map_err(|e| format!("writing {}: {e}", etc.display()))?;
        lab.serve(&["stun-server", "198.51.100.1:3478", "198.51.100.3:3479"])?;
        lab.serve(&["-e", WEB])?;
        Ok(lab)
    }

    fn etc(&self) -> PathBuf {
        PathBuf::from("/etc/netns").join(&self.client)
    }

    /// Starts the binary in the web namespace and waits for its first line of output.
    fn serve(&mut self, args: &[&str]) -> Result<(), String> {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.web, env!("CARGO_BIN_EXE_p2pd-repl")])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("starting {args:?}: {e}"))?;
        let mut first = String::new();
        let stdout = child.stdout.take().expect("piped stdout");
        // Keep reading in the background so the child never blocks on a full pipe.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            lines.for_each(drop);
        });
        if let Ok(line) = rx.recv_timeout(Duration::from_secs(30)) {
            first = line;
        }
        self.children.push(child);
        if first.is_empty() {
            return Err(format!("{args:?} printed nothing in the web namespace"));
        }
        Ok(())
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(self.etc());
        for ns in [&self.client, &self.web] {
            let _ = ip(&["netns", "del", ns]);
        }
    }
}

#[test]
fn google_rhai_runs_unmodified_against_a_namespace_internet() {
    let script = root().join("scripts/google.rhai");
    if !script.exists() {
        return;
    }
    let lab = match Lab::up() {
        Ok(lab) => lab,
        Err(e) => {
            return cannot_run(
                "google.rhai in its namespace lab",
                &format!("cannot build the namespace lab: {e}"),
            );
        }
    };
    let out = run(
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &lab.client,
                env!("CARGO_BIN_EXE_p2pd-repl"),
            ])
            .args(["--stun", "198.51.100.1:3478", "--stun", "198.51.100.3:3479"])
            .arg(&script),
        SCRIPT_LIMIT,
    );
    drop(lab);
    // Shown with --nocapture: what the tutorial program printed in the lab.
    eprintln!(
        "google.rhai printed: {}",
        String::from_utf8_lossy(&out.stdout).trim()
    );
    if let Some(failure) = check(&script, &out) {
        panic!("{failure}");
    }
}

#[test]
fn google_rhai_runs_unmodified_against_the_local_world() {
    let script = root().join("scripts/google.rhai");
    let out = run(
        Command::new(env!("CARGO_BIN_EXE_p2pd-repl"))
            .arg("--offline")
            .arg(&script),
        SCRIPT_LIMIT,
    );
    // The notice goes to stderr, so a script's stdout stays its own.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Offline (--offline)"), "{stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("Offline"));
    if let Some(failure) = check(&script, &out) {
        panic!("{failure}");
    }
}
