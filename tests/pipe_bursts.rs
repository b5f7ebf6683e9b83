//! TCP sends in bursts, which the pipe combines in user space (`outbox.rs`): every byte
//! arrives once, in order, each message whole, also from several senders at once; `close`
//! writes what is buffered before the FIN, and so does dropping the pipe; a peer that stops
//! reading makes `send` time out, and one that resets the connection makes a later `send`
//! fail, instead of bytes vanishing.
//! The peer is a plain tokio socket, so nothing of the pipe is on the reading side.

#[macro_use]
mod common;

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use p2pd::net::pipe::{Error, Pipe, PipeOptions, Proto};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpSocket, TcpStream};

const WAIT: Duration = Duration::from_secs(20);

fn lo(v6: bool) -> SocketAddr {
    if v6 {
        (Ipv6Addr::LOCALHOST, 0).into()
    } else {
        (Ipv4Addr::LOCALHOST, 0).into()
    }
}

/// A client pipe connected to a plain listener, and the accepted plain stream, whose
/// receive buffer is `window` bytes if given.
async fn connected(v6: bool, opts: PipeOptions, window: Option<u32>) -> (Pipe, TcpStream) {
    let socket = if v6 {
        TcpSocket::new_v6()
    } else {
        TcpSocket::new_v4()
    }
    .unwrap();
    if let Some(window) = window {
        socket.set_recv_buffer_size(window).unwrap();
    }
    socket.bind(lo(v6)).unwrap();
    let listener = socket.listen(1).unwrap();
    let client = Pipe::open(
        Proto::Tcp,
        Some(listener.local_addr().unwrap()),
        lo(v6),
        opts,
    )
    .await
    .unwrap();
    let (peer, _) = listener.accept().await.unwrap();
    (client, peer)
}

async fn read_to_end(mut peer: TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    tokio::time::timeout(WAIT, peer.read_to_end(&mut got))
        .await
        .expect("EOF in time")
        .expect("read");
    got
}

/// Message `i`: its number, then filler that depends on it.
fn message(i: u32, len: usize) -> Vec<u8> {
    let mut m = i.to_be_bytes().to_vec();
    m.extend((0..len - 4).map(|k| (i as usize + k) as u8));
    m
}

both_families_async!(
    a_burst_arrives_whole_and_in_order,
    concurrent_senders_never_split_a_message,
    close_writes_the_burst_before_the_fin,
    dropping_the_pipe_still_writes_the_burst,
    a_peer_that_stops_reading_makes_send_time_out,
    a_reset_is_reported_by_a_later_send,
);

async fn a_burst_arrives_whole_and_in_order(v6: bool) {
    let (client, peer) = connected(v6, PipeOptions::default(), None).await;
    let reader = tokio::spawn(read_to_end(peer));
    let mut want = Vec::new();
    // Sizes that straddle the high-water mark and the kernel's own segments.
    for (i, len) in (0..6000u32).zip([7usize, 100, 1024, 1500, 20_000].into_iter().cycle()) {
        let m = message(i, len);
        client.send(&m).await.unwrap();
        want.extend_from_slice(&m);
    }
    client.close().await;
    let got = reader.await.unwrap();
    assert_eq!(got.len(), want.len());
    assert!(got == want, "bytes differ from what was sent");
}

async fn concurrent_senders_never_split_a_message(v6: bool) {
    const LEN: usize = 1000;
    const EACH: usize = 800;
    let (client, peer) = connected(v6, PipeOptions::default(), None).await;
    let reader = tokio::spawn(read_to_end(peer));
    let senders: Vec<_> = (0..4u8)
        .map(|id| {
            let client = client.clone();
            tokio::spawn(async move {
                for _ in 0..EACH {
                    client.send(&[id; LEN]).await.unwrap();
                }
            })
        })
        .collect();
    for s in senders {
        s.await.unwrap();
    }
    client.close().await;
    let got = reader.await.unwrap();
    assert_eq!(got.len(), 4 * EACH * LEN);
    let mut per_sender = [0usize; 4];
    for record in got.chunks(LEN) {
        let id = record[0];
        assert!(record.iter().all(|&b| b == id), "a message was split");
        per_sender[usize::from(id)] += 1;
    }
    assert_eq!(per_sender, [EACH; 4]);
}

async fn close_writes_the_burst_before_the_fin(v6: bool) {
    let (client, peer) = connected(v6, PipeOptions::default(), None).await;
    // Not reading yet: the burst is in the pipe's outbox and the kernel when close starts.
    let m = vec![b'z'; 1024];
    for _ in 0..3000 {
        client.send(&m).await.unwrap();
    }
    let reader = tokio::spawn(read_to_end(peer));
    client.close().await;
    assert!(!client.is_running());
    assert_eq!(reader.await.unwrap().len(), 3000 * 1024);
}

async fn dropping_the_pipe_still_writes_the_burst(v6: bool) {
    const TOTAL: usize = 6 * 1024 * 1024;
    // A small window, so the kernel's buffers fill and the pipe's outbox holds the rest.
    let (client, mut peer) = connected(v6, PipeOptions::default(), Some(16 * 1024)).await;
    // A slow reader: the sender keeps waiting for room in the outbox.
    let reader = tokio::spawn(async move {
        let (mut got, mut buf) = (0, vec![0u8; 16 * 1024]);
        loop {
            match tokio::time::timeout(WAIT, peer.read(&mut buf)).await {
                Ok(Ok(0)) => return got,
                Ok(Ok(n)) => got += n,
                other => panic!("read: {other:?}"),
            }
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
    });
    let m = vec![b'd'; 1024];
    for _ in 0..TOTAL / 1024 {
        client.send(&m).await.unwrap();
    }
    drop(client);
    // What neither the kernel nor the peer had taken at the drop is written afterwards,
    // then the connection ends.
    assert_eq!(reader.await.unwrap(), TOTAL);
}

async fn a_peer_that_stops_reading_makes_send_time_out(v6: bool) {
    let opts = PipeOptions {
        send_timeout: Duration::from_millis(300),
        ..PipeOptions::default()
    };
    let (client, _peer) = connected(v6, opts, None).await;
    let m = vec![b's'; 64 * 1024];
    // The kernel's buffers take some megabytes first; then sends must fail, not hang.
    let failed = tokio::time::timeout(WAIT, async {
        loop {
            if let Err(e) = client.send(&m).await {
                return e;
            }
        }
    })
    .await
    .expect("send gave up in time");
    assert!(matches!(failed, Error::TimedOut { .. }), "{failed:?}");
    assert!(failed.to_string().contains("timed out"), "{failed}");
    client.close().await;
}

async fn a_reset_is_reported_by_a_later_send(v6: bool) {
    let (client, peer) = connected(v6, PipeOptions::default(), None).await;
    // Linger 0: closing sends RST instead of FIN.
    peer.set_zero_linger().unwrap();
    drop(peer);
    let m = vec![b'r'; 1024];
    let failed = tokio::time::timeout(WAIT, async {
        loop {
            match client.send(&m).await {
                Err(e) => return e,
                Ok(()) => tokio::task::yield_now().await,
            }
        }
    })
    .await
    .expect("send failed in time");
    assert!(
        matches!(failed, Error::Broken { .. } | Error::Closed { .. }),
        "{failed:?}"
    );
}
