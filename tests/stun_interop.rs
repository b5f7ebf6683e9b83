//! Interop with a third-party STUN implementation, coturn (Debian package `coturn`), on
//! loopback only: our client against `turnserver` (RFC 5780 mode on 127.0.0.1 + 127.0.0.2),
//! and coturn's `turnutils_stunclient` against our server. Without coturn installed the tests
//! SKIP loudly, except under CI (env `CI` set), where they FAIL.

mod common;

use common::netns::cannot_run;
use p2pd::net::stun::{Accept, ChangeRequest, RequestOptions, StunServer, binding, binding_tcp};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;

const RTO: Duration = Duration::from_millis(50);
const TIMEOUT: Duration = Duration::from_secs(3);
/// How long coturn may take to open its listeners.
const STARTUP: Duration = Duration::from_secs(10);

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Finds `program` on PATH, or explains why the test cannot run: panics under CI, returns
/// `None` (after a loud SKIP line) elsewhere.
fn require(program: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        let msg = format!(
            "`{program}` not found: install the Debian package `coturn` (apt-get install -y coturn)"
        );
        cannot_run("stun_interop", &msg);
    }
    found
}

/// A port free for UDP and TCP on both loopback IPs at the time of asking.
fn free_port(taken: &[u16]) -> u16 {
    loop {
        let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = probe.local_addr().unwrap().port();
        let all_free = !taken.contains(&port)
            && ["127.0.0.1", "127.0.0.2"].iter().all(|h| {
                let a = SocketAddr::new(ip(h), port);
                std::net::TcpListener::bind(a).is_ok()
                    && (*h == "127.0.0.1" || std::net::UdpSocket::bind(a).is_ok())
            });
        if all_free {
            return port;
        }
    }
}

/// A `turnserver` child, killed and reaped on drop.
struct Coturn {
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
    port: u16,
    alt_port: u16,
}

impl Coturn {
    fn args(port: u16, alt_port: u16, pidfile: &str) -> Vec<String> {
        [
            "-n", // no configuration file
            "-L",
            "127.0.0.1",
            "-L",
            "127.0.0.2",
            "-p",
            &port.to_string(),
            "--alt-listening-port",
            &alt_port.to_string(),
            "-z",
            "-S", // no auth, STUN only
            "--no-cli",
            "--no-tls",
            "--no-dtls",
            "-l",
            "stdout",
            "--simple-log",
            "--pidfile",
            pidfile,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    fn start(program: &PathBuf) -> Coturn {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port(&[]);
        let alt_port = free_port(&[port]);
        let log = dir.path().join("turnserver.log");
        let pidfile = dir.path().join("turnserver.pid");
        let args = Self::args(port, alt_port, pidfile.to_str().unwrap());
        eprintln!("starting: turnserver {}", args.join(" "));
        let out = std::fs::File::create(&log).unwrap();
        let err = out.try_clone().unwrap();
        let child = Command::new(program)
            .args(&args)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn turnserver");
        Coturn {
            child,
            log,
            _dir: dir,
            port,
            alt_port,
        }
    }

    fn addr(&self, host: &str, alt_port: bool) -> SocketAddr {
        SocketAddr::new(ip(host), if alt_port { self.alt_port } else { self.port })
    }

    /// Waits until coturn answers a Binding on the primary and the alternate address.
    async fn ready(&mut self) {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let started = Instant::now();
        loop {
            let short = Duration::from_millis(200);
            let a = binding(
                &socket,
                self.addr("127.0.0.1", false),
                RequestOptions::binding(),
                RTO,
                short,
            )
            .await;
            let b = binding(
                &socket,
                self.addr("127.0.0.2", true),
                RequestOptions::binding(),
                RTO,
                short,
            )
            .await;
            if a.is_ok() && b.is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "turnserver exited early ({status}); log:\n{}",
                    self.log_text()
                );
            }
            assert!(
                started.elapsed() < STARTUP,
                "turnserver not answering; log:\n{}",
                self.log_text()
            );
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Coturn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn our_client_against_coturn() {
    let Some(program) = require("turnserver") else {
        return;
    };
    let mut coturn = Coturn::start(&program);
    coturn.ready().await;
    let primary = coturn.addr("127.0.0.1", false);
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let local = socket.local_addr().unwrap();

    let r = binding(&socket, primary, RequestOptions::binding(), RTO, TIMEOUT)
        .await
        .unwrap();
    assert_eq!(
        (r.mapped, r.from, r.response_origin),
        (local, primary, Some(primary))
    );
    assert_eq!(r.other_address, Some(coturn.addr("127.0.0.2", true)));

    let table = [
        (ChangeRequest::PORT, coturn.addr("127.0.0.1", true)),
        (ChangeRequest::IP, coturn.addr("127.0.0.2", false)),
        (ChangeRequest::BOTH, coturn.addr("127.0.0.2", true)),
    ];
    for classic in [false, true] {
        for (change, expect) in table {
            let mut opts = RequestOptions::change(change).accept(Accept::Auto);
            opts.classic = classic;
            let r = binding(&socket, primary, opts, RTO, TIMEOUT)
                .await
                .unwrap_or_else(|e| {
                    panic!("{change:?} classic={classic}: {e}\n{}", coturn.log_text())
                });
            assert_eq!(r.from, expect, "{change:?} classic={classic}");
            assert_eq!(r.mapped, local);
            if classic {
                // coturn's RFC 3489 replies: MAPPED-ADDRESS, SOURCE-ADDRESS, CHANGED-ADDRESS.
                assert!(r.message.xor_mapped_address.is_none());
                assert_eq!(r.message.source_address, Some(expect));
                assert_eq!(
                    r.message.changed_address,
                    Some(coturn.addr("127.0.0.2", true))
                );
            } else {
                assert_eq!(r.response_origin, Some(expect));
            }
        }
    }

    let r = binding_tcp(None, primary, RequestOptions::binding(), TIMEOUT)
        .await
        .unwrap();
    assert_eq!((r.mapped, r.from), (r.local, primary));
}

#[tokio::test]
async fn coturn_client_against_our_server() {
    let Some(program) = require("turnutils_stunclient") else {
        return;
    };
    let server = StunServer::start(
        "127.0.0.1:0".parse().unwrap(),
        Some("127.0.0.2:0".parse().unwrap()),
    )
    .await
    .unwrap();
    let addrs = server.local_addrs().to_vec();
    let args = [
        "-f".to_string(),
        "-p".into(),
        addrs[0].port().to_string(),
        "-L".into(),
        "127.0.0.1".into(),
        "127.0.0.1".into(),
    ];
    eprintln!("running: turnutils_stunclient {}", args.join(" "));
    let output = tokio::time::timeout(
        Duration::from_secs(20),
        tokio::process::Command::new(program)
            .args(&args)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("turnutils_stunclient finished in time")
    .expect("run turnutils_stunclient");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    eprintln!("{text}");
    // The client prints the reflexive address our server put in XOR-MAPPED-ADDRESS; on
    // loopback that is its own socket, 127.0.0.1:<its port>.
    let mapped: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split("UDP reflexive addr: ").nth(1))
        .map(str::trim)
        .collect();
    assert!(
        mapped.len() >= 2,
        "no reflexive addresses in output:\n{text}"
    );
    // Responses 1 and 2 answer the same client socket from different server sockets and
    // transaction ids: the XOR decoding must agree.
    assert_eq!(mapped[0], mapped[1], "{text}");
    for m in &mapped {
        let m: SocketAddr = m.parse().unwrap_or_else(|_| panic!("bad address {m:?}"));
        assert_eq!(m.ip(), ip("127.0.0.1"));
        assert_ne!(m.port(), 0);
    }
    // RFC 5780 parts: our RESPONSE-ORIGIN and OTHER-ADDRESS as the client decoded them.
    assert!(
        text.contains(&format!("Response origin: : {}", addrs[0])),
        "{text}"
    );
    assert!(
        text.contains(&format!("Other addr: : {}", addrs[3])),
        "{text}"
    );
    assert!(output.status.success(), "exit status {}", output.status);
}
