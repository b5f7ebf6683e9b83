//! NAT-PMP wire format (RFC 6886 §3). Pure: requests are built into byte arrays,
//! responses are checked views that never panic on short or foreign input.
//!
//! Only what a client sends and reads is here: the external-address request (§3.2) and
//! the mapping request (§3.3), with deletion being a mapping request of lifetime 0
//! (§3.4). The server's announcements on 224.0.0.1:5350 are not listened to. When and
//! how often to send lives in `probe.rs` and `mapping.rs`.

use std::fmt;
use std::net::Ipv4Addr;
use std::time::Duration;

use crate::net::pipe::Proto;

/// The port a NAT-PMP (and PCP) server listens on (RFC 6886 §3.1).
pub const SERVER_PORT: u16 = 5351;
/// The only version NAT-PMP has; PCP is version 2 and shares the port (RFC 6887 §9).
pub const VERSION: u8 = 0;
/// Responses carry the request's opcode plus 128 (RFC 6886 §3.2).
const RESPONSE_BIT: u8 = 128;
const OP_EXTERNAL_ADDRESS: u8 = 0;
const OP_MAP_UDP: u8 = 1;
const OP_MAP_TCP: u8 = 2;

mod field {
    use core::ops::Range;
    pub const VERSION: usize = 0;
    pub const OPCODE: usize = 1;
    pub const RESULT: Range<usize> = 2..4;
    pub const EPOCH: Range<usize> = 4..8;
    /// External-address response (§3.2).
    pub const EXTERNAL_IP: Range<usize> = 8..12;
    /// Mapping response (§3.3).
    pub const INTERNAL_PORT: Range<usize> = 8..10;
    pub const EXTERNAL_PORT: Range<usize> = 10..12;
    pub const LIFETIME: Range<usize> = 12..16;
}

/// Length of a response header: version, opcode, result code, epoch.
const HEADER_LEN: usize = 8;
const EXTERNAL_RESPONSE_LEN: usize = 12;
const MAP_RESPONSE_LEN: usize = 16;

/// The result codes of RFC 6886 §3.5, with the words users read in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultCode {
    Success,
    UnsupportedVersion,
    NotAuthorized,
    NetworkFailure,
    OutOfResources,
    UnsupportedOpcode,
    Unknown(u16),
}

impl ResultCode {
    pub fn from_u16(code: u16) -> ResultCode {
        match code {
            0 => ResultCode::Success,
            1 => ResultCode::UnsupportedVersion,
            2 => ResultCode::NotAuthorized,
            3 => ResultCode::NetworkFailure,
            4 => ResultCode::OutOfResources,
            5 => ResultCode::UnsupportedOpcode,
            other => ResultCode::Unknown(other),
        }
    }

    pub fn code(self) -> u16 {
        match self {
            ResultCode::Success => 0,
            ResultCode::UnsupportedVersion => 1,
            ResultCode::NotAuthorized => 2,
            ResultCode::NetworkFailure => 3,
            ResultCode::OutOfResources => 4,
            ResultCode::UnsupportedOpcode => 5,
            ResultCode::Unknown(c) => c,
        }
    }
}

impl fmt::Display for ResultCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ResultCode::Success => "success",
            ResultCode::UnsupportedVersion => "unsupported version",
            ResultCode::NotAuthorized => "not authorized",
            ResultCode::NetworkFailure => "network failure",
            ResultCode::OutOfResources => "out of resources",
            ResultCode::UnsupportedOpcode => "unsupported opcode",
            ResultCode::Unknown(_) => "unknown result",
        })?;
        write!(f, " (result {})", self.code())
    }
}

/// The 2-byte external-address request (§3.2). It creates nothing on the gateway.
pub fn external_address_request() -> [u8; 2] {
    [VERSION, OP_EXTERNAL_ADDRESS]
}

fn map_opcode(proto: Proto) -> u8 {
    match proto {
        Proto::Udp => OP_MAP_UDP,
        Proto::Tcp => OP_MAP_TCP,
    }
}

/// A mapping request (§3.3). `lifetime` zero with `external_port` zero deletes the
/// mapping of `internal_port` (§3.4); lifetimes past `u32::MAX` seconds are clamped.
pub fn map_request(
    proto: Proto,
    internal_port: u16,
    external_port: u16,
    lifetime: Duration,
) -> [u8; 12] {
    let mut out = [0u8; 12];
    out[0] = VERSION;
    out[1] = map_opcode(proto);
    // Bytes 2..4 are reserved and stay zero.
    out[4..6].copy_from_slice(&internal_port.to_be_bytes());
    out[6..8].copy_from_slice(&external_port.to_be_bytes());
    let secs = u32::try_from(lifetime.as_secs()).unwrap_or(u32::MAX);
    out[8..12].copy_from_slice(&secs.to_be_bytes());
    out
}

/// Why bytes are not a NAT-PMP response this client can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("NAT-PMP response too short ({0} bytes)")]
    Truncated(usize),
    #[error("not a NAT-PMP response (version {0})")]
    Version(u8),
    #[error("not a NAT-PMP response (opcode {0})")]
    NotResponse(u8),
}

/// A NAT-PMP response, as far as the header goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Response {
    /// An answer to the external-address request; `ip` is `None` when the result is not
    /// success (the field is then meaningless and may be absent).
    ExternalAddress {
        result: ResultCode,
        epoch: u32,
        ip: Option<Ipv4Addr>,
    },
    /// An answer to a mapping request; the ports and lifetime only mean something on
    /// success.
    Map {
        proto: Proto,
        result: ResultCode,
        epoch: u32,
        internal_port: u16,
        external_port: u16,
        lifetime: Duration,
    },
    /// A response to an opcode this client never sends (or an error response whose
    /// opcode echoes something unknown): only the result is of use.
    Other {
        opcode: u8,
        result: ResultCode,
        epoch: u32,
    },
}

impl Response {
    pub fn result(&self) -> ResultCode {
        match self {
            Response::ExternalAddress { result, .. }
            | Response::Map { result, .. }
            | Response::Other { result, .. } => *result,
        }
    }
}

fn u16_at(b: &[u8], r: core::ops::Range<usize>) -> u16 {
    b.get(r)
        .and_then(|s| <[u8; 2]>::try_from(s).ok())
        .map_or(0, u16::from_be_bytes)
}

fn u32_at(b: &[u8], r: core::ops::Range<usize>) -> u32 {
    b.get(r)
        .and_then(|s| <[u8; 4]>::try_from(s).ok())
        .map_or(0, u32::from_be_bytes)
}

/// Parses a datagram from port 5351 as NAT-PMP. A PCP response (version 2) is
/// `Err(Version(2))`, so one socket can carry both protocols.
pub fn parse_response(bytes: &[u8]) -> Result<Response, Error> {
    let version = *bytes.get(field::VERSION).ok_or(Error::Truncated(0))?;
    if version != VERSION {
        return Err(Error::Version(version));
    }
    if bytes.len() < HEADER_LEN {
        return Err(Error::Truncated(bytes.len()));
    }
    let opcode = bytes[field::OPCODE];
    if opcode < RESPONSE_BIT {
        return Err(Error::NotResponse(opcode));
    }
    let result = ResultCode::from_u16(u16_at(bytes, field::RESULT));
    let epoch = u32_at(bytes, field::EPOCH);
    let ok = result == ResultCode::Success;
    match opcode - RESPONSE_BIT {
        OP_EXTERNAL_ADDRESS => {
            if ok && bytes.len() < EXTERNAL_RESPONSE_LEN {
                return Err(Error::Truncated(bytes.len()));
            }
            let ip = bytes
                .get(field::EXTERNAL_IP)
                .and_then(|s| <[u8; 4]>::try_from(s).ok())
                .map(Ipv4Addr::from)
                .filter(|_| ok);
            Ok(Response::ExternalAddress { result, epoch, ip })
        }
        op @ (OP_MAP_UDP | OP_MAP_TCP) => {
            if ok && bytes.len() < MAP_RESPONSE_LEN {
                return Err(Error::Truncated(bytes.len()));
            }
            Ok(Response::Map {
                proto: if op == OP_MAP_UDP {
                    Proto::Udp
                } else {
                    Proto::Tcp
                },
                result,
                epoch,
                internal_port: u16_at(bytes, field::INTERNAL_PORT),
                external_port: u16_at(bytes, field::EXTERNAL_PORT),
                lifetime: Duration::from_secs(u64::from(u32_at(bytes, field::LIFETIME))),
            })
        }
        op => Ok(Response::Other {
            opcode: op,
            result,
            epoch,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6886 §3.2: "Vers = 0, OP = 0", nothing else.
    #[test]
    fn external_address_request_is_two_zero_bytes() {
        assert_eq!(external_address_request(), [0, 0]);
    }

    /// RFC 6886 §3.3 figure: Vers 0, OP 1 (UDP) or 2 (TCP), Reserved 0, Internal Port,
    /// Suggested External Port, Requested Port Mapping Lifetime in seconds.
    #[test]
    fn map_request_layout() {
        let req = map_request(Proto::Tcp, 0x1234, 0xabcd, Duration::from_secs(7200));
        assert_eq!(
            req,
            [0, 2, 0, 0, 0x12, 0x34, 0xab, 0xcd, 0x00, 0x00, 0x1c, 0x20]
        );
        assert_eq!(map_request(Proto::Udp, 1, 2, Duration::ZERO)[1], 1);
        // §3.4: deleting is lifetime 0 and suggested external port 0.
        assert_eq!(
            map_request(Proto::Udp, 4000, 0, Duration::ZERO),
            [0, 1, 0, 0, 0x0f, 0xa0, 0, 0, 0, 0, 0, 0]
        );
        let long = map_request(Proto::Udp, 1, 1, Duration::from_secs(u64::MAX));
        assert_eq!(&long[8..], &[0xff; 4]);
    }

    /// RFC 6886 §3.2 response: Vers 0, OP 128, Result Code, Seconds Since Start of
    /// Epoch, External IPv4 Address.
    #[test]
    fn external_address_response() {
        let bytes = [0, 128, 0, 0, 0, 0, 0x0e, 0x10, 203, 0, 113, 100];
        assert_eq!(
            parse_response(&bytes),
            Ok(Response::ExternalAddress {
                result: ResultCode::Success,
                epoch: 3600,
                ip: Some(Ipv4Addr::new(203, 0, 113, 100)),
            })
        );
    }

    /// Captured from miniupnpd 2.3.1 whose WAN address is in a documentation range: it
    /// answers, with result 3 and a zero address.
    #[test]
    fn miniupnpd_network_failure() {
        let bytes = [0, 0x80, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0];
        let r = parse_response(&bytes).expect("parses");
        assert_eq!(r.result(), ResultCode::NetworkFailure);
        assert_eq!(
            r,
            Response::ExternalAddress {
                result: ResultCode::NetworkFailure,
                epoch: 0,
                ip: None
            }
        );
        assert_eq!(r.result().to_string(), "network failure (result 3)");
        // Its answer to a UDP mapping request for port 4000, lifetime 600 s.
        let bytes = [
            0, 0x81, 0, 3, 0, 0, 0, 1, 0x0f, 0xa0, 0x0f, 0xa0, 0, 0, 2, 0x58,
        ];
        let Ok(Response::Map { proto, result, .. }) = parse_response(&bytes) else {
            panic!("a map response");
        };
        assert_eq!((proto, result), (Proto::Udp, ResultCode::NetworkFailure));
    }

    /// RFC 6886 §3.3 response: OP 128 + x, Internal Port, Mapped External Port, Port
    /// Mapping Lifetime.
    #[test]
    fn map_response() {
        let bytes = [
            0, 130, 0, 0, 0, 0, 0, 9, 0x1f, 0x90, 0x9c, 0x40, 0, 0, 0x0e, 0x10,
        ];
        assert_eq!(
            parse_response(&bytes),
            Ok(Response::Map {
                proto: Proto::Tcp,
                result: ResultCode::Success,
                epoch: 9,
                internal_port: 8080,
                external_port: 40000,
                lifetime: Duration::from_secs(3600),
            })
        );
    }

    /// §3.5: an error response may be just the 8-byte header; it still says why.
    #[test]
    fn short_error_responses_keep_their_result() {
        let r = parse_response(&[0, 129, 0, 2, 0, 0, 0, 5]).expect("header is enough");
        assert_eq!(r.result(), ResultCode::NotAuthorized);
        assert_eq!(r.result().to_string(), "not authorized (result 2)");
        // A PMP server's answer to a PCP request: unsupported version, opcode 128 + 0.
        let r = parse_response(&[0, 128, 0, 1, 0, 0, 0, 5]).expect("parses");
        assert_eq!(r.result(), ResultCode::UnsupportedVersion);
        assert_eq!(
            ResultCode::from_u16(77).to_string(),
            "unknown result (result 77)"
        );
    }

    #[test]
    fn foreign_and_broken_input_is_an_error() {
        assert_eq!(parse_response(&[]), Err(Error::Truncated(0)));
        assert_eq!(parse_response(&[2, 128, 0, 0]), Err(Error::Version(2)));
        assert_eq!(parse_response(&[0, 128, 0]), Err(Error::Truncated(3)));
        assert_eq!(
            parse_response(&[0, 0, 0, 0, 0, 0, 0, 0]),
            Err(Error::NotResponse(0))
        );
        // Success claimed but the address is missing.
        assert_eq!(
            parse_response(&[0, 128, 0, 0, 0, 0, 0, 0, 1]),
            Err(Error::Truncated(9))
        );
        assert_eq!(
            parse_response(&[0, 129, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1]),
            Err(Error::Truncated(12))
        );
        // Every prefix of a valid response parses or errors, never panics.
        let full = [
            0, 130, 0, 0, 0, 0, 0, 9, 0x1f, 0x90, 0x9c, 0x40, 0, 0, 0x0e, 0x10,
        ];
        for n in 0..full.len() {
            let _ = parse_response(&full[..n]);
        }
    }
}
