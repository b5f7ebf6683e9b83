//! Reading one STUN message from a byte stream (RFC 5389 §7.2.2): STUN over TCP has no
//! framing of its own, so the header's length field says where a message ends. Shared by
//! the client and the server's TCP side.

use super::packet::{HEADER_LEN, message_len};
use std::io;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};

/// The next whole message on `stream`. With `per_read`, each of its two reads (header, then
/// body) may take that long at most; longer is a `TimedOut` error. Without, the caller
/// bounds the whole exchange.
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
