//! The STUN header's typed parts (RFC 5389 §6, RFC 3489 §11.1): message class and method
//! packed into the type field, and the transaction id, which is 12 bytes after the magic cookie
//! (RFC 5389) or all 16 bytes after the length (RFC 3489 "classic" mode).

use super::Error;

/// The RFC 5389 magic cookie (RFC 5389 §6). Its absence marks an RFC 3489 message.
pub const MAGIC_COOKIE: u32 = 0x2112_A442;

/// Message class, the two C bits of the type field (RFC 5389 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    Request,
    Indication,
    SuccessResponse,
    ErrorResponse,
}

/// Message method, the 12 M bits of the type field. Only Binding exists in STUN proper; other
/// methods (TURN's) round-trip as `Unknown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    Binding,
    Unknown(u16),
}

impl Method {
    fn code(self) -> u16 {
        match self {
            Method::Binding => 0x001,
            Method::Unknown(m) => m & 0x0fff,
        }
    }
}

/// Packs class and method into the type field: M11..M7 C1 M6..M4 C0 M3..M0.
pub fn message_type(class: Class, method: Method) -> u16 {
    let m = method.code();
    let c: u16 = match class {
        Class::Request => 0b00,
        Class::Indication => 0b01,
        Class::SuccessResponse => 0b10,
        Class::ErrorResponse => 0b11,
    };
    (m & 0x000f) | ((m & 0x0070) << 1) | ((m & 0x0f80) << 2) | ((c & 1) << 4) | ((c & 2) << 7)
}

/// Splits a type field into class and method; `NotStun` when the top two bits are set.
pub fn split_message_type(t: u16) -> Result<(Class, Method), Error> {
    if t & 0xc000 != 0 {
        return Err(Error::NotStun);
    }
    let m = (t & 0x000f) | ((t >> 1) & 0x0070) | ((t >> 2) & 0x0f80);
    let class = match ((t >> 4) & 1) | ((t >> 7) & 2) {
        0b00 => Class::Request,
        0b01 => Class::Indication,
        0b10 => Class::SuccessResponse,
        _ => Class::ErrorResponse,
    };
    let method = if m == 0x001 {
        Method::Binding
    } else {
        Method::Unknown(m)
    };
    Ok((class, method))
}

/// A transaction id, whose size says which RFC the message follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransactionId {
    /// RFC 5389/8489: 96 bits after the magic cookie.
    Rfc5389([u8; 12]),
    /// RFC 3489: 128 bits, no magic cookie. Never starts with the cookie, or a modern server
    /// would misread it.
    Rfc3489([u8; 16]),
}

impl TransactionId {
    /// A fresh random RFC 5389 id (ids must be unpredictable: RFC 5389 §6).
    pub fn random() -> Result<Self, Error> {
        let mut b = [0u8; 12];
        getrandom::fill(&mut b).map_err(|_| Error::NoRandomness)?;
        Ok(TransactionId::Rfc5389(b))
    }

    /// A fresh random RFC 3489 id.
    pub fn random_classic() -> Result<Self, Error> {
        let mut b = [0u8; 16];
        loop {
            getrandom::fill(&mut b).map_err(|_| Error::NoRandomness)?;
            if b[..4] != MAGIC_COOKIE.to_be_bytes() {
                return Ok(TransactionId::Rfc3489(b));
            }
        }
    }

    pub fn is_classic(&self) -> bool {
        matches!(self, TransactionId::Rfc3489(_))
    }

    /// Header bytes 4..20 for this id: cookie + id, or the classic id. Also the XOR key of
    /// XOR-MAPPED-ADDRESS (RFC 5389 §15.2).
    pub fn header_key(&self) -> [u8; 16] {
        match self {
            TransactionId::Rfc3489(b) => *b,
            TransactionId::Rfc5389(b) => {
                let mut k = [0u8; 16];
                k[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
                k[4..].copy_from_slice(b);
                k
            }
        }
    }

    /// Reads the id back from header bytes 4..20.
    pub fn from_header_key(key: &[u8; 16]) -> Self {
        if key[..4] == MAGIC_COOKIE.to_be_bytes() {
            let mut b = [0u8; 12];
            b.copy_from_slice(&key[4..]);
            TransactionId::Rfc5389(b)
        } else {
            TransactionId::Rfc3489(*key)
        }
    }
}

impl core::fmt::Display for TransactionId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let bytes: &[u8] = match self {
            TransactionId::Rfc5389(b) => b,
            TransactionId::Rfc3489(b) => b,
        };
        bytes.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binding_types_match_rfc_values() {
        assert_eq!(message_type(Class::Request, Method::Binding), 0x0001);
        assert_eq!(
            message_type(Class::SuccessResponse, Method::Binding),
            0x0101
        );
        assert_eq!(message_type(Class::ErrorResponse, Method::Binding), 0x0111);
        assert_eq!(message_type(Class::Indication, Method::Binding), 0x0011);
        // TURN Allocate (0x003) request, to exercise the bit split.
        assert_eq!(
            split_message_type(0x0003),
            Ok((Class::Request, Method::Unknown(3)))
        );
    }

    #[test]
    fn every_type_round_trips() {
        for t in 0u16..0x4000 {
            let (c, m) = split_message_type(t).unwrap();
            assert_eq!(message_type(c, m), t);
        }
        assert_eq!(split_message_type(0x8001), Err(Error::NotStun));
    }

    #[test]
    fn random_ids_differ_and_classic_avoids_cookie() {
        let a = TransactionId::random().unwrap();
        let b = TransactionId::random().unwrap();
        assert_ne!(a, b);
        let c = TransactionId::random_classic().unwrap();
        assert!(c.is_classic());
        assert_eq!(TransactionId::from_header_key(&c.header_key()), c);
        assert_eq!(TransactionId::from_header_key(&a.header_key()), a);
    }
}
