//! Which addresses count as private, exactly as P2PD decides it.
//!
//! P2PD asks Python's `ipaddress.is_private` (IANA special-purpose registries, RFC 6890) and
//! then forces a few addresses public. Rust's `Ipv4Addr::is_private` only knows RFC 1918, so
//! the table is replicated here. It follows the Python table as fixed for CVE-2024-4032
//! (3.11.10 / 3.12.4 and later): `192.0.0.0/24` with two exceptions, ORCHIDv2 and friends
//! public, IPv4-mapped IPv6 judged by its IPv4 part.
//!
//! Consequences callers should know: CGNAT `100.64.0.0/10` is *public*; the documentation
//! ranges (`192.0.2.0/24`, `198.51.100.0/24`, `203.0.113.0/24`, `2001:db8::/32`) are
//! *private*; ULA `fc00::/7` is private (and is not link-local: see `is_link_local`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// (network, prefix) rows of Python's `_private_networks` for IPv4.
const V4_PRIVATE: &[([u8; 4], u8)] = &[
    ([0, 0, 0, 0], 8),
    ([10, 0, 0, 0], 8),
    ([127, 0, 0, 0], 8),
    ([169, 254, 0, 0], 16),
    ([172, 16, 0, 0], 12),
    ([192, 0, 0, 0], 24),
    ([192, 0, 0, 170], 31),
    ([192, 0, 2, 0], 24),
    ([192, 168, 0, 0], 16),
    ([198, 18, 0, 0], 15),
    ([198, 51, 100, 0], 24),
    ([203, 0, 113, 0], 24),
    ([240, 0, 0, 0], 4),
    ([255, 255, 255, 255], 32),
];

/// Globally reachable holes inside `V4_PRIVATE` (PCP and TURN anycast, RFC 7723 / RFC 8155).
const V4_EXCEPTIONS: &[([u8; 4], u8)] = &[([192, 0, 0, 9], 32), ([192, 0, 0, 10], 32)];

/// Python's `_private_networks` for IPv6, as 8 groups.
const V6_PRIVATE: &[([u16; 8], u8)] = &[
    ([0, 0, 0, 0, 0, 0, 0, 1], 128),
    ([0, 0, 0, 0, 0, 0, 0, 0], 128),
    ([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48),
    ([0x100, 0, 0, 0, 0, 0, 0, 0], 64),
    ([0x2001, 0, 0, 0, 0, 0, 0, 0], 23),
    ([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32),
    ([0x2002, 0, 0, 0, 0, 0, 0, 0], 16),
    ([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20),
    ([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7),
    ([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10),
];

/// Globally reachable holes inside `V6_PRIVATE` (TEREDO-relay anycast, AMT, ORCHIDv2 ...).
const V6_EXCEPTIONS: &[([u16; 8], u8)] = &[
    ([0x2001, 1, 0, 0, 0, 0, 0, 1], 128),
    ([0x2001, 1, 0, 0, 0, 0, 0, 2], 128),
    ([0x2001, 3, 0, 0, 0, 0, 0, 0], 32),
    ([0x2001, 4, 0x112, 0, 0, 0, 0, 0], 48),
    ([0x2001, 0x20, 0, 0, 0, 0, 0, 0], 28),
    ([0x2001, 0x30, 0, 0, 0, 0, 0, 0], 28),
];

fn in_v4(ip: Ipv4Addr, rows: &[([u8; 4], u8)]) -> bool {
    let v = u32::from(ip);
    rows.iter().any(|&(net, prefix)| {
        let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
        v & mask == u32::from(Ipv4Addr::from(net)) & mask
    })
}

fn in_v6(ip: Ipv6Addr, rows: &[([u16; 8], u8)]) -> bool {
    let v = u128::from(ip);
    rows.iter().any(|&(net, prefix)| {
        let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
        v & mask == u128::from(Ipv6Addr::from(net)) & mask
    })
}

/// Python's `ipaddress.ip_address(ip).is_private`, without P2PD's overrides.
pub(crate) fn python_is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => in_v4(v4, V4_PRIVATE) && !in_v4(v4, V4_EXCEPTIONS),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => python_is_private(IpAddr::V4(v4)),
            None => in_v6(v6, V6_PRIVATE) && !in_v6(v6, V6_EXCEPTIONS),
        },
    }
}

/// Addresses a host behind a NAT has (RFC 1918, shared CGN space `100.64.0.0/10`,
/// link-local, loopback; ULA and link-local IPv6). Unlike [`python_is_private`], the
/// documentation ranges are not here: the NAT lab uses them as public addresses.
const V4_BEHIND_NAT: &[([u8; 4], u8)] = &[
    ([10, 0, 0, 0], 8),
    ([100, 64, 0, 0], 10),
    ([127, 0, 0, 0], 8),
    ([169, 254, 0, 0], 16),
    ([172, 16, 0, 0], 12),
    ([192, 168, 0, 0], 16),
];
const V6_BEHIND_NAT: &[([u16; 8], u8)] = &[
    ([0, 0, 0, 0, 0, 0, 0, 1], 128),
    ([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7),
    ([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10),
];

/// Whether `ip` is an address NATs hide, so that a host having it is likely behind one.
pub(crate) fn nat_likely(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => in_v4(v4, V4_BEHIND_NAT),
        IpAddr::V6(v6) => in_v6(v6, V6_BEHIND_NAT),
    }
}

/// IPv6 link-local unicast `fe80::/10` (needs a scope id to bind). P2PD also put `fd00::/8`
/// here, which broke IPv6 on hosts with a ULA (its bug list, item 5); ULA is global in scope.
pub(crate) fn is_link_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(_) => false,
        IpAddr::V6(v6) => v6.segments()[0] & 0xffc0 == 0xfe80,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_behind_nats() {
        let rows: &[(&str, bool)] = &[
            ("10.77.0.10", true),
            ("100.64.0.1", true),
            ("100.128.0.1", false),
            ("172.16.0.1", true),
            ("192.168.1.2", true),
            ("169.254.3.4", true),
            ("127.0.0.1", true),
            ("198.51.100.10", false),
            ("8.8.8.8", false),
            ("::ffff:192.168.1.2", true),
            ("fd77::10", true),
            ("fe80::1", true),
            ("::1", true),
            ("2001:db8:100::10", false),
            ("2a00:1450::1", false),
        ];
        for &(text, want) in rows {
            assert_eq!(nat_likely(text.parse().unwrap()), want, "{text}");
        }
    }

    #[test]
    fn python_private_table() {
        let rows: &[(&str, bool)] = &[
            ("10.1.2.3", true),
            ("172.31.255.255", true),
            ("172.32.0.0", false),
            ("192.168.21.21", true),
            ("100.64.0.1", false),
            ("127.0.0.1", true),
            ("169.254.1.1", true),
            ("192.0.0.9", false),
            ("192.0.0.8", true),
            ("192.0.2.1", true),
            ("198.51.100.7", true),
            ("203.0.113.7", true),
            ("198.19.0.1", true),
            ("240.0.0.1", true),
            ("255.255.255.255", true),
            ("8.8.8.8", false),
            ("1.3.3.7", false),
            ("::1", true),
            ("::", true),
            ("fe80::1", true),
            ("fd00::2", true),
            ("fc00::1", true),
            ("2001:db8::1", true),
            ("2001:20::1", false),
            ("2402:1f00:8101:83f::1", false),
            ("::ffff:10.0.0.1", true),
            ("::ffff:8.8.8.8", false),
            ("100::1", true),
        ];
        for (ip, want) in rows {
            let ip: IpAddr = ip.parse().expect("test vector parses");
            assert_eq!(python_is_private(ip), *want, "{ip}");
        }
    }

    #[test]
    fn ula_is_not_link_local() {
        let ll = |s: &str| is_link_local(s.parse().expect("test vector parses"));
        assert!(ll("fe80::ae1f:6bff:fe94:531a"));
        assert!(ll("febf::1"));
        assert!(!ll("fd00::2"));
        assert!(!ll("fc00::1"));
        assert!(!ll("fec0::1"));
        assert!(!ll("169.254.0.1"));
    }
}
