//! The web stand-in: a tiny HTTP responder that answers for a web site when there is no
//! internet, so the tutorial's first networking program gets the reply a real server gives.
//!
//! The tutorial sends `b"Test\r\n\r\n"`, which is not HTTP, and prints the server's
//! `HTTP/1.0 400 Bad Request`. [`reply`] is the pure part (bytes received so far in, the
//! answer out, or "wait for more"); [`StandIn`] is the thin async shell around it. The
//! answer names itself in a `Server:` header, so nobody mistakes it for the real site.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The `Server:` header of every answer.
pub const SERVER: &str = "p2pd-repl offline stand-in";
/// A request head longer than this is answered (400) without waiting for its end.
pub const MAX_HEAD: usize = 8 * 1024;
/// How long a connection may stay silent before the stand-in gives up on it.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// The answer to the bytes received so far, or `None` while the request head is not
/// complete (no blank line yet) and still short.
pub fn reply(received: &[u8]) -> Option<Vec<u8>> {
    let complete = find(received, b"\r\n\r\n").is_some() || find(received, b"\n\n").is_some();
    if !complete && received.len() < MAX_HEAD {
        return None;
    }
    let first_line = received
        .split(|&b| b == b'\n')
        .next()
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .unwrap_or_default();
    Some(if complete && is_request_line(first_line) {
        answer(
            "HTTP/1.0 200 OK",
            "text/plain; charset=utf-8",
            "p2pd-repl's offline stand-in: the real site answers this online.\n",
        )
    } else {
        answer(
            "HTTP/1.0 400 Bad Request",
            "text/html; charset=utf-8",
            "<html><head><title>400 Bad Request</title></head>\
             <body><h1>400 Bad Request</h1><p>That request is not HTTP.</p></body></html>\n",
        )
    })
}

/// `METHOD SP target SP HTTP/x.y`.
fn is_request_line(line: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(line) else {
        return false;
    };
    let parts: Vec<&str> = text.split(' ').collect();
    matches!(parts.as_slice(), [method, target, version]
        if !method.is_empty()
            && method.bytes().all(|b| b.is_ascii_uppercase())
            && !target.is_empty()
            && version.starts_with("HTTP/1."))
}

fn answer(status: &str, content_type: &str, body: &str) -> Vec<u8> {
    format!(
        "{status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nServer: {SERVER}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The stand-in, listening on one address until it is closed or dropped.
pub struct StandIn {
    addr: SocketAddr,
    task: Option<JoinHandle<()>>,
}

impl StandIn {
    /// Listens on `ip` at the first of `ports` it can bind (0 = any free port).
    pub async fn start(ip: IpAddr, ports: &[u16]) -> io::Result<StandIn> {
        let mut last = io::Error::new(io::ErrorKind::InvalidInput, "no port to try");
        for &port in ports {
            match TcpListener::bind(SocketAddr::new(ip, port)).await {
                Ok(listener) => {
                    let addr = listener.local_addr()?;
                    let task = tokio::spawn(serve(listener));
                    return Ok(StandIn {
                        addr,
                        task: Some(task),
                    });
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops listening; the port is free when this returns.
    pub async fn close(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Accepts until aborted; each connection gets one answer. Aborting drops the connection
/// tasks with the set, so no socket outlives the stand-in.
async fn serve(listener: TcpListener) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    connections.spawn(answer_one(stream));
                }
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn answer_one(mut stream: TcpStream) {
    let mut received = Vec::new();
    let mut buf = [0u8; 2048];
    let answer = loop {
        match tokio::time::timeout(READ_TIMEOUT, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => {
                received.extend_from_slice(&buf[..n]);
                if let Some(a) = reply(&received) {
                    break a;
                }
            }
            // Closed, failed or silent: nothing to answer.
            _ => return,
        }
    };
    let _ = tokio::time::timeout(READ_TIMEOUT, async {
        stream.write_all(&answer).await?;
        stream.shutdown().await
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(b: Option<Vec<u8>>) -> String {
        String::from_utf8(b.expect("an answer")).unwrap()
    }

    #[test]
    fn the_tutorial_request_gets_a_400() {
        let a = text(reply(b"Test\r\n\r\n"));
        assert!(a.starts_with("HTTP/1.0 400 Bad Request\r\n"), "{a}");
        assert!(a.contains("\r\nServer: p2pd-repl offline stand-in\r\n"));
        let (head, body) = a.split_once("\r\n\r\n").unwrap();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(length, body.len());
    }

    #[test]
    fn a_request_is_answered_once_its_head_is_complete() {
        assert_eq!(reply(b"Test\r\n"), None);
        assert_eq!(reply(b"GET / HTTP/1.1\r\nHost: x\r\n"), None);
        assert!(text(reply(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")).starts_with("HTTP/1.0 200 OK"));
        assert!(text(reply(b"get / HTTP/1.1\n\n")).starts_with("HTTP/1.0 400"));
        assert!(text(reply(&[b'x'; MAX_HEAD])).starts_with("HTTP/1.0 400"));
        assert!(text(reply(b"\xff\xfe\r\n\r\n")).starts_with("HTTP/1.0 400"));
    }

    #[tokio::test]
    async fn the_stand_in_answers_over_tcp_and_frees_its_port() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let mut s = StandIn::start(ip, &[0]).await.unwrap();
        let addr = s.local_addr();
        let mut c = TcpStream::connect(addr).await.unwrap();
        c.write_all(b"Test\r\n\r\n").await.unwrap();
        let mut got = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), c.read_to_end(&mut got))
            .await
            .unwrap()
            .unwrap();
        assert!(got.starts_with(b"HTTP/1.0 400 Bad Request\r\n"));
        s.close().await;
        TcpListener::bind(addr)
            .await
            .expect("port free after close");
    }
}
