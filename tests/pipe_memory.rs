//! What a TCP pipe holds while it waits. Ten thousand connections are a load the shell must
//! carry (the task benchmark, the soak), and the session's memory limit counts allocated
//! heap, not touched pages: a 64 KiB read buffer per pipe put 10,000 client and 10,000
//! server pipes past the default 1 GiB limit. A pipe's buffer starts small and grows only
//! when reads fill it, so a bulk stream still arrives whole. UDP pipes read into one
//! buffer per thread and keep each datagram at its size.
//! One test per file: the heap counter is process-wide.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use p2pd::net::pipe::{Pipe, PipeOptions, Proto};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

const WAIT: Duration = Duration::from_secs(20);
const PIPES: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_pipes_hold_little_and_a_bulk_stream_still_arrives_whole() {
    let lo: SocketAddr = (Ipv4Addr::LOCALHOST, 0).into();
    let listener = TcpListener::bind(lo).await.unwrap();
    let dest = listener.local_addr().unwrap();

    // Warm up what every pipe shares (the runtime's timers, the regex cache) first.
    let first = Pipe::open(Proto::Tcp, Some(dest), lo, PipeOptions::default())
        .await
        .unwrap();
    let (mut first_peer, _) = listener.accept().await.unwrap();

    let before = p2pd::heap::live();
    let mut pipes = Vec::new();
    let mut peers = Vec::new();
    for _ in 0..PIPES {
        pipes.push(
            Pipe::open(Proto::Tcp, Some(dest), lo, PipeOptions::default())
                .await
                .unwrap(),
        );
        peers.push(listener.accept().await.unwrap().0);
    }
    // Each peer says something small, so every pipe has read once.
    for (k, peer) in peers.iter_mut().enumerate() {
        peer.write_all(format!("hello {k}").as_bytes())
            .await
            .unwrap();
    }
    for (k, pipe) in pipes.iter().enumerate() {
        let sub = pipe.subscribe(None, None).unwrap();
        let (_, got) = pipe.recv(sub, WAIT).await.unwrap().expect("a message");
        assert_eq!(got, format!("hello {k}").as_bytes());
    }
    let per_pipe = p2pd::heap::live().saturating_sub(before) / PIPES;
    assert!(
        per_pipe < 24 * 1024,
        "an idle TCP pipe holds {per_pipe} bytes of heap; a 64 KiB read buffer each would be \
         65536 or more"
    );

    // UDP pipes that have each had a datagram: they read into a buffer per thread.
    let sender = tokio::net::UdpSocket::bind(lo).await.unwrap();
    let before = p2pd::heap::live();
    let mut udp = Vec::new();
    for _ in 0..PIPES {
        udp.push(
            Pipe::open(Proto::Udp, None, lo, PipeOptions::default())
                .await
                .unwrap(),
        );
    }
    for (k, pipe) in udp.iter().enumerate() {
        let sub = pipe.subscribe(None, None).unwrap();
        let sent = format!("datagram {k}");
        sender
            .send_to(sent.as_bytes(), pipe.local_addr())
            .await
            .unwrap();
        let (from, got) = pipe.recv(sub, WAIT).await.unwrap().expect("a datagram");
        assert_eq!(
            (from, got),
            (sender.local_addr().unwrap(), sent.into_bytes())
        );
    }
    let per_pipe = p2pd::heap::live().saturating_sub(before) / PIPES;
    assert!(
        per_pipe < 24 * 1024,
        "an idle UDP pipe holds {per_pipe} bytes of heap; a 64 KiB receive buffer each would \
         be 65536 or more"
    );
    // The largest datagram still arrives whole.
    let big = vec![7u8; 65_507];
    let sub = udp[0].find_subscription(None, None).unwrap();
    sender.send_to(&big, udp[0].local_addr()).await.unwrap();
    let (_, got) = udp[0]
        .recv(sub, WAIT)
        .await
        .unwrap()
        .expect("the big datagram");
    assert!(
        got == big,
        "a 65,507-byte datagram arrived as {} bytes",
        got.len()
    );

    // A stream of 4 MiB through the first pipe: every byte, in order.
    let sub = first.subscribe(None, None).unwrap();
    let bulk: Vec<u8> = (0..4u32 << 20).map(|i| (i % 251) as u8).collect();
    let sent = bulk.clone();
    let writer = tokio::spawn(async move {
        first_peer.write_all(&sent).await.unwrap();
        first_peer.shutdown().await.unwrap();
    });
    let mut got = Vec::with_capacity(bulk.len());
    let mut largest = 0;
    while got.len() < bulk.len() {
        let (_, chunk) = first
            .recv(sub, WAIT)
            .await
            .unwrap()
            .expect("the stream goes on");
        largest = largest.max(chunk.len());
        got.extend_from_slice(&chunk);
    }
    writer.await.unwrap();
    assert!(got == bulk, "the bulk stream arrived changed");
    assert!(
        largest > 2048,
        "reads never grew past the first buffer (largest {largest} bytes)"
    );
    drop((pipes, udp));
}
