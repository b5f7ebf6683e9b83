//! Loopback pipe throughput, driven by `benches/pipes.sh` (which interleaves runs, adds
//! P2PD 3.1.9 as the peer and prints ratios). Workloads follow p2pd-baseline.md §4.5.
//!
//! ```text
//! pipe_bench serve                          TCP and UDP echo servers on 127.0.0.1 (net::pipe)
//!                                           prints "tcp PORT udp PORT", runs until stdin closes
//! pipe_bench run IMPL TEST TCP_PORT UDP_PORT
//!                                           one measurement; prints messages per second
//! ```
//! IMPL: `rhai` (a script in a `Session`, as a REPL user writes it), `rust` (the
//! `net::pipe` API), `tokio` (plain tokio sockets). TEST: `tcp_pingpong`, `tcp_stream_1k`,
//! `tcp_stream_16k`, `udp_pingpong`, `udp_window`.

use p2pd::net::pipe::{Pipe, PipeOptions, Proto, echo_server};
use p2pd::script::{Cancel, MemorySink, Session, SessionOptions};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PINGPONG: usize = 2000;
const SMALL: usize = 64;
const WINDOW: usize = 32;
const WINDOW_MSGS: usize = 50_000;
const WAIT: Duration = Duration::from_secs(2);

/// (messages, size) of each workload.
fn shape(test: &str) -> Option<(usize, usize)> {
    Some(match test {
        "tcp_pingpong" | "udp_pingpong" => (PINGPONG, SMALL),
        "tcp_stream_1k" => (20_000, 1024),
        "tcp_stream_16k" => (4000, 16 * 1024),
        "udp_window" => (WINDOW_MSGS, 1024),
        _ => return None,
    })
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["serve"] => serve(&rt),
        ["run", imp, test, tcp, udp] => {
            let (n, size) = shape(test).unwrap_or_else(|| usage());
            let port = |p: &str| -> SocketAddr {
                format!("127.0.0.1:{p}").parse().unwrap_or_else(|_| usage())
            };
            let dest = if test.starts_with("tcp") {
                port(tcp)
            } else {
                port(udp)
            };
            let elapsed = match *imp {
                "rhai" => rhai(&rt, test, dest, n, size),
                "rust" => on_worker(&rt, rust(test.to_string(), dest, n, size)),
                "tokio" => on_worker(&rt, raw(test.to_string(), dest, n, size)),
                _ => usage(),
            };
            println!("{:.1}", n as f64 / elapsed.as_secs_f64());
        }
        _ => usage(),
    }
}

/// Run a client on the runtime's worker thread, like an asyncio client on its one loop:
/// `block_on` alone would poll it on the main thread, so a spawned reader task and the
/// sending loop would work the same socket from two threads.
fn on_worker(
    rt: &tokio::runtime::Runtime,
    client: impl Future<Output = Duration> + Send + 'static,
) -> Duration {
    rt.block_on(rt.spawn(client)).expect("client task")
}

fn usage() -> ! {
    eprintln!("usage: pipe_bench serve | pipe_bench run rhai|rust|tokio TEST TCP_PORT UDP_PORT");
    std::process::exit(2)
}

fn serve(rt: &tokio::runtime::Runtime) {
    let lo: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let (tcp, udp) = rt.block_on(async {
        let tcp = echo_server(Proto::Tcp, lo).await.expect("tcp echo");
        let udp = echo_server(Proto::Udp, lo).await.expect("udp echo");
        (tcp, udp)
    });
    println!(
        "tcp {} udp {}",
        tcp.local_addr().port(),
        udp.local_addr().port()
    );
    // Runs until the driver closes stdin.
    let mut sink = String::new();
    while std::io::stdin().read_line(&mut sink).is_ok_and(|n| n > 0) {}
    drop((tcp, udp));
}

/// The workloads as a script user writes them; `$N`, `$SIZE`, `$DEST` are filled in.
fn script(test: &str) -> &'static str {
    match test {
        "tcp_pingpong" | "udp_pingpong" => {
            r#"
            let p = pipe_open(PROTO, $DEST);
            let m = bytes(blob($SIZE, 109));
            for i in 0..$N {
                p.send(m);
                let got = 0;
                while got < $SIZE { got += p.recv(2).len(); }
            }
            p.close();"#
        }
        "tcp_stream_1k" | "tcp_stream_16k" => {
            r#"
            let p = pipe_open(PROTO, $DEST);
            let m = bytes(blob($SIZE, 109));
            let want = $N * $SIZE;
            let got = 0;
            for i in 0..$N {
                p.send(m);
                let r = p.recv(0);
                while r != () { got += r.len(); r = p.recv(0); }
            }
            while got < want { got += p.recv(2).len(); }
            p.close();"#
        }
        _ => {
            r#"
            let p = pipe_open(PROTO, $DEST);
            let m = bytes(blob($SIZE, 109));
            let sent = 0; let done = 0; let inflight = 0;
            while done < $N {
                while inflight < $WINDOW && sent < $N { p.send(m); sent += 1; inflight += 1; }
                let r = p.recv(1);
                if r == () { done += inflight; inflight = 0; } else { done += 1; inflight -= 1; }
            }
            p.close();"#
        }
    }
}

fn rhai(
    rt: &tokio::runtime::Runtime,
    test: &str,
    dest: SocketAddr,
    n: usize,
    size: usize,
) -> Duration {
    let sink = Arc::new(MemorySink::default());
    let mut session = Session::new(
        rt.handle().clone(),
        Cancel::new(),
        sink,
        SessionOptions::default(),
    );
    let proto = if test.starts_with("tcp") { "1" } else { "2" };
    let src = script(test)
        .replace("PROTO", proto)
        .replace("$DEST", &format!("\"{dest}\""))
        .replace("$N", &n.to_string())
        .replace("$SIZE", &size.to_string())
        .replace("$WINDOW", &WINDOW.to_string());
    let started = Instant::now();
    if let Err(e) = session.eval(&src) {
        eprintln!("{}", e.render("<bench>", &src));
        std::process::exit(1);
    }
    started.elapsed()
}

async fn rust(test: String, dest: SocketAddr, n: usize, size: usize) -> Duration {
    let proto = if test.starts_with("tcp") {
        Proto::Tcp
    } else {
        Proto::Udp
    };
    let local: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let p = Pipe::open(proto, Some(dest), local, PipeOptions::default())
        .await
        .expect("open");
    let sub = p
        .find_subscription(None, None)
        .expect("client subscription");
    let m = vec![b'm'; size];
    let recv = |t| {
        let p = p.clone();
        async move {
            p.recv(sub, t)
                .await
                .expect("recv")
                .map_or(0, |(_, d)| d.len())
        }
    };
    let started = Instant::now();
    match test.as_str() {
        "tcp_pingpong" | "udp_pingpong" => {
            for _ in 0..n {
                p.send(&m).await.expect("send");
                let mut got = 0;
                while got < size {
                    got += recv(WAIT).await;
                }
            }
        }
        "tcp_stream_1k" | "tcp_stream_16k" => {
            let reader = {
                let (p, want) = (p.clone(), n * size);
                tokio::spawn(async move {
                    let mut got = 0;
                    while got < want {
                        let chunk = p.recv(sub, WAIT).await.expect("recv");
                        got += chunk.map_or(0, |(_, d)| d.len());
                    }
                })
            };
            for _ in 0..n {
                p.send(&m).await.expect("send");
            }
            reader.await.expect("reader");
        }
        _ => {
            let mut w = Window::new(n);
            while !w.finished() {
                for _ in 0..w.refill() {
                    p.send(&m).await.expect("send");
                }
                w.answered(recv(Duration::from_secs(1)).await > 0);
            }
        }
    }
    let took = started.elapsed();
    p.close().await;
    took
}

async fn raw(test: String, dest: SocketAddr, n: usize, size: usize) -> Duration {
    let m = vec![b'm'; size];
    let mut buf = vec![0u8; 64 * 1024];
    let started = Instant::now();
    if test.starts_with("tcp") {
        let s = tokio::net::TcpStream::connect(dest).await.expect("connect");
        s.set_nodelay(true).expect("nodelay");
        let (mut r, mut w) = s.into_split();
        if test == "tcp_pingpong" {
            for _ in 0..n {
                w.write_all(&m).await.expect("write");
                r.read_exact(&mut buf[..size]).await.expect("read");
            }
        } else {
            let want = n * size;
            let reader = tokio::spawn(async move {
                let mut got = 0;
                while got < want {
                    got += r.read(&mut buf).await.expect("read");
                }
            });
            for _ in 0..n {
                w.write_all(&m).await.expect("write");
            }
            reader.await.expect("reader");
        }
        return started.elapsed();
    }
    let s = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind");
    s.connect(dest).await.expect("connect");
    if test == "udp_pingpong" {
        for _ in 0..n {
            s.send(&m).await.expect("send");
            while !recv(&s, &mut buf, WAIT).await {
                s.send(&m).await.expect("resend");
            }
        }
    } else {
        let mut w = Window::new(n);
        while !w.finished() {
            for _ in 0..w.refill() {
                s.send(&m).await.expect("send");
            }
            w.answered(recv(&s, &mut buf, Duration::from_secs(1)).await);
        }
    }
    started.elapsed()
}

/// The UDP window workload's count: keep [`WINDOW`] datagrams in flight until `n` are
/// answered; when a wait for a reply gives up, everything in flight counts as lost.
struct Window {
    n: usize,
    sent: usize,
    done: usize,
    inflight: usize,
}

impl Window {
    fn new(n: usize) -> Self {
        Window {
            n,
            sent: 0,
            done: 0,
            inflight: 0,
        }
    }

    fn finished(&self) -> bool {
        self.done >= self.n
    }

    /// How many to send now to fill the window again (counted as sent).
    fn refill(&mut self) -> usize {
        let more = (WINDOW - self.inflight).min(self.n - self.sent);
        self.sent += more;
        self.inflight += more;
        more
    }

    /// A wait for one reply ended: with it, or given up.
    fn answered(&mut self, got: bool) {
        if got {
            self.done += 1;
            self.inflight -= 1;
        } else {
            self.done += self.inflight;
            self.inflight = 0;
        }
    }
}

/// One datagram within `t`; false on timeout.
async fn recv(s: &tokio::net::UdpSocket, buf: &mut [u8], t: Duration) -> bool {
    tokio::time::timeout(t, s.recv(buf)).await.is_ok()
}
