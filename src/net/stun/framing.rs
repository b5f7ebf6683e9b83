//! Reading one STUN message from a byte stream (RFC 5389 §7.2.2): STUN over TCP has no
//! framing of its own, so the header's length field says where a message ends. Shared by
//! the client and the server's TCP side.
//!
//! A server cannot trust that length: anyone can connect and announce 65535 bytes, or send
//! an HTTP request. [`check_prefix`] decides from the first bytes alone, before any body is
//! kept, whether they start a STUN message a server would answer; [`read_header`] applies
//! it byte by byte with an idle and a per-frame deadline.

use super::header::MAGIC_COOKIE;
use super::packet::{HEADER_LEN, message_len};
use std::io;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::Instant;

/// The largest request the server reads, header included: the size of its UDP receive
/// buffer, so a request too long for UDP is not answered over TCP either. Binding requests
/// are a few dozen bytes; RFC 5780 PADDING only makes sense up to a path MTU.
pub const MAX_REQUEST_LEN: usize = 2048;

/// The message types RFC 3489 defines (§11.1): Binding and Shared Secret, request,
/// response and error response. Without the magic cookie, only these count as STUN.
const CLASSIC_TYPES: [u16; 6] = [0x0001, 0x0101, 0x0111, 0x0002, 0x0102, 0x0112];

/// What the first bytes of a frame say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefix {
    /// Nothing wrong yet, but fewer than the 20 header bytes are there: read more.
    Incomplete,
    /// A STUN header: the whole message is `len` bytes (header included).
    Message { len: usize },
    /// Not a STUN message this server would read: close the connection.
    NotStun(NotStun),
}

/// Why a prefix is refused, for tests and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotStun {
    /// The two top bits of the type are set (HTTP, TLS records past 0x3f, most text).
    TypeBits,
    /// The length is not a multiple of 4.
    Unaligned,
    /// The length announces more than [`MAX_REQUEST_LEN`].
    TooLong,
    /// No magic cookie, and the type is not one RFC 3489 defines.
    NoCookie,
}

/// Decides about a frame from however many of its first bytes have arrived, at the earliest
/// byte that can tell: the type bits after 1 byte, the length after 4, the cookie (or the
/// RFC 3489 type) after 8. Pure; never reads past the header.
pub fn check_prefix(prefix: &[u8]) -> Prefix {
    let byte = |i: usize| prefix.get(i).copied();
    if byte(0).is_some_and(|b| b & 0xc0 != 0) {
        return Prefix::NotStun(NotStun::TypeBits);
    }
    let Some(total) = message_len(prefix) else {
        return Prefix::Incomplete;
    };
    let body = total - HEADER_LEN;
    if !body.is_multiple_of(4) {
        return Prefix::NotStun(NotStun::Unaligned);
    }
    if total > MAX_REQUEST_LEN {
        return Prefix::NotStun(NotStun::TooLong);
    }
    let Some(cookie) = prefix.get(4..8) else {
        return Prefix::Incomplete;
    };
    let msg_type = u16::from_be_bytes([prefix[0], prefix[1]]);
    if cookie != MAGIC_COOKIE.to_be_bytes() && !CLASSIC_TYPES.contains(&msg_type) {
        return Prefix::NotStun(NotStun::NoCookie);
    }
    if prefix.len() < HEADER_LEN {
        return Prefix::Incomplete;
    }
    Prefix::Message { len: total }
}

/// A request header that passed [`check_prefix`].
pub(super) struct Header {
    pub bytes: [u8; HEADER_LEN],
    /// The whole message's length, header included.
    pub len: usize,
    /// When the rest of the message must have arrived.
    pub deadline: Instant,
}

/// The next request's header on a server's connection. Waits up to `idle` for its first
/// byte, then up to `frame` (from that byte) for the rest of the message; a prefix
/// [`check_prefix`] refuses is an `InvalidData` error as soon as it arrives. End of stream
/// before a whole header is `UnexpectedEof`.
pub(super) async fn read_header<R: AsyncRead + Unpin>(
    stream: &mut R,
    idle: Duration,
    frame: Duration,
) -> io::Result<Header> {
    let mut bytes = [0u8; HEADER_LEN];
    let mut got = 0;
    let mut deadline = Instant::now() + idle;
    loop {
        let Some(free) = bytes.get_mut(got..) else {
            return Err(io::ErrorKind::InvalidData.into());
        };
        let n = read_by(stream, free, deadline).await?;
        if got == 0 {
            deadline = Instant::now() + frame;
        }
        got += n;
        match check_prefix(bytes.get(..got).unwrap_or(&[])) {
            Prefix::Incomplete => continue,
            Prefix::Message { len } => {
                return Ok(Header {
                    bytes,
                    len,
                    deadline,
                });
            }
            Prefix::NotStun(_) => return Err(io::ErrorKind::InvalidData.into()),
        }
    }
}

/// One read of at least a byte, before `deadline`.
async fn read_by<R: AsyncRead + Unpin>(
    stream: &mut R,
    buf: &mut [u8],
    deadline: Instant,
) -> io::Result<usize> {
    match tokio::time::timeout_at(deadline, stream.read(buf)).await {
        Ok(Ok(0)) => Err(io::ErrorKind::UnexpectedEof.into()),
        Ok(read) => read,
        Err(_) => Err(io::ErrorKind::TimedOut.into()),
    }
}

/// The next whole message on `stream`, for a client reading its server's reply. With
/// `per_read`, each of its two reads (header, then body) may take that long at most;
/// longer is a `TimedOut` error. Without, the caller bounds the whole exchange.
pub(super) async fn read_message<R: AsyncRead + Unpin>(
    stream: &mut R,
    per_read: Option<Duration>,
) -> io::Result<Vec<u8>> {
    let mut header = [0u8; HEADER_LEN];
    read_within(stream, &mut header, per_read).await?;
    let mut message = header.to_vec();
    message.resize(message_len(&header).unwrap_or(HEADER_LEN), 0);
    let body = message.get_mut(HEADER_LEN..).unwrap_or(&mut []);
    read_within(stream, body, per_read).await?;
    Ok(message)
}

async fn read_within<R: AsyncRead + Unpin>(
    stream: &mut R,
    buf: &mut [u8],
    limit: Option<Duration>,
) -> io::Result<()> {
    let Some(limit) = limit else {
        return stream.read_exact(buf).await.map(drop);
    };
    match tokio::time::timeout(limit, stream.read_exact(buf)).await {
        Ok(read) => read.map(drop),
        Err(_) => Err(io::ErrorKind::TimedOut.into()),
    }
}

#[cfg(test)]
#[path = "framing_tests.rs"]
mod tests;
