//! STUN attributes: type codes and their decoded values (RFC 5389 §15, RFC 3489 §11.2,
//! RFC 5780 §7). Decoding one value and writing one value live here; walking the TLV list
//! (offsets, padding, FINGERPRINT position) lives in `packet.rs`, choosing which attributes a
//! message carries lives in `repr.rs`.

use super::Error;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Attribute type codes this crate knows. Anything else round-trips as `Unknown(code)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttrType {
    MappedAddress,
    /// RFC 3489 §11.2.2; deprecated, recognised so it is not "unknown comprehension-required".
    ResponseAddress,
    ChangeRequest,
    SourceAddress,
    ChangedAddress,
    Username,
    MessageIntegrity,
    ErrorCode,
    UnknownAttributes,
    Realm,
    Nonce,
    XorMappedAddress,
    /// ICE (RFC 8445 §16.1), recognised so ICE connectivity checks (and RFC 5769 §2.1) parse.
    Priority,
    UseCandidate,
    IceControlled,
    IceControlling,
    Padding,
    ResponsePort,
    Software,
    AlternateServer,
    Fingerprint,
    ResponseOrigin,
    OtherAddress,
    Unknown(u16),
}

/// (code, variant) pairs, written once so both conversions agree.
const CODES: [(u16, AttrType); 23] = [
    (0x0001, AttrType::MappedAddress),
    (0x0002, AttrType::ResponseAddress),
    (0x0003, AttrType::ChangeRequest),
    (0x0004, AttrType::SourceAddress),
    (0x0005, AttrType::ChangedAddress),
    (0x0006, AttrType::Username),
    (0x0008, AttrType::MessageIntegrity),
    (0x0009, AttrType::ErrorCode),
    (0x000A, AttrType::UnknownAttributes),
    (0x0014, AttrType::Realm),
    (0x0015, AttrType::Nonce),
    (0x0020, AttrType::XorMappedAddress),
    (0x0024, AttrType::Priority),
    (0x0025, AttrType::UseCandidate),
    (0x8029, AttrType::IceControlled),
    (0x802A, AttrType::IceControlling),
    (0x0026, AttrType::Padding),
    (0x0027, AttrType::ResponsePort),
    (0x8022, AttrType::Software),
    (0x8023, AttrType::AlternateServer),
    (0x8028, AttrType::Fingerprint),
    (0x802B, AttrType::ResponseOrigin),
    (0x802C, AttrType::OtherAddress),
];

impl From<u16> for AttrType {
    fn from(code: u16) -> Self {
        CODES
            .iter()
            .find(|(c, _)| *c == code)
            .map_or(AttrType::Unknown(code), |(_, t)| *t)
    }
}

impl From<AttrType> for u16 {
    fn from(t: AttrType) -> u16 {
        match t {
            AttrType::Unknown(code) => code,
            known => CODES
                .iter()
                .find(|(_, k)| *k == known)
                .map_or(0, |(c, _)| *c),
        }
    }
}

impl AttrType {
    /// Types below 0x8000 must be understood or the message refused (RFC 5389 §15).
    pub fn is_comprehension_required(self) -> bool {
        u16::from(self) < 0x8000
    }
}

/// CHANGE-REQUEST flags (RFC 5780 §7.2, RFC 3489 §11.2.4): bit A (0x04) asks the server to
/// answer from its other IP, bit B (0x02) from its other port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct ChangeRequest {
    pub ip: bool,
    pub port: bool,
}

impl ChangeRequest {
    pub const CHANGE_IP: u32 = 0x04;
    pub const CHANGE_PORT: u32 = 0x02;
    pub const NONE: ChangeRequest = ChangeRequest {
        ip: false,
        port: false,
    };
    pub const IP: ChangeRequest = ChangeRequest {
        ip: true,
        port: false,
    };
    pub const PORT: ChangeRequest = ChangeRequest {
        ip: false,
        port: true,
    };
    pub const BOTH: ChangeRequest = ChangeRequest {
        ip: true,
        port: true,
    };

    pub fn from_bits(bits: u32) -> Self {
        ChangeRequest {
            ip: bits & Self::CHANGE_IP != 0,
            port: bits & Self::CHANGE_PORT != 0,
        }
    }

    pub fn bits(self) -> u32 {
        (if self.ip { Self::CHANGE_IP } else { 0 })
            | (if self.port { Self::CHANGE_PORT } else { 0 })
    }

    pub fn is_none(self) -> bool {
        !self.ip && !self.port
    }
}

/// ERROR-CODE (RFC 5389 §15.6): a 300..=699 code and a reason phrase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorCode {
    pub code: u16,
    pub reason: String,
}

/// One decoded attribute, borrowing text and opaque values from the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attribute<'a> {
    MappedAddress(SocketAddr),
    XorMappedAddress(SocketAddr),
    SourceAddress(SocketAddr),
    ChangedAddress(SocketAddr),
    ResponseOrigin(SocketAddr),
    OtherAddress(SocketAddr),
    ChangeRequest(ChangeRequest),
    /// RESPONSE-PORT (RFC 5780 §7.5): where the client wants the response sent.
    ResponsePort(u16),
    /// PADDING (RFC 5780 §7.6): only its length matters.
    Padding(usize),
    /// SOFTWARE (RFC 5389 §15.10), raw bytes: servers in the wild send non-UTF-8 here.
    Software(&'a [u8]),
    ErrorCode {
        code: u16,
        reason: &'a [u8],
    },
    /// UNKNOWN-ATTRIBUTES (RFC 5389 §15.9): a list of 16-bit codes, read with `u16_list`.
    UnknownAttributes(&'a [u8]),
    /// MESSAGE-INTEGRITY: recognised, never verified (no credentials in this crate).
    MessageIntegrity(&'a [u8]),
    /// FINGERPRINT, already checked against the message by the iterator.
    Fingerprint(u32),
    /// Known but unused here (USERNAME, REALM, ...) or unknown comprehension-optional.
    Other {
        kind: u16,
        value: &'a [u8],
    },
}

/// Address families of the *-ADDRESS attributes (RFC 5389 §15.1).
const FAMILY_V4: u8 = 0x01;
const FAMILY_V6: u8 = 0x02;

fn be16(b: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes([*b.first()?, *b.get(1)?]))
}

/// Reads an (optionally XORed) address value. `key` is header bytes 4..20: the magic cookie
/// followed by the transaction id, as RFC 5389 §15.2 XORs with.
fn decode_address(kind: u16, value: &[u8], key: Option<&[u8; 16]>) -> Result<SocketAddr, Error> {
    let bad = Error::BadAttribute(kind);
    let family = *value.get(1).ok_or(bad)?;
    let mut port = be16(value.get(2..4).ok_or(bad)?).ok_or(bad)?;
    if let Some(k) = key {
        port ^= u16::from_be_bytes([k[0], k[1]]);
    }
    let ip = match (family, value.len()) {
        (FAMILY_V4, 8) => {
            let mut o = [0u8; 4];
            o.copy_from_slice(value.get(4..8).ok_or(bad)?);
            if let Some(k) = key {
                o.iter_mut().zip(k.iter()).for_each(|(b, k)| *b ^= k);
            }
            IpAddr::V4(Ipv4Addr::from(o))
        }
        (FAMILY_V6, 20) => {
            let mut o = [0u8; 16];
            o.copy_from_slice(value.get(4..20).ok_or(bad)?);
            if let Some(k) = key {
                o.iter_mut().zip(k.iter()).for_each(|(b, k)| *b ^= k);
            }
            IpAddr::V6(Ipv6Addr::from(o))
        }
        _ => return Err(bad),
    };
    Ok(SocketAddr::new(ip, port))
}

/// Decodes one attribute value. `key` is header bytes 4..20; `has_cookie` says whether the
/// first four of them are the RFC 5389 magic cookie.
pub(crate) fn decode<'a>(
    kind: u16,
    value: &'a [u8],
    key: &[u8; 16],
    has_cookie: bool,
) -> Result<Attribute<'a>, Error> {
    let bad = Error::BadAttribute(kind);
    Ok(match AttrType::from(kind) {
        AttrType::MappedAddress => Attribute::MappedAddress(decode_address(kind, value, None)?),
        AttrType::XorMappedAddress if !has_cookie => return Err(Error::BadCookie),
        AttrType::XorMappedAddress => {
            Attribute::XorMappedAddress(decode_address(kind, value, Some(key))?)
        }
        AttrType::SourceAddress => Attribute::SourceAddress(decode_address(kind, value, None)?),
        AttrType::ChangedAddress => Attribute::ChangedAddress(decode_address(kind, value, None)?),
        AttrType::ResponseOrigin => Attribute::ResponseOrigin(decode_address(kind, value, None)?),
        AttrType::OtherAddress => Attribute::OtherAddress(decode_address(kind, value, None)?),
        AttrType::ChangeRequest => {
            let b: [u8; 4] = value.try_into().map_err(|_| bad)?;
            Attribute::ChangeRequest(ChangeRequest::from_bits(u32::from_be_bytes(b)))
        }
        AttrType::ResponsePort => Attribute::ResponsePort(be16(value).ok_or(bad)?),
        AttrType::Padding => Attribute::Padding(value.len()),
        AttrType::Software => Attribute::Software(value),
        AttrType::ErrorCode => {
            let class = u16::from(*value.get(2).ok_or(bad)? & 0x07);
            let number = u16::from(*value.get(3).ok_or(bad)?);
            if !(3..=6).contains(&class) || number > 99 {
                return Err(bad);
            }
            Attribute::ErrorCode {
                code: class * 100 + number,
                reason: value.get(4..).unwrap_or(&[]),
            }
        }
        AttrType::UnknownAttributes if !value.len().is_multiple_of(2) => return Err(bad),
        AttrType::UnknownAttributes => Attribute::UnknownAttributes(value),
        AttrType::MessageIntegrity if value.len() != 20 => return Err(bad),
        AttrType::MessageIntegrity => Attribute::MessageIntegrity(value),
        AttrType::Fingerprint => {
            let b: [u8; 4] = value.try_into().map_err(|_| bad)?;
            Attribute::Fingerprint(u32::from_be_bytes(b))
        }
        AttrType::Unknown(code) if code < 0x8000 => return Err(Error::UnknownRequiredAttr(code)),
        _ => Attribute::Other { kind, value },
    })
}

/// The 16-bit codes of an UNKNOWN-ATTRIBUTES value.
pub fn u16_list(value: &[u8]) -> impl Iterator<Item = u16> + '_ {
    value
        .chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
}

/// Value length of an address attribute.
pub(crate) fn address_len(addr: &SocketAddr) -> usize {
    if addr.is_ipv4() { 8 } else { 20 }
}

/// Writes an address value into `out` (exactly `address_len` bytes), XORed when `key` is given.
pub(crate) fn write_address(out: &mut [u8], addr: &SocketAddr, key: Option<&[u8; 16]>) {
    let zero = [0u8; 16];
    let k = key.unwrap_or(&zero);
    let port = addr.port() ^ u16::from_be_bytes([k[0], k[1]]);
    let (family, octets): (u8, Vec<u8>) = match addr.ip() {
        IpAddr::V4(ip) => (FAMILY_V4, ip.octets().to_vec()),
        IpAddr::V6(ip) => (FAMILY_V6, ip.octets().to_vec()),
    };
    let header = [0, family, (port >> 8) as u8, port as u8];
    let body = octets.iter().zip(k.iter()).map(|(b, k)| b ^ k);
    for (slot, byte) in out.iter_mut().zip(header.into_iter().chain(body)) {
        *slot = byte;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attr_type_codes_round_trip() {
        for (code, t) in CODES {
            assert_eq!(AttrType::from(code), t);
            assert_eq!(u16::from(t), code);
        }
        assert_eq!(AttrType::from(0x7777), AttrType::Unknown(0x7777));
        assert_eq!(u16::from(AttrType::Unknown(0x7777)), 0x7777);
        assert!(AttrType::Unknown(0x7777).is_comprehension_required());
        assert!(!AttrType::Software.is_comprehension_required());
    }

    #[test]
    fn change_request_bits_follow_rfc5780() {
        assert_eq!(ChangeRequest::IP.bits(), 0x04);
        assert_eq!(ChangeRequest::PORT.bits(), 0x02);
        assert_eq!(ChangeRequest::from_bits(0x04), ChangeRequest::IP);
        assert_eq!(ChangeRequest::from_bits(0x02), ChangeRequest::PORT);
        assert_eq!(ChangeRequest::from_bits(0x06), ChangeRequest::BOTH);
    }

    #[test]
    fn address_with_unknown_family_is_rejected() {
        let key = [0u8; 16];
        let v = [0, 3, 0, 80, 1, 2, 3, 4];
        assert_eq!(
            decode(0x0001, &v, &key, true),
            Err(Error::BadAttribute(0x0001))
        );
        // IPv4 family with an IPv6-sized value.
        let mut v6 = [0u8; 20];
        v6[1] = FAMILY_V4;
        assert_eq!(
            decode(0x0001, &v6, &key, true),
            Err(Error::BadAttribute(0x0001))
        );
    }

    #[test]
    fn error_code_class_out_of_range_is_rejected() {
        let key = [0u8; 16];
        assert_eq!(
            decode(0x0009, &[0, 0, 7, 0], &key, true),
            Err(Error::BadAttribute(0x0009))
        );
        assert_eq!(
            decode(0x0009, &[0, 0, 4, 100], &key, true),
            Err(Error::BadAttribute(0x0009))
        );
        let ok = decode(0x0009, b"\0\0\x04\x20Unknown", &key, true);
        assert_eq!(
            ok,
            Ok(Attribute::ErrorCode {
                code: 432,
                reason: b"Unknown"
            })
        );
    }

    #[test]
    fn xor_mapped_without_cookie_is_bad_cookie() {
        let key = [0u8; 16];
        let v = [0, 1, 0, 80, 1, 2, 3, 4];
        assert_eq!(decode(0x0020, &v, &key, false), Err(Error::BadCookie));
    }

    #[test]
    fn address_write_then_decode_round_trips() {
        let key: [u8; 16] = core::array::from_fn(|i| i as u8 * 7 + 1);
        for addr in ["198.51.100.7:3478", "[2001:db8::5]:40000"] {
            let addr: SocketAddr = addr.parse().unwrap();
            let mut buf = vec![0xa5; address_len(&addr)];
            write_address(&mut buf, &addr, Some(&key));
            assert_eq!(decode_address(0x20, &buf, Some(&key)), Ok(addr));
            write_address(&mut buf, &addr, None);
            assert_eq!(decode_address(0x01, &buf, None), Ok(addr));
        }
    }
}
