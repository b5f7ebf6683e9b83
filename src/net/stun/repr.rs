//! `Repr`: a STUN message as a plain value (RFC 5389 §6, §15; RFC 3489 §11; RFC 5780 §7),
//! parsed from a checked `Packet` and emitted back into bytes. Which attribute code means what
//! is in `attribute.rs`; this file decides which attributes a message carries and their order.

use super::Error;
use super::attribute::{self, AttrType, Attribute, ChangeRequest, ErrorCode};
use super::fingerprint::fingerprint;
use super::header::{self, Class, Method, TransactionId};
use super::packet::{HEADER_LEN, Packet};
use std::net::SocketAddr;

/// A STUN message. Fields are the attributes this crate understands; on parse the first
/// occurrence of a repeated attribute wins (RFC 5389 §15).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repr {
    pub class: Class,
    pub method: Method,
    pub transaction_id: TransactionId,
    pub xor_mapped_address: Option<SocketAddr>,
    pub mapped_address: Option<SocketAddr>,
    pub change_request: Option<ChangeRequest>,
    pub response_port: Option<u16>,
    /// RFC 3489: the address the response was sent from.
    pub source_address: Option<SocketAddr>,
    /// RFC 3489: the server's address for change requests.
    pub changed_address: Option<SocketAddr>,
    /// RFC 5780 counterparts of SOURCE-ADDRESS and CHANGED-ADDRESS.
    pub response_origin: Option<SocketAddr>,
    pub other_address: Option<SocketAddr>,
    pub error_code: Option<ErrorCode>,
    pub unknown_attributes: Vec<u16>,
    /// PADDING length in bytes (RFC 5780 §7.6), emitted as zeros.
    pub padding: Option<u16>,
    pub software: Option<String>,
    /// MESSAGE-INTEGRITY was present. Never verified and never emitted: this crate holds no
    /// credentials.
    pub message_integrity: bool,
    /// On parse: FINGERPRINT was present (and matched). On emit: append one.
    pub fingerprint: bool,
}

impl Repr {
    fn new(class: Class, transaction_id: TransactionId) -> Repr {
        Repr {
            class,
            method: Method::Binding,
            transaction_id,
            xor_mapped_address: None,
            mapped_address: None,
            change_request: None,
            response_port: None,
            source_address: None,
            changed_address: None,
            response_origin: None,
            other_address: None,
            error_code: None,
            unknown_attributes: Vec::new(),
            padding: None,
            software: None,
            message_integrity: false,
            fingerprint: false,
        }
    }

    /// A bare Binding request.
    pub fn binding_request(transaction_id: TransactionId) -> Repr {
        Repr::new(Class::Request, transaction_id)
    }

    /// A bare Binding success response, to be filled in.
    pub fn binding_success(transaction_id: TransactionId) -> Repr {
        Repr::new(Class::SuccessResponse, transaction_id)
    }

    /// A Binding error response (RFC 5389 §15.6).
    pub fn binding_error(transaction_id: TransactionId, code: u16, reason: &str) -> Repr {
        let mut r = Repr::new(Class::ErrorResponse, transaction_id);
        r.error_code = Some(ErrorCode {
            code,
            reason: reason.to_owned(),
        });
        r
    }

    /// The reflexive address, preferring XOR-MAPPED-ADDRESS (immune to NATs that rewrite
    /// addresses inside payloads).
    pub fn mapped(&self) -> Option<SocketAddr> {
        self.xor_mapped_address.or(self.mapped_address)
    }

    /// Where the response came from, as the server states it (RFC 5780 or RFC 3489).
    pub fn origin(&self) -> Option<SocketAddr> {
        self.response_origin.or(self.source_address)
    }

    /// The server's alternate address for change requests (RFC 5780 or RFC 3489).
    pub fn alternate(&self) -> Option<SocketAddr> {
        self.other_address.or(self.changed_address)
    }

    /// Reads a checked packet. Any malformed or unknown comprehension-required attribute, or a
    /// bad FINGERPRINT, refuses the whole message; attributes after MESSAGE-INTEGRITY (but
    /// FINGERPRINT) are not read.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Repr, Error> {
        packet.check_len()?;
        let (class, method) = header::split_message_type(packet.msg_type())?;
        let mut r = Repr::new(class, packet.transaction_id());
        r.method = method;
        let mut after_integrity = false;
        for attr in packet.attributes() {
            let attr = attr?;
            // RFC 8489 §14.5: what follows MESSAGE-INTEGRITY, FINGERPRINT aside, is ignored.
            if after_integrity && !matches!(attr, Attribute::Fingerprint(_)) {
                continue;
            }
            match attr {
                Attribute::XorMappedAddress(a) => first(&mut r.xor_mapped_address, a),
                Attribute::MappedAddress(a) => first(&mut r.mapped_address, a),
                Attribute::ChangeRequest(c) => first(&mut r.change_request, c),
                Attribute::ResponsePort(p) => first(&mut r.response_port, p),
                Attribute::SourceAddress(a) => first(&mut r.source_address, a),
                Attribute::ChangedAddress(a) => first(&mut r.changed_address, a),
                Attribute::ResponseOrigin(a) => first(&mut r.response_origin, a),
                Attribute::OtherAddress(a) => first(&mut r.other_address, a),
                Attribute::ErrorCode { code, reason } => {
                    let reason = String::from_utf8_lossy(reason).into_owned();
                    first(&mut r.error_code, ErrorCode { code, reason })
                }
                Attribute::UnknownAttributes(v) if r.unknown_attributes.is_empty() => {
                    r.unknown_attributes = attribute::u16_list(v).collect()
                }
                Attribute::Padding(n) => first(&mut r.padding, n as u16),
                Attribute::Software(s) => {
                    first(&mut r.software, String::from_utf8_lossy(s).into_owned())
                }
                Attribute::MessageIntegrity(_) => {
                    r.message_integrity = true;
                    after_integrity = true;
                }
                Attribute::Fingerprint(_) => r.fingerprint = true,
                Attribute::UnknownAttributes(_) | Attribute::Other { .. } => {}
            }
        }
        Ok(r)
    }

    /// (type, value length) of every attribute `emit` writes, in order.
    fn layout(&self) -> Vec<(AttrType, usize)> {
        let addr = |t, a: &Option<SocketAddr>| a.as_ref().map(|a| (t, attribute::address_len(a)));
        let mut out: Vec<(AttrType, usize)> = [
            addr(AttrType::XorMappedAddress, &self.xor_mapped_address),
            addr(AttrType::MappedAddress, &self.mapped_address),
            self.change_request.map(|_| (AttrType::ChangeRequest, 4)),
            self.response_port.map(|_| (AttrType::ResponsePort, 4)),
            addr(AttrType::SourceAddress, &self.source_address),
            addr(AttrType::ChangedAddress, &self.changed_address),
            addr(AttrType::ResponseOrigin, &self.response_origin),
            addr(AttrType::OtherAddress, &self.other_address),
            self.error_code
                .as_ref()
                .map(|e| (AttrType::ErrorCode, 4 + e.reason.len())),
            (!self.unknown_attributes.is_empty()).then(|| {
                (
                    AttrType::UnknownAttributes,
                    2 * self.unknown_attributes.len(),
                )
            }),
            self.software
                .as_ref()
                .map(|s| (AttrType::Software, s.len())),
            self.padding.map(|n| (AttrType::Padding, usize::from(n))),
        ]
        .into_iter()
        .flatten()
        .collect();
        if self.fingerprint {
            out.push((AttrType::Fingerprint, 4));
        }
        out
    }

    /// Bytes `emit` needs.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN
            + self
                .layout()
                .iter()
                .map(|(_, len)| 4 + ((len + 3) & !3))
                .sum::<usize>()
    }

    /// Writes the message into `packet`, whose buffer must be at least `buffer_len` bytes.
    /// Every byte up to `buffer_len` is written (padding as zeros).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) -> Result<(), Error> {
        let total = self.buffer_len();
        let body = u16::try_from(total - HEADER_LEN).map_err(|_| Error::BufferTooSmall)?;
        if packet.payload_mut().len() + HEADER_LEN < total
            || self.layout().iter().any(|(_, l)| *l > 0xffff)
        {
            return Err(Error::BufferTooSmall);
        }
        if self.transaction_id.is_classic() && self.xor_mapped_address.is_some() {
            return Err(Error::BadCookie);
        }
        packet.set_msg_type(header::message_type(self.class, self.method));
        packet.set_length(body);
        packet.set_transaction_id(&self.transaction_id);
        let key = self.transaction_id.header_key();
        let mut offset = 0;
        for (kind, len) in self.layout() {
            let padded = (len + 3) & !3;
            let payload = packet.payload_mut();
            let Some(slot) = payload.get_mut(offset..offset + 4 + padded) else {
                return Err(Error::BufferTooSmall);
            };
            slot.fill(0);
            slot[..2].copy_from_slice(&u16::from(kind).to_be_bytes());
            slot[2..4].copy_from_slice(&(len as u16).to_be_bytes());
            self.write_value(kind, &mut slot[4..4 + len], &key);
            offset += 4 + padded;
        }
        if self.fingerprint {
            // FINGERPRINT covers the whole header (with the final length) and all attributes
            // before it, so it is computed last over what is already written.
            let buf = packet.buffer_mut();
            let fp_at = total - 8;
            let crc = fingerprint(buf.get(..fp_at).unwrap_or(&[]));
            if let Some(v) = buf.get_mut(total - 4..total) {
                v.copy_from_slice(&crc.to_be_bytes());
            }
        }
        Ok(())
    }

    fn write_value(&self, kind: AttrType, out: &mut [u8], key: &[u8; 16]) {
        let addr = |out: &mut [u8], a: &Option<SocketAddr>, key| {
            if let Some(a) = a {
                attribute::write_address(out, a, key)
            }
        };
        match kind {
            AttrType::XorMappedAddress => addr(out, &self.xor_mapped_address, Some(key)),
            AttrType::MappedAddress => addr(out, &self.mapped_address, None),
            AttrType::SourceAddress => addr(out, &self.source_address, None),
            AttrType::ChangedAddress => addr(out, &self.changed_address, None),
            AttrType::ResponseOrigin => addr(out, &self.response_origin, None),
            AttrType::OtherAddress => addr(out, &self.other_address, None),
            AttrType::ChangeRequest => {
                let bits = self.change_request.unwrap_or_default().bits();
                out.copy_from_slice(&bits.to_be_bytes());
            }
            AttrType::ResponsePort => {
                out[..2].copy_from_slice(&self.response_port.unwrap_or(0).to_be_bytes())
            }
            AttrType::ErrorCode => {
                if let Some(e) = &self.error_code {
                    out[2] = (e.code / 100) as u8 & 0x07;
                    out[3] = (e.code % 100) as u8;
                    out[4..].copy_from_slice(e.reason.as_bytes());
                }
            }
            AttrType::UnknownAttributes => {
                for (chunk, code) in out.chunks_exact_mut(2).zip(&self.unknown_attributes) {
                    chunk.copy_from_slice(&code.to_be_bytes());
                }
            }
            AttrType::Software => {
                out.copy_from_slice(self.software.as_deref().unwrap_or_default().as_bytes())
            }
            // PADDING is zeros (already filled); FINGERPRINT is written by `emit` at the end.
            _ => {}
        }
    }

    /// Emits into a fresh vector.
    pub fn to_bytes(&self) -> Result<Vec<u8>, Error> {
        let mut packet = Packet::new_unchecked(vec![0u8; self.buffer_len()]);
        self.emit(&mut packet)?;
        Ok(packet.into_inner())
    }
}

fn first<V>(slot: &mut Option<V>, v: V) {
    if slot.is_none() {
        *slot = Some(v);
    }
}

impl core::fmt::Display for Repr {
    /// One line, e.g. `STUN Binding SuccessResponse id=… mapped=…:… origin=…`.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let mode = if self.transaction_id.is_classic() {
            " rfc3489"
        } else {
            ""
        };
        write!(
            f,
            "STUN {:?} {:?}{mode} id={}",
            self.method, self.class, self.transaction_id
        )?;
        let addrs = [
            ("mapped", self.mapped()),
            ("origin", self.origin()),
            ("alternate", self.alternate()),
        ];
        for (name, a) in addrs {
            if let Some(a) = a {
                write!(f, " {name}={a}")?;
            }
        }
        if let Some(c) = self.change_request {
            write!(f, " change(ip={},port={})", c.ip, c.port)?;
        }
        if let Some(e) = &self.error_code {
            write!(f, " error={} {:?}", e.code, e.reason)?;
        }
        Ok(())
    }
}

impl<T: AsRef<[u8]>> core::fmt::Display for Packet<T> {
    /// The `Repr` summary, or the reason the bytes are not a valid message.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match Repr::parse(self) {
            Ok(r) => write!(f, "{r}"),
            Err(e) => write!(f, "STUN (invalid: {e})"),
        }
    }
}
