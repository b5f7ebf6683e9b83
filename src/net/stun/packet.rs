//! `Packet`: a checked view over the bytes of one STUN message (RFC 5389 §6, §15), after
//! smoltcp's `wire` views. Once `check_len` has passed, nothing here panics; getters on an
//! unchecked short buffer read zeros instead of panicking. Walking the attribute list (padding,
//! FINGERPRINT placement and CRC) happens in exactly one place, `Attributes::next`.
//! Turning a packet into a value is `repr.rs`.

use super::Error;
use super::attribute::{self, AttrType, Attribute};
use super::fingerprint::fingerprint;
use super::header::{MAGIC_COOKIE, TransactionId};

/// Byte ranges of the header, named once.
mod field {
    use core::ops::Range;
    pub const TYPE: Range<usize> = 0..2;
    pub const LENGTH: Range<usize> = 2..4;
    pub const COOKIE: Range<usize> = 4..8;
    /// Cookie and RFC 5389 id together; all of it is the id in RFC 3489.
    pub const KEY: Range<usize> = 4..20;
}

/// Size of the fixed STUN header.
pub const HEADER_LEN: usize = 20;

/// Total size of the message whose first 4 bytes are `header` (for stream framing, RFC 5389
/// §7.2.2): `None` until 4 bytes are there.
pub fn message_len(header: &[u8]) -> Option<usize> {
    let b = header.get(field::LENGTH)?;
    Some(HEADER_LEN + usize::from(u16::from_be_bytes([b[0], b[1]])))
}

/// A view over one STUN message.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it (use for buffers you are about to emit into).
    pub fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps untrusted bytes, checking the header and length field first.
    pub fn new_checked(buffer: T) -> Result<Packet<T>, Error> {
        let p = Packet::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// The header fits, the length field is a multiple of 4 and equals the bytes after the
    /// header (a datagram carries exactly one message).
    pub fn check_len(&self) -> Result<(), Error> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let body = usize::from(self.length());
        if !body.is_multiple_of(4) {
            return Err(Error::BadLength);
        }
        match (HEADER_LEN + body).cmp(&len) {
            core::cmp::Ordering::Greater => Err(Error::Truncated),
            core::cmp::Ordering::Less => Err(Error::BadLength),
            core::cmp::Ordering::Equal => Ok(()),
        }
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn read<const N: usize>(&self, range: core::ops::Range<usize>) -> [u8; N] {
        let mut out = [0u8; N];
        if let Some(src) = self.buffer.as_ref().get(range) {
            out.iter_mut().zip(src).for_each(|(o, s)| *o = *s);
        }
        out
    }

    /// The raw type field (class and method bits; see `header::split_message_type`).
    pub fn msg_type(&self) -> u16 {
        u16::from_be_bytes(self.read(field::TYPE))
    }

    /// Bytes of attributes after the header.
    pub fn length(&self) -> u16 {
        u16::from_be_bytes(self.read(field::LENGTH))
    }

    pub fn cookie(&self) -> u32 {
        u32::from_be_bytes(self.read(field::COOKIE))
    }

    /// RFC 5389 message (true) or RFC 3489 classic one (false).
    pub fn has_magic_cookie(&self) -> bool {
        self.cookie() == MAGIC_COOKIE
    }

    /// Header bytes 4..20: the XOR key of XOR-MAPPED-ADDRESS.
    pub fn key(&self) -> [u8; 16] {
        self.read(field::KEY)
    }

    pub fn transaction_id(&self) -> TransactionId {
        TransactionId::from_header_key(&self.key())
    }

    /// The attribute bytes (empty if the buffer is shorter than the length field says).
    pub fn payload(&self) -> &[u8] {
        let end = HEADER_LEN + usize::from(self.length());
        self.buffer.as_ref().get(HEADER_LEN..end).unwrap_or(&[])
    }

    /// Attributes in order, decoded, each a `Result` so a truncated TLV is an error rather than
    /// a silent stop. Decoding errors of one value do not stop the walk; structural ones do.
    pub fn attributes(&self) -> Attributes<'_> {
        let end = HEADER_LEN + usize::from(self.length());
        let bytes = self.buffer.as_ref();
        Attributes {
            // A buffer shorter than the length field still gets walked, so the overrun is
            // reported rather than hidden.
            message: bytes.get(..end).unwrap_or(bytes),
            offset: HEADER_LEN,
            key: self.key(),
            has_cookie: self.has_magic_cookie(),
            after_fingerprint: false,
            done: false,
        }
    }

    /// Every unknown comprehension-required attribute type, for a 420 reply's
    /// UNKNOWN-ATTRIBUTES (RFC 5389 §7.3.1).
    pub fn unknown_required(&self) -> Vec<u16> {
        self.attributes()
            .filter_map(|a| match a {
                Err(Error::UnknownRequiredAttr(code)) => Some(code),
                _ => None,
            })
            .collect()
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    fn write(&mut self, range: core::ops::Range<usize>, bytes: &[u8]) {
        if let Some(dst) = self.buffer.as_mut().get_mut(range) {
            dst.iter_mut().zip(bytes).for_each(|(d, s)| *d = *s);
        }
    }

    pub fn set_msg_type(&mut self, t: u16) {
        self.write(field::TYPE, &t.to_be_bytes());
    }

    pub fn set_length(&mut self, len: u16) {
        self.write(field::LENGTH, &len.to_be_bytes());
    }

    /// Writes header bytes 4..20: cookie and id, or the classic 16-byte id.
    pub fn set_transaction_id(&mut self, id: &TransactionId) {
        self.write(field::KEY, &id.header_key());
    }

    /// The whole buffer, header included (FINGERPRINT is computed over it).
    pub fn buffer_mut(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }

    /// Everything after the header, for writing attributes.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        self.buffer
            .as_mut()
            .get_mut(HEADER_LEN..)
            .unwrap_or(&mut [])
    }
}

/// Iterator over a message's attributes; see `Packet::attributes`.
pub struct Attributes<'a> {
    message: &'a [u8],
    offset: usize,
    key: [u8; 16],
    has_cookie: bool,
    after_fingerprint: bool,
    done: bool,
}

impl<'a> Iterator for Attributes<'a> {
    type Item = Result<Attribute<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let rest = self.message.get(self.offset..).unwrap_or(&[]);
        if rest.is_empty() {
            self.done = true;
            return None;
        }
        let (kind, len) = match rest {
            [t0, t1, l0, l1, ..] => (
                u16::from_be_bytes([*t0, *t1]),
                usize::from(u16::from_be_bytes([*l0, *l1])),
            ),
            _ => {
                self.done = true;
                return Some(Err(Error::Truncated));
            }
        };
        if self.after_fingerprint {
            self.done = true;
            return Some(Err(Error::AttrAfterFingerprint(kind)));
        }
        // Values are padded to 4 bytes (RFC 5389 §15); the padding must be inside the message.
        let padded = (len + 3) & !3;
        let (Some(value), Some(_)) = (rest.get(4..4 + len), rest.get(4..4 + padded)) else {
            self.done = true;
            return Some(Err(Error::AttrOverrun(kind)));
        };
        let start = self.offset;
        self.offset += 4 + padded;
        if AttrType::from(kind) == AttrType::Fingerprint {
            self.after_fingerprint = true;
            let covered = self.message.get(..start).unwrap_or(&[]);
            let ok = <[u8; 4]>::try_from(value)
                .is_ok_and(|v| u32::from_be_bytes(v) == fingerprint(covered));
            if !ok {
                self.done = true;
                return Some(Err(Error::BadFingerprint));
            }
        }
        Some(attribute::decode(kind, value, &self.key, self.has_cookie))
    }
}
