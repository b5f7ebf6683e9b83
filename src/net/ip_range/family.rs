//! Address families as P2PD numbers them (`IP4` = 2, `IP6` = the OS's `AF_INET6`).
//!
//! The numbers leak into P2PD's JSON (`"rp": {"2": [...], "10": [...]}`), so they are kept,
//! but everywhere else a two-variant enum is used. IPv4 always sorts first, as P2PD iterates
//! `VALID_AFS = [IP4, IP6]` in that order.

use std::fmt;
use std::net::IpAddr;

/// `AF_INET`: 2 on every OS.
pub const AF_INET: u32 = 2;
/// `AF_INET6` on Linux. P2PD writes the host OS's number (23 on Windows, 30 on macOS, 28 on
/// FreeBSD); all of them are accepted when reading.
pub const AF_INET6: u32 = 10;

/// IPv4 or IPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    /// Both families, IPv4 first.
    pub const ALL: [Family; 2] = [Family::V4, Family::V6];

    /// The family of an address.
    pub fn of(ip: &IpAddr) -> Family {
        if ip.is_ipv4() { Family::V4 } else { Family::V6 }
    }

    /// P2PD's number for this family (2 or Linux's 10).
    pub fn number(self) -> u32 {
        match self {
            Family::V4 => AF_INET,
            Family::V6 => AF_INET6,
        }
    }

    /// Reads a P2PD family number, including other OSes' `AF_INET6` (23, 28, 30).
    pub fn from_number(n: i64) -> Option<Family> {
        match n {
            2 => Some(Family::V4),
            10 | 23 | 28 | 30 => Some(Family::V6),
            _ => None,
        }
    }

    /// Bits in an address: 32 or 128 (P2PD's `max_cidr`).
    pub fn max_prefix(self) -> u8 {
        match self {
            Family::V4 => 32,
            Family::V6 => 128,
        }
    }

    /// The loopback address of this family.
    pub fn loopback(self) -> IpAddr {
        match self {
            Family::V4 => IpAddr::from([127, 0, 0, 1]),
            Family::V6 => IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]),
        }
    }

    /// The wildcard address of this family (`0.0.0.0` or `::`).
    pub fn unspecified(self) -> IpAddr {
        match self {
            Family::V4 => IpAddr::from([0u8, 0, 0, 0]),
            Family::V6 => IpAddr::from([0u16; 8]),
        }
    }

    /// P2PD's `BLACK_HOLE_IPS`: never routed, forced "public" by `IPRange`.
    pub fn black_hole(self) -> IpAddr {
        match self {
            Family::V4 => IpAddr::from([192, 0, 2, 1]),
            Family::V6 => IpAddr::from([0x100u16, 0, 0, 0, 0, 0, 0, 1]),
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        })
    }
}
