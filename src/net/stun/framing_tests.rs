//! The prefix decision on real and hostile first bytes, and the reader that applies it.

use super::*;
use crate::net::stun::{Repr, TransactionId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn binding_request(classic: bool) -> Vec<u8> {
    let id = if classic {
        TransactionId::random_classic()
    } else {
        TransactionId::random()
    };
    Repr::binding_request(id.unwrap()).to_bytes().unwrap()
}

/// A header with this type, length and cookie, and a zero transaction id.
fn header(msg_type: u16, len: u16, cookie: u32) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(&msg_type.to_be_bytes());
    h.extend_from_slice(&len.to_be_bytes());
    h.extend_from_slice(&cookie.to_be_bytes());
    h.extend_from_slice(&[0; 12]);
    h
}

#[test]
fn real_requests_pass_once_the_header_is_there() {
    for classic in [false, true] {
        let req = binding_request(classic);
        for n in 0..HEADER_LEN {
            assert_eq!(check_prefix(&req[..n]), Prefix::Incomplete, "{n} bytes");
        }
        assert_eq!(
            check_prefix(&req[..HEADER_LEN]),
            Prefix::Message { len: req.len() }
        );
        // Bytes past the header (the body, the next message) do not change the answer.
        assert_eq!(check_prefix(&req), Prefix::Message { len: req.len() });
    }
}

#[test]
fn non_stun_is_refused_at_the_first_byte_that_tells() {
    let cases: &[(&[u8], usize, NotStun)] = &[
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 1, NotStun::TypeBits),
        (
            b"\x16\x03\x02\x00\x01\x00\x01\xfc\x03\x03",
            8,
            NotStun::NoCookie,
        ),
        (b"SSH-2.0-OpenSSH_9.2\r\n", 1, NotStun::TypeBits),
        (&[0x00, 0x01, 0x00, 0x03], 4, NotStun::Unaligned),
        (&[0x00, 0x01, 0xff, 0xfc], 4, NotStun::TooLong),
    ];
    for &(bytes, at, why) in cases {
        for n in 0..at {
            assert_eq!(check_prefix(&bytes[..n]), Prefix::Incomplete, "{bytes:?}");
        }
        assert_eq!(
            check_prefix(&bytes[..at]),
            Prefix::NotStun(why),
            "{bytes:?}"
        );
    }
}

#[test]
fn the_length_cap_is_what_the_udp_side_reads() {
    let biggest = (MAX_REQUEST_LEN - HEADER_LEN) as u16;
    assert_eq!(
        check_prefix(&header(0x0001, biggest, MAGIC_COOKIE)),
        Prefix::Message {
            len: MAX_REQUEST_LEN
        }
    );
    assert_eq!(
        check_prefix(&header(0x0001, biggest + 4, MAGIC_COOKIE)),
        Prefix::NotStun(NotStun::TooLong)
    );
}

#[test]
fn without_the_cookie_only_rfc3489_types_count() {
    for t in CLASSIC_TYPES {
        assert_eq!(
            check_prefix(&header(t, 8, 0x1234_5678)),
            Prefix::Message { len: 28 }
        );
    }
    // A TURN Allocate (0x0003) is STUN only with the cookie.
    assert_eq!(
        check_prefix(&header(0x0003, 8, MAGIC_COOKIE)),
        Prefix::Message { len: 28 }
    );
    assert_eq!(
        check_prefix(&header(0x0003, 8, 0x1234_5678)),
        Prefix::NotStun(NotStun::NoCookie)
    );
}

#[test]
fn every_prefix_of_random_bytes_gets_an_answer_without_panicking() {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    for _ in 0..20_000 {
        let mut bytes = [0u8; 24];
        for b in &mut bytes {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            *b = state as u8;
        }
        bytes[0] &= 0x3f; // get past the first check most of the time
        for n in 0..=bytes.len() {
            if let Prefix::Message { len } = check_prefix(&bytes[..n]) {
                assert!(n >= HEADER_LEN && (HEADER_LEN..=MAX_REQUEST_LEN).contains(&len));
            }
        }
    }
}

const IDLE: Duration = Duration::from_millis(300);

/// A header and then its body, as a client of `read_header` reads a request.
async fn read_request<R: AsyncRead + Unpin>(
    stream: &mut R,
    idle: Duration,
    frame: Duration,
) -> io::Result<Vec<u8>> {
    let header = read_header(stream, idle, frame).await?;
    let mut message = header.bytes.to_vec();
    message.resize(header.len, 0);
    tokio::time::timeout_at(
        header.deadline,
        stream.read_exact(&mut message[HEADER_LEN..]),
    )
    .await
    .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
    Ok(message)
}

#[tokio::test]
async fn read_request_reads_messages_back_to_back() {
    let (mut client, mut server) = tokio::io::duplex(4096);
    let (a, b) = (binding_request(false), binding_request(true));
    client
        .write_all(&[a.clone(), b.clone()].concat())
        .await
        .unwrap();
    assert_eq!(read_request(&mut server, IDLE, IDLE).await.unwrap(), a);
    assert_eq!(read_request(&mut server, IDLE, IDLE).await.unwrap(), b);
    drop(client);
    let end = read_request(&mut server, IDLE, IDLE).await.unwrap_err();
    assert_eq!(end.kind(), io::ErrorKind::UnexpectedEof);
}

#[tokio::test]
async fn read_request_refuses_http_before_the_rest_arrives() {
    let (mut client, mut server) = tokio::io::duplex(4096);
    // One byte is enough to refuse: the reader must not wait for 20.
    client.write_all(b"G").await.unwrap();
    let started = std::time::Instant::now();
    let err = read_request(&mut server, IDLE, IDLE).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    assert!(started.elapsed() < IDLE);
}

#[tokio::test]
async fn read_request_times_out_idle_and_partial_frames() {
    let (_client, mut server) = tokio::io::duplex(4096);
    let err = read_request(&mut server, IDLE, IDLE).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut);

    // A slow sender keeps no frame open longer than `frame`, however often it sends.
    let (mut client, mut server) = tokio::io::duplex(4096);
    let req = binding_request(false);
    let drip = tokio::spawn(async move {
        for b in req {
            if client.write_all(&[b]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
    });
    let started = std::time::Instant::now();
    let err = read_request(&mut server, Duration::from_secs(5), IDLE)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    let took = started.elapsed();
    assert!(took >= IDLE && took < IDLE * 3, "{took:?}");
    drip.abort();
}
