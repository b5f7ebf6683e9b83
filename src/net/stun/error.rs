//! Why a STUN message was refused. Small and `Copy` (smoltcp's `wire::Error` spirit, but with
//! named variants) so the codec can return it from hot paths and callers can match on it.
//! Socket-level failures live in `client::Error`, which wraps this one.

/// A STUN message (or the buffer meant to hold one) was malformed or unsupported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Fewer bytes than the 20-byte header or the header's length field promise.
    /// For a stream, read more; for a datagram, drop it.
    #[error("STUN message truncated: fewer bytes than the header or its length field promise")]
    Truncated,
    /// The two top bits of the type field are set: this is some other protocol sharing the port
    /// (RFC 5389 §6), not STUN.
    #[error("not a STUN message: the two top bits of the message type are not zero")]
    NotStun,
    /// An attribute that only exists with the RFC 5389 magic cookie (XOR-MAPPED-ADDRESS) in an
    /// RFC 3489 message, where its XOR key is undefined.
    #[error("XOR-MAPPED-ADDRESS in a message without the RFC 5389 magic cookie")]
    BadCookie,
    /// The length field is not a multiple of 4, or the datagram holds bytes past it.
    #[error("STUN length field is not a multiple of 4 or disagrees with the datagram size")]
    BadLength,
    /// An attribute's length runs past the end of the message (the value is the attribute type).
    #[error("STUN attribute 0x{0:04x} runs past the end of the message")]
    AttrOverrun(u16),
    /// A comprehension-required attribute (type below 0x8000) we do not know (RFC 5389 §7.3).
    /// Only the first is named here; `Packet::unknown_required` lists them all.
    #[error("unknown comprehension-required STUN attribute 0x{0:04x}")]
    UnknownRequiredAttr(u16),
    /// A known attribute whose value has the wrong size or content (e.g. an address family that
    /// is neither IPv4 nor IPv6, an ERROR-CODE class outside 3..=6).
    #[error("STUN attribute 0x{0:04x} has a malformed value")]
    BadAttribute(u16),
    /// FINGERPRINT is present but its CRC-32 does not match the message (RFC 5389 §15.5).
    #[error("STUN FINGERPRINT does not match the message (corrupted, or not STUN)")]
    BadFingerprint,
    /// An attribute follows FINGERPRINT, which must be last (RFC 5389 §15.5).
    #[error("STUN attribute 0x{0:04x} follows FINGERPRINT, which must be the last attribute")]
    AttrAfterFingerprint(u16),
    /// The buffer given to `emit` is shorter than `Repr::buffer_len`, or a value is too long
    /// for a 16-bit length field. A caller bug, reported instead of panicking.
    #[error("buffer too small for the STUN message being emitted")]
    BufferTooSmall,
    /// The operating system's random source failed while making a transaction id.
    #[error("no randomness available for a STUN transaction id")]
    NoRandomness,
}
