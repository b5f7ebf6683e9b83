//! PCP wire format (RFC 6887 §7, §11, §14.1), for the two opcodes a client needs:
//! ANNOUNCE (a probe that creates nothing) and MAP (create, renew, delete a mapping).
//! Pure: requests are emitted into byte vectors, responses are checked views that never
//! panic. Options are neither sent nor read (the THIRD_PARTY, PREFER_FAILURE and FILTER
//! options change nothing a client like this one asks for).
//!
//! Addresses on the wire are 128 bits; IPv4 ones are IPv4-mapped (`::ffff:a.b.c.d`,
//! §5). Retransmission and renewal live in `probe.rs` and `mapping.rs`.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use crate::net::pipe::Proto;

/// PCP's version number (§7.1); NAT-PMP is version 0 on the same port.
pub const VERSION: u8 = 2;
/// Requests and responses are at most this long (§7).
pub const MAX_MESSAGE: usize = 1100;
const RESPONSE_BIT: u8 = 0x80;
const OP_ANNOUNCE: u8 = 0;
const OP_MAP: u8 = 1;
const HEADER_LEN: usize = 24;
const MAP_PAYLOAD_LEN: usize = 36;
/// IANA protocol numbers used in MAP (§11.1).
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;

mod field {
    use core::ops::Range;
    pub const VERSION: usize = 0;
    pub const OPCODE: usize = 1;
    pub const RESULT: usize = 3;
    pub const LIFETIME: Range<usize> = 4..8;
    pub const EPOCH: Range<usize> = 8..12;
    /// MAP payload, after the 24-byte header (§11.1).
    pub const NONCE: Range<usize> = 24..36;
    pub const PROTOCOL: usize = 36;
    pub const INTERNAL_PORT: Range<usize> = 40..42;
    pub const EXTERNAL_PORT: Range<usize> = 42..44;
    pub const EXTERNAL_IP: Range<usize> = 44..60;
}

/// The result codes of RFC 6887 §7.4, in the words errors use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultCode {
    Success,
    UnsupportedVersion,
    NotAuthorized,
    MalformedRequest,
    UnsupportedOpcode,
    UnsupportedOption,
    MalformedOption,
    NetworkFailure,
    NoResources,
    UnsupportedProtocol,
    UserExceededQuota,
    CannotProvideExternal,
    AddressMismatch,
    ExcessiveRemotePeers,
    Unknown(u8),
}

impl ResultCode {
    pub fn from_u8(code: u8) -> ResultCode {
        use ResultCode::*;
        match code {
            0 => Success,
            1 => UnsupportedVersion,
            2 => NotAuthorized,
            3 => MalformedRequest,
            4 => UnsupportedOpcode,
            5 => UnsupportedOption,
            6 => MalformedOption,
            7 => NetworkFailure,
            8 => NoResources,
            9 => UnsupportedProtocol,
            10 => UserExceededQuota,
            11 => CannotProvideExternal,
            12 => AddressMismatch,
            13 => ExcessiveRemotePeers,
            other => Unknown(other),
        }
    }

    pub fn code(self) -> u8 {
        use ResultCode::*;
        match self {
            Success => 0,
            UnsupportedVersion => 1,
            NotAuthorized => 2,
            MalformedRequest => 3,
            UnsupportedOpcode => 4,
            UnsupportedOption => 5,
            MalformedOption => 6,
            NetworkFailure => 7,
            NoResources => 8,
            UnsupportedProtocol => 9,
            UserExceededQuota => 10,
            CannotProvideExternal => 11,
            AddressMismatch => 12,
            ExcessiveRemotePeers => 13,
            Unknown(c) => c,
        }
    }
}

impl fmt::Display for ResultCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ResultCode::*;
        f.write_str(match self {
            Success => "success",
            UnsupportedVersion => "unsupported version",
            NotAuthorized => "not authorized",
            MalformedRequest => "malformed request",
            UnsupportedOpcode => "unsupported opcode",
            UnsupportedOption => "unsupported option",
            MalformedOption => "malformed option",
            NetworkFailure => "network failure",
            NoResources => "no resources",
            UnsupportedProtocol => "unsupported protocol",
            UserExceededQuota => "user exceeded quota",
            CannotProvideExternal => "cannot provide the external address",
            AddressMismatch => "address mismatch",
            ExcessiveRemotePeers => "excessive remote peers",
            Unknown(_) => "unknown result",
        })?;
        write!(f, " (result {})", self.code())
    }
}

/// The 16-byte wire form of an address (§5).
pub fn wire_ip(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// Reads a wire address back, unmapping IPv4.
pub fn ip_from_wire(bytes: [u8; 16]) -> IpAddr {
    let v6 = Ipv6Addr::from(bytes);
    match v6.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(v6),
    }
}

fn header(opcode: u8, lifetime: Duration, client: IpAddr) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + MAP_PAYLOAD_LEN);
    out.push(VERSION);
    out.push(opcode);
    out.extend_from_slice(&[0, 0]);
    let secs = u32::try_from(lifetime.as_secs()).unwrap_or(u32::MAX);
    out.extend_from_slice(&secs.to_be_bytes());
    out.extend_from_slice(&wire_ip(client));
    out
}

/// ANNOUNCE (§14.1): lifetime 0, no payload. Asks whether a PCP server is there and
/// creates nothing. `client` is the source address the request leaves from.
pub fn announce_request(client: IpAddr) -> Vec<u8> {
    header(OP_ANNOUNCE, Duration::ZERO, client)
}

/// What a MAP request asks for (§11.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapRequest {
    /// Chosen by the client and repeated in renewals and the deletion (§11.2).
    pub nonce: [u8; 12],
    pub proto: Proto,
    pub internal_port: u16,
    /// 0: any.
    pub external_port: u16,
    /// Unspecified (of the client's family): any.
    pub external_ip: IpAddr,
    /// 0 deletes (§15).
    pub lifetime: Duration,
    pub client: IpAddr,
}

impl MapRequest {
    pub fn emit(&self) -> Vec<u8> {
        let mut out = header(OP_MAP, self.lifetime, self.client);
        out.extend_from_slice(&self.nonce);
        out.push(match self.proto {
            Proto::Tcp => IPPROTO_TCP,
            Proto::Udp => IPPROTO_UDP,
        });
        out.extend_from_slice(&[0, 0, 0]);
        out.extend_from_slice(&self.internal_port.to_be_bytes());
        out.extend_from_slice(&self.external_port.to_be_bytes());
        let wanted = match (self.external_ip, self.client) {
            // "Any IPv4 address" is the IPv4-mapped all-zeros address, not `::` (§11.1).
            (ip, IpAddr::V4(_)) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            (ip, _) => ip,
        };
        out.extend_from_slice(&wire_ip(wanted));
        out
    }
}

/// Why bytes are not a PCP response this client can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("PCP response too short ({0} bytes)")]
    Truncated(usize),
    #[error("PCP message too long or not a multiple of 4 bytes ({0} bytes)")]
    BadLength(usize),
    #[error("not a PCP response (version {0})")]
    Version(u8),
    #[error("not a PCP response (R bit clear)")]
    NotResponse,
}

/// What a MAP response assigned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapResponse {
    pub nonce: [u8; 12],
    /// `None` for a protocol number this client never asks for.
    pub proto: Option<Proto>,
    pub internal_port: u16,
    pub external_port: u16,
    pub external_ip: IpAddr,
}

/// A PCP response (§7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response {
    pub opcode: u8,
    pub result: ResultCode,
    /// Granted lifetime on success; on an error, how long the error is likely to last.
    pub lifetime: Duration,
    pub epoch: u32,
    /// Present for a MAP response that carries its payload.
    pub map: Option<MapResponse>,
}

impl Response {
    pub fn is_announce(&self) -> bool {
        self.opcode == OP_ANNOUNCE
    }

    pub fn is_map(&self) -> bool {
        self.opcode == OP_MAP
    }
}

fn array<const N: usize>(b: &[u8], r: core::ops::Range<usize>) -> Option<[u8; N]> {
    b.get(r).and_then(|s| <[u8; N]>::try_from(s).ok())
}

/// Parses a datagram from port 5351 as PCP. A NAT-PMP response (version 0) is
/// `Err(Version(0))`.
pub fn parse_response(bytes: &[u8]) -> Result<Response, Error> {
    let version = *bytes.get(field::VERSION).ok_or(Error::Truncated(0))?;
    if version != VERSION {
        return Err(Error::Version(version));
    }
    if bytes.len() < HEADER_LEN {
        return Err(Error::Truncated(bytes.len()));
    }
    if bytes.len() > MAX_MESSAGE || !bytes.len().is_multiple_of(4) {
        return Err(Error::BadLength(bytes.len()));
    }
    let op = bytes[field::OPCODE];
    if op & RESPONSE_BIT == 0 {
        return Err(Error::NotResponse);
    }
    let opcode = op & !RESPONSE_BIT;
    let result = ResultCode::from_u8(bytes[field::RESULT]);
    let lifetime = array::<4>(bytes, field::LIFETIME).map_or(0, u32::from_be_bytes);
    let epoch = array::<4>(bytes, field::EPOCH).map_or(0, u32::from_be_bytes);
    let map = if opcode == OP_MAP {
        match (
            array::<12>(bytes, field::NONCE),
            array::<2>(bytes, field::INTERNAL_PORT),
            array::<2>(bytes, field::EXTERNAL_PORT),
            array::<16>(bytes, field::EXTERNAL_IP),
        ) {
            (Some(nonce), Some(i), Some(e), Some(ip)) => Some(MapResponse {
                nonce,
                proto: match bytes[field::PROTOCOL] {
                    IPPROTO_TCP => Some(Proto::Tcp),
                    IPPROTO_UDP => Some(Proto::Udp),
                    _ => None,
                },
                internal_port: u16::from_be_bytes(i),
                external_port: u16::from_be_bytes(e),
                external_ip: ip_from_wire(ip),
            }),
            // §7.2: an error response may omit the payload. Success may not.
            _ if result != ResultCode::Success => None,
            _ => return Err(Error::Truncated(bytes.len())),
        }
    } else {
        None
    };
    Ok(Response {
        opcode,
        result,
        lifetime: Duration::from_secs(u64::from(lifetime)),
        epoch,
        map,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLIENT: &str = "10.77.0.10";

    fn client() -> IpAddr {
        CLIENT.parse().unwrap()
    }

    /// RFC 6887 §7.1 request header and §14.1 ANNOUNCE: version 2, R 0, opcode 0,
    /// reserved, lifetime 0, the client's address IPv4-mapped; no payload.
    #[test]
    fn announce_layout() {
        let req = announce_request(client());
        let mut want = vec![2, 0, 0, 0, 0, 0, 0, 0];
        want.extend_from_slice(&[0; 10]);
        want.extend_from_slice(&[0xff, 0xff, 10, 77, 0, 10]);
        assert_eq!(req, want);
        let v6 = announce_request("2001:db8::5".parse().unwrap());
        assert_eq!(&v6[8..10], &[0x20, 0x01]);
        assert_eq!(v6[23], 5);
    }

    /// §11.1 MAP request: the header, then nonce, protocol, reserved, internal port,
    /// suggested external port, suggested external address (IPv4-mapped zeros = any).
    #[test]
    fn map_layout() {
        let req = MapRequest {
            nonce: *b"abcdefghijkl",
            proto: Proto::Udp,
            internal_port: 4000,
            external_port: 0,
            external_ip: "0.0.0.0".parse().unwrap(),
            lifetime: Duration::from_secs(600),
            client: client(),
        }
        .emit();
        assert_eq!(req.len(), 60);
        assert_eq!(&req[..4], &[2, 1, 0, 0]);
        assert_eq!(&req[4..8], &600u32.to_be_bytes());
        assert_eq!(&req[24..36], b"abcdefghijkl");
        assert_eq!(&req[36..40], &[17, 0, 0, 0]);
        assert_eq!(&req[40..44], &[0x0f, 0xa0, 0, 0]);
        let mut any = [0u8; 16];
        any[10] = 0xff;
        any[11] = 0xff;
        assert_eq!(&req[44..60], &any);
        // `::` as "any" for an IPv4 client also becomes the mapped zeros.
        let req2 = MapRequest {
            external_ip: "::".parse().unwrap(),
            proto: Proto::Tcp,
            ..MapRequest {
                nonce: [0; 12],
                proto: Proto::Udp,
                internal_port: 1,
                external_port: 1,
                external_ip: "::".parse().unwrap(),
                lifetime: Duration::ZERO,
                client: client(),
            }
        }
        .emit();
        assert_eq!(&req2[44..60], &any);
        assert_eq!(req2[36], 6);
    }

    /// Captured from miniupnpd 2.3.1: its ANNOUNCE answer (success, epoch 1).
    #[test]
    fn miniupnpd_announce_reply() {
        let mut bytes = vec![2, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        bytes.extend_from_slice(&[0; 12]);
        let r = parse_response(&bytes).expect("parses");
        assert!(r.is_announce());
        assert_eq!(r.result, ResultCode::Success);
        assert_eq!(r.epoch, 1);
        assert_eq!(r.map, None);
    }

    /// Captured from miniupnpd 2.3.1 with a documentation-range WAN address: MAP for UDP
    /// 4000 refused with NO_RESOURCES, lifetime 30 s, its WAN address filled in.
    #[test]
    fn miniupnpd_map_refusal() {
        let mut bytes = vec![2, 0x81, 0, 8, 0, 0, 0, 0x1e, 0, 0, 0, 1];
        bytes.extend_from_slice(&[0; 12]);
        bytes.extend_from_slice(b"abcdefghijkl");
        bytes.extend_from_slice(&[0x11, 0, 0, 0, 0x0f, 0xa0, 0x0f, 0xa0]);
        bytes.extend_from_slice(&[
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xcb, 0, 0x71, 0x64,
        ]);
        let r = parse_response(&bytes).expect("parses");
        assert!(r.is_map());
        assert_eq!(r.result, ResultCode::NoResources);
        assert_eq!(r.result.to_string(), "no resources (result 8)");
        assert_eq!(r.lifetime, Duration::from_secs(30));
        let m = r.map.expect("payload");
        assert_eq!(m.nonce, *b"abcdefghijkl");
        assert_eq!(m.proto, Some(Proto::Udp));
        assert_eq!((m.internal_port, m.external_port), (4000, 4000));
        assert_eq!(m.external_ip, "203.0.113.100".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn result_words() {
        assert_eq!(
            ResultCode::from_u8(12).to_string(),
            "address mismatch (result 12)"
        );
        assert_eq!(
            ResultCode::from_u8(2).to_string(),
            "not authorized (result 2)"
        );
        for c in 0..=255u8 {
            assert_eq!(ResultCode::from_u8(c).code(), c);
        }
    }

    #[test]
    fn broken_and_foreign_input_is_an_error() {
        assert_eq!(parse_response(&[]), Err(Error::Truncated(0)));
        assert_eq!(
            parse_response(&[0, 128, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]),
            Err(Error::Version(0))
        );
        assert_eq!(parse_response(&[2, 0x80, 0, 0]), Err(Error::Truncated(4)));
        let mut odd = vec![2, 0x80, 0, 0];
        odd.resize(26, 0);
        assert_eq!(parse_response(&odd), Err(Error::BadLength(26)));
        let mut big = vec![2, 0x80, 0, 0];
        big.resize(1104, 0);
        assert_eq!(parse_response(&big), Err(Error::BadLength(1104)));
        // Our own request bytes coming back (R bit clear).
        assert_eq!(
            parse_response(&announce_request(client())),
            Err(Error::NotResponse)
        );
        // A success MAP response without its payload.
        let mut short = vec![2, 0x81, 0, 0];
        short.resize(24, 0);
        assert_eq!(parse_response(&short), Err(Error::Truncated(24)));
        // ... while an error may omit it.
        short[3] = 2;
        assert_eq!(
            parse_response(&short).map(|r| r.result),
            Ok(ResultCode::NotAuthorized)
        );
        // No prefix of anything panics.
        let full = MapRequest {
            nonce: [7; 12],
            proto: Proto::Tcp,
            internal_port: 1,
            external_port: 2,
            external_ip: "::".parse().unwrap(),
            lifetime: Duration::from_secs(1),
            client: "2001:db8::1".parse().unwrap(),
        }
        .emit();
        for n in 0..full.len() {
            let mut b = full[..n].to_vec();
            if let Some(op) = b.get_mut(1) {
                *op |= 0x80;
            }
            let _ = parse_response(&b);
        }
    }

    #[test]
    fn wire_addresses_round_trip() {
        for ip in ["10.77.0.10", "0.0.0.0", "2001:db8::1", "::"] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(ip_from_wire(wire_ip(ip)), ip);
        }
    }
}
