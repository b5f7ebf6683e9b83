//! `Interface().start()` behind a real NAT: network namespaces built by `tests/natlab/lab.sh`
//! (variant `masquerade`): a client 10.77.0.10 behind a router that masquerades to
//! 203.0.113.100, and an "internet" namespace running the built-in STUN server on
//! 203.0.113.1:3478 / 203.0.113.2:3479. The REPL binary runs inside the client namespace and
//! prints `repr(i)`; the route must map the private NIC address to the router's public one.
//!
//! Needs root. Without it (or when namespaces cannot be made) the test is skipped with a
//! loud message, except under CI (`CI` set), where that is a failure.

mod common;

use common::netns::{cannot_run, is_root, run};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

const CLIENT_IP: &str = "10.77.0.10";
const PUBLIC_IP: &str = "203.0.113.100";

/// The lab, named uniquely so parallel labs (other tests, other users) do not collide;
/// `down` runs on drop.
struct Lab {
    prefix: String,
}

fn lab_sh() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/natlab/lab.sh")
}

impl Lab {
    fn command(&self) -> Command {
        let mut c = Command::new("bash");
        c.arg(lab_sh()).env("P2PD_LAB_PREFIX", &self.prefix);
        c
    }

    /// Builds the masquerade lab with the STUN server in the inet namespace.
    fn up() -> Result<Lab, String> {
        let lab = Lab {
            prefix: format!("p2if{}-", std::process::id()),
        };
        let out = run(
            lab.command().args([
                "up",
                "masquerade",
                "--",
                env!("CARGO_BIN_EXE_p2pd-repl"),
                "stun-server",
                "203.0.113.1:3478",
                "203.0.113.2:3479",
            ]),
            Duration::from_secs(60),
        );
        if out.status.success() {
            Ok(lab)
        } else {
            Err(format!(
                "lab.sh up failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// Runs the REPL binary with `args` in the client namespace.
    fn client(&self, args: &[&str]) -> Output {
        let mut c = self.command();
        c.args(["exec", "client", env!("CARGO_BIN_EXE_p2pd-repl")])
            .args(args);
        run(&mut c, Duration::from_secs(30))
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = run(self.command().arg("down"), Duration::from_secs(30));
    }
}

const TEST: &str = "netns_interface";

const SCRIPT: &str = r#"
let i = await Interface().start();
print(repr(i));
print("---");
print(`nic=${i.route(IP4).nic()}`);
print(`ext=${i.route(IP4).ext()}`);
// 203.0.113.0/24 is a documentation range, so the only expected note is "not public".
print(`warnings=${i.warnings.filter(|w| !w.contains("is not public")).len()}`);
stun_servers(["203.0.113.1:3478", "203.0.113.2:3479"]);
let j = await Interface().start();
print(`agreed=${j.route(IP4).ext()}`);
let route = await j.route(IP4).bind();
print(`bound=${route.bind_addr}`);
print(`lookup=${stun_lookup("203.0.113.2:3479", route).mapped}`);
stun_servers(["203.0.113.9:3478"]);
let k = await Interface().start(0.5);
print(`silent_ext=${k.route(IP4).ext()}`);
print(`silent=${k.warnings.filter(|w| w.contains("203.0.113.9:3478: no reply within 0.5 s")).len()}`);
"#;

#[test]
fn default_interface_behind_masquerade_sees_the_public_address() {
    if !is_root() {
        cannot_run(TEST, "needs root for network namespaces");
        return;
    }
    let lab = match Lab::up() {
        Ok(lab) => lab,
        Err(why) => {
            cannot_run(TEST, &why);
            return;
        }
    };
    let out = lab.client(&["--stun", "203.0.113.1:3478", "-e", SCRIPT]);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "script failed:\n{stdout}\n{stderr}");

    let (repr, rest) = stdout
        .split_once("\n---\n")
        .unwrap_or_else(|| panic!("no repr in:\n{stdout}"));
    let json = repr
        .trim()
        .strip_prefix("Interface.from_dict(")
        .and_then(|r| r.strip_suffix(')'))
        .unwrap_or_else(|| panic!("not a repr: {repr}"));
    let dict: serde_json::Value = serde_json::from_str(json).expect("repr holds JSON");
    assert_eq!(dict["name"], "eth0", "{repr}");
    let route = &dict["rp"]["2"][0];
    assert_eq!(route["nic_ips"][0]["ip"], CLIENT_IP, "{repr}");
    assert_eq!(route["ext_ips"][0]["ip"], PUBLIC_IP, "{repr}");
    assert_eq!(
        dict["rp"]["10"],
        serde_json::json!([]),
        "IPv6 is off in the lab"
    );

    let lines: Vec<&str> = rest.lines().collect();
    let want = [
        format!("nic={CLIENT_IP}"),
        format!("ext={PUBLIC_IP}"),
        "warnings=0".to_string(),
        format!("agreed={PUBLIC_IP}"),
        format!("bound={CLIENT_IP}:0"),
    ];
    for w in &want {
        assert!(lines.contains(&w.as_str()), "missing {w:?} in:\n{rest}");
    }
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&format!("lookup={PUBLIC_IP}:"))),
        "{rest}"
    );
    assert!(lines.contains(&"silent_ext="), "{rest}");
    assert!(lines.contains(&"silent=1"), "{rest}");
}
