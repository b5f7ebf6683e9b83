//! The little HTTP/1.1 that UPnP IGD control needs (UDA 1.1 §2 and §3): `http://` URLs
//! with a literal IP host, GET and POST requests, and responses framed by
//! Content-Length, chunked encoding or the end of the connection. Pure: bytes in, values
//! out; the TCP exchange around it is in `upnp.rs`.
//!
//! Host names in URLs are refused: a gateway names itself by address, and resolving a
//! name an SSDP answer supplies would let any host on the LAN point us anywhere.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// Responses larger than this are refused (a description is a few KiB).
pub const MAX_RESPONSE: usize = 256 * 1024;

/// Why a URL or a response cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("unusable URL {0:?}: expected http://IP[:PORT]/PATH")]
    Url(String),
    #[error("malformed HTTP response: {0}")]
    Malformed(&'static str),
    #[error("HTTP response larger than {MAX_RESPONSE} bytes")]
    TooLarge,
}

/// An `http://` URL whose host is an IP literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    pub addr: SocketAddr,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl HttpUrl {
    pub fn parse(text: &str) -> Result<HttpUrl, Error> {
        let bad = || Error::Url(text.chars().take(120).collect());
        let t = text.trim();
        let rest = t
            .get(..7)
            .filter(|s| s.eq_ignore_ascii_case("http://"))
            .map(|_| &t[7..])
            .ok_or_else(bad)?;
        let (authority, path) = match rest.find(['/', '?']) {
            Some(at) => (&rest[..at], &rest[at..]),
            None => (rest, "/"),
        };
        let path = path.split('#').next().unwrap_or("/");
        let path = if path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_string()
        };
        if authority.contains('@') {
            return Err(bad());
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, tail) = v6.split_once(']').ok_or_else(bad)?;
            (h, tail.strip_prefix(':'))
        } else {
            match authority.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        // A zone id (`fe80::1%eth0`, written `%25` in URLs) is dropped: the socket's
        // interface decides.
        let host = host.split('%').next().unwrap_or(host);
        let ip: IpAddr = host.parse().map_err(|_| bad())?;
        let port = match port {
            None | Some("") => 80,
            Some(p) => p.parse().ok().filter(|p| *p != 0).ok_or_else(bad)?,
        };
        Ok(HttpUrl {
            addr: SocketAddr::new(ip, port),
            path,
        })
    }

    /// Resolves a reference (absolute URL, absolute path, or relative path) against this
    /// URL, as a description's `controlURL` is resolved against `URLBase` or its location.
    pub fn join(&self, reference: &str) -> Result<HttpUrl, Error> {
        let r = reference.trim();
        if r.len() >= 7 && r[..7].eq_ignore_ascii_case("http://") {
            return HttpUrl::parse(r);
        }
        if r.contains("://") {
            return Err(Error::Url(r.chars().take(120).collect()));
        }
        let path = if r.starts_with('/') {
            r.to_string()
        } else {
            let dir = match self.path.split('?').next().unwrap_or("/").rfind('/') {
                Some(at) => &self.path[..=at],
                None => "/",
            };
            format!("{dir}{r}")
        };
        Ok(HttpUrl {
            addr: self.addr,
            path,
        })
    }

    /// The `Host` header value.
    pub fn authority(&self) -> String {
        self.addr.to_string()
    }
}

impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}{}", self.addr, self.path)
    }
}

/// A GET request for `url`; the server is asked to close the connection after it.
pub fn get_request(url: &HttpUrl) -> Vec<u8> {
    format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nUser-Agent: p2pd-repl UPnP/1.1\r\n\r\n",
        url.path,
        url.authority()
    )
    .into_bytes()
}

/// A POST of `body` to `url` with the extra `headers` (name, value).
pub fn post_request(url: &HttpUrl, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    let mut out = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
        url.path,
        url.authority(),
        body.len()
    );
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(body);
    out.into_bytes()
}

/// A complete response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub body: String,
}

/// Reads a response from what has arrived so far. `Ok(None)` means "incomplete, read
/// more"; at the end of the stream (`eof`) a body without a length ends there.
pub fn parse_response(buf: &[u8], eof: bool) -> Result<Option<Response>, Error> {
    if buf.len() > MAX_RESPONSE {
        return Err(Error::TooLarge);
    }
    let Some(head_end) = find(buf, b"\r\n\r\n")
        .map(|at| at + 4)
        .or_else(|| find(buf, b"\n\n").map(|at| at + 2))
    else {
        return if eof {
            Err(Error::Malformed("connection closed inside the headers"))
        } else {
            Ok(None)
        };
    };
    let head = String::from_utf8_lossy(&buf[..head_end]);
    let mut lines = head.lines();
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.split_whitespace();
    let version = parts.next().unwrap_or_default();
    if !version.to_ascii_uppercase().starts_with("HTTP/") {
        return Err(Error::Malformed("no HTTP status line"));
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or(Error::Malformed("bad status code"))?;
    let mut length: Option<usize> = None;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => {
                length = Some(
                    value
                        .parse()
                        .map_err(|_| Error::Malformed("bad Content-Length"))?,
                )
            }
            "transfer-encoding" => chunked = value.to_ascii_lowercase().contains("chunked"),
            _ => {}
        }
    }
    let rest = &buf[head_end..];
    let body = if chunked {
        match dechunk(rest)? {
            Some(body) => body,
            None if eof => return Err(Error::Malformed("connection closed inside a chunk")),
            None => return Ok(None),
        }
    } else if let Some(n) = length {
        match rest.get(..n) {
            Some(b) => b.to_vec(),
            None if eof => return Err(Error::Malformed("connection closed before the body ended")),
            None => return Ok(None),
        }
    } else if eof {
        rest.to_vec()
    } else {
        return Ok(None);
    };
    Ok(Some(Response {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
    }))
}

/// Decodes a chunked body; `Ok(None)` until the last chunk has arrived.
fn dechunk(mut rest: &[u8]) -> Result<Option<Vec<u8>>, Error> {
    let mut body = Vec::new();
    loop {
        let Some(line_end) = find(rest, b"\r\n") else {
            return Ok(None);
        };
        let size_text = String::from_utf8_lossy(&rest[..line_end]);
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size =
            usize::from_str_radix(size_text, 16).map_err(|_| Error::Malformed("bad chunk size"))?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(Some(body));
        }
        if rest.len() < size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = HttpUrl::parse("http://10.77.0.1:5000/rootDesc.xml").unwrap();
        assert_eq!(u.addr, "10.77.0.1:5000".parse().unwrap());
        assert_eq!(u.path, "/rootDesc.xml");
        assert_eq!(u.to_string(), "http://10.77.0.1:5000/rootDesc.xml");
        let u = HttpUrl::parse("HTTP://192.168.1.1").unwrap();
        assert_eq!((u.addr.port(), u.path.as_str()), (80, "/"));
        let u = HttpUrl::parse("http://[fe80::1%25eth0]:49152/desc?x=1#frag").unwrap();
        assert_eq!(u.addr, "[fe80::1]:49152".parse().unwrap());
        assert_eq!(u.path, "/desc?x=1");
        for bad in [
            "https://10.0.0.1/",
            "http://router.local/desc.xml",
            "http://user@10.0.0.1/",
            "http://10.0.0.1:0/",
            "http://10.0.0.1:99999/",
            "ftp://10.0.0.1/",
            "",
        ] {
            assert!(HttpUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn joins() {
        let base = HttpUrl::parse("http://10.77.0.1:5000/igd/rootDesc.xml").unwrap();
        assert_eq!(
            base.join("/ctl/IPConn").unwrap().to_string(),
            "http://10.77.0.1:5000/ctl/IPConn"
        );
        assert_eq!(base.join("ctl/IPConn").unwrap().path, "/igd/ctl/IPConn");
        assert_eq!(
            base.join("http://10.77.0.1:6000/c").unwrap().addr.port(),
            6000
        );
        assert!(base.join("https://10.77.0.1/c").is_err());
    }

    #[test]
    fn requests() {
        let u = HttpUrl::parse("http://10.77.0.1:5000/ctl").unwrap();
        let get = String::from_utf8(get_request(&u)).unwrap();
        assert!(get.starts_with("GET /ctl HTTP/1.1\r\nHost: 10.77.0.1:5000\r\n"));
        assert!(get.ends_with("\r\n\r\n"));
        let post =
            String::from_utf8(post_request(&u, &[("SOAPAction", "\"x#y\"")], "<a/>")).unwrap();
        assert!(post.contains("Content-Length: 4\r\n"));
        assert!(post.contains("SOAPAction: \"x#y\"\r\n"));
        assert!(post.ends_with("\r\n\r\n<a/>"));
    }

    #[test]
    fn content_length_framing() {
        let full = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        for n in 0..full.len() {
            assert_eq!(parse_response(&full[..n], false), Ok(None), "prefix {n}");
        }
        let r = parse_response(full, false).unwrap().unwrap();
        assert_eq!((r.status, r.body.as_str()), (200, "hello"));
        assert!(parse_response(&full[..full.len() - 1], true).is_err());
    }

    #[test]
    fn chunked_framing() {
        let full = b"HTTP/1.1 500 Internal Server Error\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n6;ext=1\r\npedia \r\n0\r\n\r\n";
        let r = parse_response(full, false).unwrap().unwrap();
        assert_eq!((r.status, r.body.as_str()), (500, "Wikipedia "));
        assert_eq!(parse_response(&full[..60], false), Ok(None));
        assert!(parse_response(&full[..60], true).is_err());
        assert!(
            parse_response(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                false
            )
            .is_err()
        );
    }

    #[test]
    fn body_until_close() {
        let text = b"HTTP/1.0 200 OK\nContent-Type: text/xml\n\n<root/>";
        assert_eq!(parse_response(text, false), Ok(None));
        let r = parse_response(text, true).unwrap().unwrap();
        assert_eq!(r.body, "<root/>");
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(parse_response(b"SSH-2.0-OpenSSH\r\n\r\n", false).is_err());
        assert!(parse_response(b"HTTP/1.1 abc\r\n\r\n", false).is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", false).is_err());
        assert!(parse_response(b"HTTP/1.1 200", true).is_err());
        assert_eq!(
            parse_response(&vec![b'a'; MAX_RESPONSE + 1], false),
            Err(Error::TooLarge)
        );
    }
}
