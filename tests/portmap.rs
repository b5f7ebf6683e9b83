//! Port mapping end to end in the namespace lab (tests/natlab/lab.sh, `masquerade`):
//! miniupnpd 2.3.1 on the router configured for UPnP only, NAT-PMP/PCP only, all three
//! and none; and the scripted gateway (tests/natlab/gateway.py) for what miniupnpd
//! cannot do with the lab's documentation-range WAN address: real mappings (nftables
//! DNAT rules), multicast-only SSDP from an odd port, a first descriptor that is not
//! the IGD, and refusals. Each mapping must let an unsolicited datagram from the inet
//! namespace reach a pipe in the client namespace, and stop doing so once deleted by
//! `close()`, by dropping it, or by the REPL process exiting.
//!
//! The same lifecycle without root, on loopback: tests/portmap_loopback.rs.
//! Needs root for the lab; skips loudly without it, fails under CI.

mod common;

use common::netns::{cannot_run, is_root};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const PREFIX: &str = "p2pdm-";

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_p2pd-repl")
}

fn lab(args: &[&str]) -> Output {
    Command::new(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/natlab/lab.sh"))
        .args(args)
        .env("P2PD_LAB_PREFIX", PREFIX)
        .stdin(Stdio::null())
        .output()
        .expect("run lab.sh")
}

fn ns(role: &str) -> String {
    format!("{PREFIX}{role}")
}

/// Takes the lab down on every exit; holds the lock other NAT labs take too.
struct Lab {
    _lock: std::fs::File,
}

impl Lab {
    fn up() -> Result<Lab, String> {
        let lock = std::fs::File::create(std::env::temp_dir().join("p2pd-natlab.lock"))
            .map_err(|e| e.to_string())?;
        // SAFETY: flock on a descriptor owned by `lock`; released when it closes.
        unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) };
        let out = lab(&["up", "masquerade"]);
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        Ok(Lab { _lock: lock })
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        lab(&["down"]);
    }
}

/// A daemon in the router namespace, its output in a file; killed on drop.
struct Daemon {
    child: Child,
    log: PathBuf,
}

impl Daemon {
    fn start(args: &[&str], ready: &str) -> Daemon {
        let log = std::env::temp_dir().join(format!("p2pd-portmap-{}.log", std::process::id()));
        let file = std::fs::File::create(&log).expect("log file");
        let child = Command::new("ip")
            .args(["netns", "exec", &ns("router")])
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

    fn text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log holds `needle` `n` times.
    fn wait_for(&self, needle: &str, n: usize) {
        let started = Instant::now();
        while self.text().matches(needle).count() < n {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "no {needle:?} in:\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // SIGTERM first: the scripted gateway removes its nftables table on the way out.
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

fn gateway(args: &[&str]) -> Daemon {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/natlab/gateway.py");
    let mut all = vec!["python3", script.to_str().unwrap()];
    all.extend_from_slice(args);
    Daemon::start(&all, "\"ready\"")
}

fn miniupnpd(upnp: bool, natpmp: bool) -> Daemon {
    let yes = |b: bool| if b { "yes" } else { "no" };
    let conf = format!(
        "ext_ifname=wan0\nlistening_ip=lan0\nhttp_port=5000\nenable_upnp={}\nenable_natpmp={}\nsecure_mode=yes\nuuid=3d3cec3a-8cf0-11e0-98ee-001a6bd2d07b\nallow 1024-65535 10.77.0.0/16 1024-65535\ndeny 0-65535 0.0.0.0/0 0-65535\n",
        yes(upnp),
        yes(natpmp)
    );
    let dir = std::env::temp_dir().join(format!("p2pd-miniupnpd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("miniupnpd.conf");
    std::fs::write(&path, conf).unwrap();
    let pid = dir.join("pid");
    Daemon::start(
        &[
            "miniupnpd",
            "-f",
            path.to_str().unwrap(),
            "-d",
            "-P",
            pid.to_str().unwrap(),
        ],
        if natpmp {
            "Listening for NAT-PMP"
        } else {
            "HTTP listening"
        },
    )
}

/// Runs a script in the client namespace; its `name=value` lines.
fn client(script: &str) -> (Vec<(String, String)>, String) {
    let out = common::netns::run(
        Command::new("ip").args(["netns", "exec", &ns("client"), bin(), "-e", script]),
        Duration::from_secs(30),
    );
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

fn get<'a>(vals: &'a [(String, String)], name: &str, text: &str) -> &'a str {
    vals.iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {name}= in:\n{text}"))
}

const PROBE: &str = r#"let r = portmap_probe("10.77.0.1");
print(`upnp=${r.upnp}`); print(`pmp=${r.pmp}`); print(`pcp=${r.pcp}`);
print(`elapsed=${r.elapsed}`); print(`summary=${r.summary}`);
for d in r.details { print(`detail=${d}`) }"#;

fn probe_expect(want: [&str; 3], max: f64) -> (Vec<(String, String)>, String) {
    let (vals, text) = client(PROBE);
    let got = [
        get(&vals, "upnp", &text),
        get(&vals, "pmp", &text),
        get(&vals, "pcp", &text),
    ];
    assert_eq!(got, want, "upnp/pmp/pcp:\n{text}");
    let elapsed: f64 = get(&vals, "elapsed", &text).parse().unwrap();
    assert!(
        elapsed <= max,
        "probe took {elapsed} s (bound {max}):\n{text}"
    );
    (vals, text)
}

fn miniupnpd_cases() {
    {
        let d = miniupnpd(true, true);
        let (_, text) = probe_expect(["true", "false", "true"], 0.3);
        assert!(
            text.contains("NAT-PMP: answered but refused: network failure (result 3)"),
            "{text}"
        );
        // The probe created nothing: no mapping action reached miniupnpd.
        let log = d.text();
        assert!(log.contains("GetExternalIPAddress"), "{log}");
        assert!(
            !log.contains("AddPortMapping") && !log.contains("AddAnyPortMapping"),
            "{log}"
        );
        // Its refusals come back in words.
        let (_, text) = client(
            r#"try { map_port("10.77.0.1", UDP, 4000) } catch (e) { print(`err=${e.message}`) }"#,
        );
        assert!(text.contains("PCP: no resources (result 8)"), "{text}");
        assert!(text.contains("UPnP: action failed (error 501)"), "{text}");
    }
    {
        let _d = miniupnpd(true, false);
        probe_expect(["true", "false", "false"], 0.3);
    }
    {
        let _d = miniupnpd(false, true);
        probe_expect(["false", "false", "true"], 0.3);
    }
    // None: nothing listens.
    let (vals, text) = probe_expect(["false", "false", "false"], 1.1);
    assert!(get(&vals, "summary", &text).contains(
        "no port mapping protocol answered (UPnP, NAT-PMP, PCP) at 10.77.0.1 within 1 s"
    ));
    let started = Instant::now();
    let (_, text) = client(
        r#"try { map_port("10.77.0.1", UDP, 4000) } catch (e) { print(`err=${e.message}`) }"#,
    );
    assert!(
        text.contains(
            "err=no port mapping protocol answered (UPnP, NAT-PMP, PCP) at 10.77.0.1 within 1 s"
        ),
        "{text}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// Sends `payload` from the inet namespace to the lab's public address.
fn inet_send(port: u16, payload: &str) {
    let code = format!(
        "import socket; s=socket.socket(2,2); s.bind(('203.0.113.2',0)); s.sendto(b'{payload}',('203.0.113.100',{port}))"
    );
    let out = Command::new("ip")
        .args(["netns", "exec", &ns("inet"), "python3", "-c", &code])
        .output()
        .expect("inet send");
    assert!(out.status.success());
}

/// A mapping through the gateway `d` reaches a client pipe; `ending` is the script
/// text that ends it (close, drop, or nothing: the process exits).
fn inbound_case(d: &Daemon, via: &str, port: u16, ending: &str) {
    let script = format!(
        r#"let s = pipe_open(UDP, (), ["10.77.0.10", {port}]); s.subscribe();
let m = map_port("10.77.0.1", UDP, {port}, 0, 60);
print(`protocol=${{m.protocol}}`); print(`external=${{m.external}}`);
let got = s.recv(5); print(`got=${{got}}`);
{ending}
let after = s.recv(1.5); print(`after=${{after}}`);"#
    );
    let before = d.text().matches("\"map\"").count();
    let deletes = d.text().matches("\"delete\"").count();
    let handle = std::thread::spawn(move || client(&script));
    d.wait_for("\"map\"", before + 1);
    inet_send(port, "hello");
    if !ending.is_empty() {
        d.wait_for("\"delete\"", deletes + 1);
        inet_send(port, "late");
    }
    let (vals, text) = handle.join().expect("client thread");
    assert_eq!(get(&vals, "protocol", &text), via, "{text}");
    assert_eq!(
        get(&vals, "external", &text),
        format!("203.0.113.100:{port}")
    );
    assert_eq!(get(&vals, "got", &text), "b'hello'", "{text}");
    if !ending.is_empty() {
        assert_eq!(
            get(&vals, "after", &text),
            "",
            "the deleted mapping still forwards:\n{text}"
        );
    } else {
        // Leaving the shell deleted it.
        d.wait_for("\"delete\"", deletes + 1);
    }
    let rules = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns("router"),
            "nft",
            "list",
            "table",
            "ip",
            "p2pdgw",
        ])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&rules.stdout).contains("dnat"),
        "a rule is left"
    );
}

fn scripted_cases() {
    {
        let d = gateway(&["--pmp", "--pcp", "--upnp"]);
        probe_expect(["true", "true", "true"], 0.25);
        assert!(
            !d.text().contains("\"map\""),
            "the probe mapped something: {}",
            d.text()
        );
        inbound_case(&d, "PCP", 4001, "m.close();");
    }
    {
        let d = gateway(&["--pmp"]);
        let (_, text) = probe_expect(["false", "true", "false"], 0.3);
        assert!(text.contains("PCP: not spoken"), "{text}");
        inbound_case(&d, "NAT-PMP", 4002, "m = ();");
    }
    {
        let d = gateway(&[
            "--upnp",
            "--igd",
            "1",
            "--ssdp",
            "multicast",
            "--ssdp-port",
            "41000",
            "--media-first",
        ]);
        let (_, text) = probe_expect(["true", "false", "false"], 0.3);
        assert!(text.contains("IGD v1 (WANIPConnection:1)"), "{text}");
        inbound_case(&d, "UPnP", 4003, "");
    }
    {
        let _d = gateway(&["--pmp", "--pcp", "--pmp-result", "2", "--pcp-result", "12"]);
        let (_, text) = client(
            r#"try { map_port("10.77.0.1", UDP, 4000) } catch (e) { print(`kind=${e.kind}`); print(`err=${e.message}`) }"#,
        );
        assert!(text.contains("PCP: address mismatch (result 12)"), "{text}");
        assert!(
            text.contains("NAT-PMP: not authorized (result 2)"),
            "{text}"
        );
        assert!(text.contains("kind=refused"), "{text}");
    }
    {
        // Renewal at half the lifetime: 4 s granted, renewed by 2.5 s.
        let d = gateway(&["--pcp"]);
        client(
            r#"let m = map_port("10.77.0.1", TCP, 4004, 0, 4); sleep(2.6); print(`renewals=${m.renewals}`);"#,
        );
        d.wait_for("\"renew\"", 1);
        d.wait_for("\"delete\"", 1);
    }
}

#[test]
fn portmap_lab() {
    if !is_root() {
        return cannot_run("portmap_lab", "not root (needs ip netns, nft, miniupnpd)");
    }
    if Command::new("miniupnpd").arg("--version").output().is_err() {
        return cannot_run(
            "portmap_lab",
            "miniupnpd is not installed (apt-get install miniupnpd-nftables)",
        );
    }
    let _lab = match Lab::up() {
        Ok(l) => l,
        Err(e) => return cannot_run("portmap_lab", &e),
    };
    miniupnpd_cases();
    scripted_cases();
}
