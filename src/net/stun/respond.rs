//! The STUN server's decisions, pure: given a request, who sent it and which of our sockets got
//! it, say which socket answers, to whom, with which bytes. RFC 5389 §7.3 (processing a
//! request, 420 for unknown attributes), RFC 5780 §6-§7 (CHANGE-REQUEST, RESPONSE-ORIGIN,
//! OTHER-ADDRESS, RESPONSE-PORT, PADDING), RFC 3489 §8.2 (classic replies with SOURCE-ADDRESS
//! and CHANGED-ADDRESS). Sockets and tasks live in `server.rs`.

use super::{AttrType, ChangeRequest, Class, Error, Method, Packet, Repr, TransactionId};
use std::net::SocketAddr;
use std::time::Duration;

/// How a request arrived. Over TCP the reply goes back on the same connection, so
/// CHANGE-REQUEST and RESPONSE-PORT are ignored (RFC 5780 §6: they are UDP-only tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// The server's addresses. With `alternate`, it serves on four sockets:
/// (primary IP, primary port), (primary IP, alternate port), (alternate IP, primary port),
/// (alternate IP, alternate port). Without, on `primary` only, as a plain RFC 5389 server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    pub primary: SocketAddr,
    /// Must differ from `primary` in both IP and port.
    pub alternate: Option<SocketAddr>,
    /// SOFTWARE attribute in replies (RFC 5389 §15.10); `None` to omit.
    pub software: Option<String>,
    /// How long a TCP connection may wait for a request to start, and then for it to be
    /// complete, before the server closes it.
    pub tcp_timeout: Duration,
    /// Most TCP connections kept open at once (across every address); past it, the one
    /// idle longest is closed.
    pub tcp_max_connections: usize,
}

/// `ServerConfig::tcp_timeout` unless set: a Binding exchange takes milliseconds.
pub const DEFAULT_TCP_TIMEOUT: Duration = Duration::from_secs(3);
/// `ServerConfig::tcp_max_connections` unless set: well under the usual fd limit of 1024
/// with room for UDP sockets and the rest of a process.
pub const DEFAULT_TCP_MAX_CONNECTIONS: usize = 512;

impl ServerConfig {
    pub fn new(primary: SocketAddr, alternate: Option<SocketAddr>) -> Self {
        ServerConfig {
            primary,
            alternate,
            software: Some(concat!("p2pd-repl ", env!("CARGO_PKG_VERSION")).to_owned()),
            tcp_timeout: DEFAULT_TCP_TIMEOUT,
            tcp_max_connections: DEFAULT_TCP_MAX_CONNECTIONS,
        }
    }

    /// Every address served: one, or four in the order given on `ServerConfig`.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        let p = self.primary;
        match self.alternate {
            None => vec![p],
            Some(a) => vec![
                p,
                SocketAddr::new(p.ip(), a.port()),
                SocketAddr::new(a.ip(), p.port()),
                a,
            ],
        }
    }

    /// Our address differing from `local` in the parts `change` names (`None` without an
    /// alternate). With `ChangeRequest::BOTH` this is OTHER-ADDRESS / CHANGED-ADDRESS.
    pub fn changed(&self, local: SocketAddr, change: ChangeRequest) -> Option<SocketAddr> {
        let (p, a) = (self.primary, self.alternate?);
        let ip = match (change.ip, local.ip() == p.ip()) {
            (false, _) => local.ip(),
            (true, true) => a.ip(),
            (true, false) => p.ip(),
        };
        let port = match (change.port, local.port() == p.port()) {
            (false, _) => local.port(),
            (true, true) => a.port(),
            (true, false) => p.port(),
        };
        Some(SocketAddr::new(ip, port))
    }
}

/// What to send: from which of our sockets, to whom, which bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub from: SocketAddr,
    pub to: SocketAddr,
    pub bytes: Vec<u8>,
}

/// Answers one request received on `local` from `from`. `None` means stay silent: not STUN,
/// not a Binding request, a bad FINGERPRINT (RFC 5389 §7.3: discard), or bytes too broken to
/// even address an error to.
pub fn respond(
    request: &[u8],
    from: SocketAddr,
    local: SocketAddr,
    config: &ServerConfig,
    transport: Transport,
) -> Option<Reply> {
    let packet = Packet::new_checked(request).ok()?;
    let (class, method) = super::split_message_type(packet.msg_type()).ok()?;
    if class != Class::Request || method != Method::Binding {
        return None;
    }
    let id = packet.transaction_id();
    let plain = |bytes| {
        Some(Reply {
            from: local,
            to: from,
            bytes,
        })
    };
    let request = match Repr::parse(&packet) {
        Ok(r) => r,
        Err(Error::BadFingerprint) => return None,
        Err(Error::UnknownRequiredAttr(_)) => {
            let mut r = error_reply(id, 420, "Unknown Attribute", config);
            r.unknown_attributes = packet.unknown_required();
            return plain(r.to_bytes().ok()?);
        }
        Err(_) => {
            return plain(
                error_reply(id, 400, "Bad Request", config)
                    .to_bytes()
                    .ok()?,
            );
        }
    };
    let change = match transport {
        Transport::Udp => request.change_request.unwrap_or_default(),
        Transport::Tcp => ChangeRequest::NONE,
    };
    // Without an alternate address a change cannot be honoured; answering 420 naming
    // CHANGE-REQUEST (coturn 4.6 answers 420 too, checked on loopback) tells the client to stop
    // rather than wait for a reply that will never come.
    let Some(source) = config
        .changed(local, change)
        .or((change.is_none()).then_some(local))
    else {
        let mut r = error_reply(id, 420, "Unknown Attribute", config);
        r.unknown_attributes = vec![u16::from(AttrType::ChangeRequest)];
        return plain(r.to_bytes().ok()?);
    };
    let to = match (transport, request.response_port) {
        (Transport::Udp, Some(port)) => SocketAddr::new(from.ip(), port),
        _ => from,
    };
    let mut r = Repr::binding_success(id);
    r.mapped_address = Some(from);
    r.software = config.software.clone();
    let other = config.changed(local, ChangeRequest::BOTH);
    if id.is_classic() {
        r.source_address = Some(source);
        r.changed_address = other;
    } else {
        r.xor_mapped_address = Some(from);
        r.response_origin = Some(source);
        r.other_address = other;
        r.padding = request.padding;
        r.fingerprint = true;
    }
    Some(Reply {
        from: source,
        to,
        bytes: r.to_bytes().ok()?,
    })
}

fn error_reply(id: TransactionId, code: u16, reason: &str, config: &ServerConfig) -> Repr {
    let mut r = Repr::binding_error(id, code, reason);
    r.software = config.software.clone();
    r.fingerprint = !id.is_classic();
    r
}

#[cfg(test)]
#[path = "respond_tests.rs"]
mod tests;
