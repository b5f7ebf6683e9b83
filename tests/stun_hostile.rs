//! The built-in STUN server's TCP side against hostile peers, on loopback: bytes that are not
//! STUN close the connection at once, idle and half-sent requests time out, past the
//! connection cap the longest idle connection goes, UDP keeps answering meanwhile, and a few
//! hundred such connections keep a `p2pd-repl stun-server` process under 30 MB.
//! (`benches/soak.sh` repeats the last one with 10,000 connections.)

use p2pd::net::stun::{
    HEADER_LEN, MAGIC_COOKIE, MAX_REQUEST_LEN, Packet, Repr, RequestOptions, ServerConfig,
    StunServer, TransactionId, binding, binding_tcp,
};
use std::io::BufRead;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

const RTO: Duration = Duration::from_millis(50);
const TIMEOUT: Duration = Duration::from_secs(3);

/// The most a test process may need open at once here: raise the soft limit to the hard one.
fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

async fn server(timeout: Duration, cap: usize) -> StunServer {
    let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), None);
    config.tcp_timeout = timeout;
    config.tcp_max_connections = cap;
    StunServer::start_config(config).await.unwrap()
}

/// A STUN header announcing the longest body the server accepts, and part of that body.
fn stalled_request() -> Vec<u8> {
    let mut h = vec![0x00, 0x01];
    h.extend_from_slice(&((MAX_REQUEST_LEN - HEADER_LEN) as u16).to_be_bytes());
    h.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
    h.extend_from_slice(&[7; 12]);
    h.extend_from_slice(&[0; 1000]);
    h
}

/// True once the server closed `stream` (EOF or reset) within `wait`.
async fn closed_within(stream: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 64];
    match tokio::time::timeout(wait, stream.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => true,
        Ok(Ok(_)) => panic!("the server answered a request that was not one"),
        Err(_) => false,
    }
}

#[tokio::test]
async fn non_stun_bytes_close_the_connection_at_once() {
    let server = server(Duration::from_secs(10), 64).await;
    let addr = server.local_addrs()[0];
    let mut too_long = vec![0x00, 0x01, 0xff, 0xfc];
    too_long.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
    let hostile: [&[u8]; 4] = [
        b"GET / HTTP/1.1\r\nHost: stun\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", // a TLS ClientHello's start
        b"SSH-2.0-OpenSSH_9.2\r\n",
        &too_long,
    ];
    for bytes in hostile {
        let started = Instant::now();
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(bytes).await.unwrap();
        // Far sooner than the 10 s timeout: the bytes alone decided.
        assert!(
            closed_within(&mut s, Duration::from_secs(2)).await,
            "{bytes:?} kept open"
        );
        assert!(started.elapsed() < Duration::from_secs(2));
    }
    // A real client still gets its answer.
    let r = binding_tcp(None, addr, RequestOptions::binding(), TIMEOUT)
        .await
        .unwrap();
    assert_eq!(r.from, addr);
}

/// A Binding request with a body (SOFTWARE and FINGERPRINT), as bytes.
fn request_with_body() -> Vec<u8> {
    let mut r = Repr::binding_request(TransactionId::random().unwrap());
    r.software = Some("a client that sends its request in pieces".into());
    r.fingerprint = true;
    r.to_bytes().unwrap()
}

#[tokio::test]
async fn a_request_sent_in_pieces_is_answered() {
    let server = server(Duration::from_secs(10), 64).await;
    let addr = server.local_addrs()[0];
    let req = request_with_body();
    let mut s = TcpStream::connect(addr).await.unwrap();
    // Part of the header, the rest of it and part of the body, then the rest.
    for piece in [&req[..7], &req[7..30], &req[30..]] {
        s.write_all(piece).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut reply = vec![0u8; 512];
    let n = tokio::time::timeout(TIMEOUT, s.read(&mut reply))
        .await
        .unwrap()
        .unwrap();
    let parsed = Repr::parse(&Packet::new_checked(&reply[..n]).unwrap()).unwrap();
    assert_eq!(parsed.transaction_id.header_key()[4..], req[8..20]);
}

#[tokio::test]
async fn a_body_cut_short_by_the_end_of_the_stream_closes_at_once() {
    let server = server(Duration::from_secs(10), 64).await;
    let req = request_with_body();
    let mut s = TcpStream::connect(server.local_addrs()[0]).await.unwrap();
    s.write_all(&req[..req.len() - 8]).await.unwrap();
    s.shutdown().await.unwrap();
    // Far sooner than the 10 s timeout: the end of the stream decides.
    assert!(closed_within(&mut s, Duration::from_secs(2)).await);
}

#[tokio::test]
async fn idle_and_half_sent_requests_time_out() {
    let timeout = Duration::from_millis(300);
    let server = server(timeout, 64).await;
    let addr = server.local_addrs()[0];
    let started = Instant::now();
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let mut half = TcpStream::connect(addr).await.unwrap();
    half.write_all(&stalled_request()[..10]).await.unwrap();
    let mut stalled = TcpStream::connect(addr).await.unwrap();
    stalled.write_all(&stalled_request()).await.unwrap();
    for s in [&mut silent, &mut half, &mut stalled] {
        assert!(closed_within(s, Duration::from_secs(3)).await);
    }
    let took = started.elapsed();
    assert!(took >= timeout && took < Duration::from_secs(3), "{took:?}");
    // Their places are given back.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(server.tcp_connections(), 0);
}

#[tokio::test]
async fn past_the_cap_the_longest_idle_goes_and_udp_keeps_answering() {
    raise_fd_limit();
    const CAP: usize = 50;
    const HOSTILE: usize = 300;
    let server = server(Duration::from_secs(30), CAP).await;
    let addr = server.local_addrs()[0];

    // UDP bindings all along, from another task.
    let udp = tokio::spawn(async move {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mut answered = 0;
        for _ in 0..40 {
            binding(&socket, addr, RequestOptions::binding(), RTO, TIMEOUT)
                .await
                .expect("UDP answered during the TCP flood");
            answered += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        answered
    });

    let mut streams = Vec::new();
    let mut most = 0;
    for _ in 0..HOSTILE {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(&stalled_request()).await.unwrap();
        streams.push(s);
        most = most.max(server.tcp_connections());
    }
    assert!(most <= CAP, "{most} connections open, cap {CAP}");
    // The oldest were closed to make room, the newest are still being served.
    let (old, new) = streams.split_at_mut(HOSTILE - CAP);
    for s in old.iter_mut() {
        assert!(closed_within(s, Duration::from_secs(5)).await);
    }
    assert!(!closed_within(&mut new[CAP - 1], Duration::from_millis(100)).await);
    assert_eq!(udp.await.unwrap(), 40);

    // A client arriving now evicts an idle one and is answered.
    let r = binding_tcp(None, addr, RequestOptions::binding(), TIMEOUT)
        .await
        .unwrap();
    assert_eq!(r.from, addr);
    assert!(server.tcp_connections() <= CAP);
}

/// VmRSS of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Kills the child when the test ends, pass or fail.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn a_few_hundred_hostile_connections_keep_the_server_small() {
    raise_fd_limit();
    let mut child = Child(
        std::process::Command::new(env!("CARGO_BIN_EXE_p2pd-repl"))
            .args(["stun-server", "--max-connections", "1000", "127.0.0.1:0"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    std::io::BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr: SocketAddr = line
        .split_whitespace()
        .nth(4)
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    let pid = child.0.id();
    let before = rss_kib(pid);

    let mut streams = Vec::new();
    for _ in 0..400 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(&stalled_request()).await.unwrap();
        streams.push(s);
    }
    // Every connection is held by the server (none timed out, none evicted).
    tokio::time::sleep(Duration::from_millis(300)).await;
    for s in streams.iter_mut().step_by(50) {
        assert!(!closed_within(s, Duration::from_millis(20)).await);
    }
    let during = rss_kib(pid);
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    binding(&socket, addr, RequestOptions::binding(), RTO, TIMEOUT)
        .await
        .expect("UDP answers with 400 TCP connections held");
    eprintln!("stun-server RSS: {before} KiB idle, {during} KiB with 400 hostile connections");
    assert!(during < 30 * 1024, "{during} KiB");
}
