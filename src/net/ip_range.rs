//! `IpRange`: P2PD's `IPRange`, a single host or a network of hosts, with P2PD's odd but
//! relied-upon semantics (inventory §3.1):
//!
//! - A network's hosts are `network + 1 ..= all-ones` (the network number is skipped, the
//!   broadcast address kept), so `len` is `2^hostbits - 1`; indexes wrap around and may be
//!   negative. A single host (`/32`, `/128`) returns itself for every index.
//! - `==` means "the ranges intersect", so `8.8.8.0/24 == 8.8.8.200`; ordering compares the
//!   upper ends. Such an equality is not transitive, hence no `Eq`/`Hash`: use
//!   [`IpRange::identical`] for structural comparison.
//! - Private/public follows Python's table with P2PD's overrides ([`special`]).
//!
//! All arithmetic is on `u128`, so an IPv6 `/48` (2^80 - 1 hosts) is exact. Deviation: P2PD
//! silently drops a `/n` suffix from strings; [`IpRange::from_str`] honours it.

mod family;
mod special;

pub use family::{AF_INET, AF_INET6, Family};
pub(crate) use special::{nat_likely, python_is_private};

use std::cmp::Ordering;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::{Add, Sub};
use std::str::FromStr;

use ipnet::IpNet;
use serde_json::{Value, json};

/// Why an `IpRange` could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The text is not an IPv4 or IPv6 literal (after removing `%scope` and `/n`).
    #[error("not an IP address: {}", crate::text::quoted(.0))]
    BadIp(String),
    /// The prefix is longer than the address.
    #[error("prefix /{prefix} is too long for {family} (max /{})", family.max_prefix())]
    PrefixTooLong { prefix: u8, family: Family },
    /// Address and netmask are of different families.
    #[error("netmask {netmask} does not match the family of {ip}")]
    NetmaskFamily { ip: IpAddr, netmask: IpAddr },
    /// P2PD asserts that the address is not its own netmask.
    #[error("address {0} is equal to its netmask")]
    IpIsNetmask(IpAddr),
    /// An integer below 2^31 with no netmask could be either family (P2PD's rule).
    #[error("ambiguous address family for integer {0}; give a netmask")]
    AmbiguousInt(u128),
    /// An integer too large for the netmask's family.
    #[error("integer {value} does not fit in an {family} address")]
    IntTooLarge { value: u128, family: Family },
    /// A JSON IP entry is missing a field or has the wrong type.
    #[error("bad IP entry in JSON: {0}")]
    Json(String),
}

/// IPv4 dotted quad, IPv6 fully exploded lowercase (P2PD's `ip_norm`).
pub fn ip_norm(ip: &IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let groups: Vec<String> = v6.segments().iter().map(|g| format!("{g:04x}")).collect();
            groups.join(":")
        }
    }
}

/// Parses an address literal, ignoring a `%scope` and a `/n` suffix (P2PD's `ip_norm` input).
pub fn parse_ip(text: &str) -> Result<IpAddr, Error> {
    let (addr, _) = split_suffix(text);
    addr.parse().map_err(|_| Error::BadIp(text.to_string()))
}

/// Splits `addr%scope/suffix` into the bare address and the optional suffix.
fn split_suffix(text: &str) -> (&str, Option<&str>) {
    let text = text.trim();
    let (addr, suffix) = match text.split_once('/') {
        Some((a, s)) => (a, Some(s)),
        None => (text, None),
    };
    let addr = addr.split_once('%').map_or(addr, |(a, _)| a);
    (addr, suffix)
}

fn to_u128(ip: &IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(*v4)),
        IpAddr::V6(v6) => u128::from(*v6),
    }
}

fn from_u128(family: Family, v: u128) -> IpAddr {
    match family {
        // Only called with values already inside the family's space; truncation is the
        // wrap-around of address arithmetic.
        Family::V4 => IpAddr::V4(Ipv4Addr::from(v as u32)),
        Family::V6 => IpAddr::V6(Ipv6Addr::from(v)),
    }
}

/// A single host or a network of hosts (P2PD `IPRange`).
#[derive(Debug, Clone, Copy)]
pub struct IpRange {
    /// The address as given, host bits included (P2PD's `int(ipr)` and JSON `"ip"`).
    addr: IpAddr,
    prefix: u8,
}

impl IpRange {
    /// A single host (`/32` or `/128`; P2PD's `IPR(ip, af)`).
    pub fn host(ip: IpAddr) -> IpRange {
        let prefix = Family::of(&ip).max_prefix();
        IpRange { addr: ip, prefix }
    }

    /// `ip/prefix`; the host bits of `ip` are remembered, not required to be zero.
    pub fn new(ip: IpAddr, prefix: u8) -> Result<IpRange, Error> {
        let family = Family::of(&ip);
        if prefix > family.max_prefix() {
            return Err(Error::PrefixTooLong { prefix, family });
        }
        Ok(IpRange { addr: ip, prefix })
    }

    /// `ip` with a netmask; the prefix is the number of set bits (as P2PD counts them).
    pub fn with_netmask(ip: IpAddr, netmask: IpAddr) -> Result<IpRange, Error> {
        if Family::of(&ip) != Family::of(&netmask) {
            return Err(Error::NetmaskFamily { ip, netmask });
        }
        if ip == netmask {
            return Err(Error::IpIsNetmask(ip));
        }
        let prefix = to_u128(&netmask).count_ones() as u8;
        IpRange::new(ip, prefix)
    }

    /// P2PD's integer form. Without a netmask the value must be at least 2^31 (else the
    /// family is ambiguous) and is IPv4 below 2^32; with one, the netmask picks the family.
    pub fn from_int(value: u128, netmask: Option<IpAddr>) -> Result<IpRange, Error> {
        let family = match netmask {
            Some(mask) => Family::of(&mask),
            None if value < (1 << 31) => return Err(Error::AmbiguousInt(value)),
            None if value <= u128::from(u32::MAX) => Family::V4,
            None => Family::V6,
        };
        if family == Family::V4 && value > u128::from(u32::MAX) {
            return Err(Error::IntTooLarge { value, family });
        }
        let ip = from_u128(family, value);
        match netmask {
            Some(mask) => IpRange::with_netmask(ip, mask),
            None => Ok(IpRange::host(ip)),
        }
    }

    pub fn family(&self) -> Family {
        Family::of(&self.addr)
    }

    /// The prefix length (P2PD's `cidr`).
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// The address as given, host bits included.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// True for `/32` and `/128`.
    pub fn is_host(&self) -> bool {
        self.prefix == self.family().max_prefix()
    }

    fn host_bit_len(&self) -> u32 {
        u32::from(self.family().max_prefix() - self.prefix)
    }

    fn host_mask(&self) -> u128 {
        match self.host_bit_len() {
            0 => 0,
            128 => u128::MAX,
            n => (1u128 << n) - 1,
        }
    }

    /// The network number as an integer (P2PD's `i_nw`).
    fn network_int(&self) -> u128 {
        to_u128(&self.addr) & !self.host_mask()
    }

    /// The network address (host bits cleared).
    pub fn network(&self) -> IpAddr {
        from_u128(self.family(), self.network_int())
    }

    /// The host bits of the given address (P2PD's `i_host`), used by `+`/`-` with a range.
    pub fn host_part(&self) -> u128 {
        to_u128(&self.addr) & self.host_mask()
    }

    /// Number of hosts: 1 for a host, `2^hostbits - 1` for a network. A `/0` counts as 1, as
    /// P2PD's code has it.
    pub fn len(&self) -> u128 {
        if self.is_host() || self.prefix == 0 {
            1
        } else {
            self.host_mask()
        }
    }

    /// Never empty: kept for the `len` convention.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The host at a wrapped offset: `neg` means index `-magnitude`.
    fn host_at(&self, neg: bool, magnitude: u128) -> IpAddr {
        if self.is_host() {
            return self.addr;
        }
        let offset = if neg {
            magnitude.wrapping_neg()
        } else {
            magnitude.wrapping_add(1)
        };
        // The modulus `len + 1` is a power of two, so masking is Python's `%`, negatives
        // included (two's complement).
        let host = match offset & self.len() {
            0 => 1,
            h => h,
        };
        from_u128(self.family(), self.network_int().wrapping_add(host))
    }

    /// `ipr[i]`: hosts start at network + 1; indexes wrap, negatives count from the end.
    pub fn get(&self, i: i128) -> IpAddr {
        self.host_at(i < 0, i.unsigned_abs())
    }

    /// The first host (what P2PD prints).
    pub fn first(&self) -> IpAddr {
        self.get(0)
    }

    /// `ipr[(a, b, c)]`.
    pub fn get_many(&self, indexes: &[i128]) -> Vec<IpAddr> {
        indexes.iter().map(|&i| self.get(i)).collect()
    }

    /// `ipr[start:stop]` with Python's clamping of out-of-range and negative bounds.
    pub fn slice(&self, start: Option<i128>, stop: Option<i128>) -> Hosts<'_> {
        let (front, back) = py_slice(start, stop, self.len());
        Hosts {
            range: self,
            front,
            back,
        }
    }

    /// Every host in order; `.rev()` walks backwards.
    pub fn iter(&self) -> Hosts<'_> {
        Hosts {
            range: self,
            front: 0,
            back: self.len(),
        }
    }

    /// `[low, high]` as integers, used for intersection and ordering.
    pub fn bounds(&self) -> (u128, u128) {
        let nw = self.network_int();
        if self.is_host() {
            (nw, nw)
        } else {
            (nw, nw.saturating_add(self.len()))
        }
    }

    /// P2PD's `==` and `in`: same family and overlapping bounds.
    pub fn intersects(&self, other: &IpRange) -> bool {
        let (a, b) = (self.bounds(), other.bounds());
        self.family() == other.family() && a.0 <= b.1 && b.0 <= a.1
    }

    /// Structural equality: same address (host bits included) and prefix.
    pub fn identical(&self, other: &IpRange) -> bool {
        self.addr == other.addr && self.prefix == other.prefix
    }

    /// Python's `is_private` of the address, except that network number zero (`0.0.0.0`,
    /// `::`) and the black-hole IPs count as public (P2PD's overrides).
    pub fn is_private(&self) -> bool {
        if self.network_int() == 0 || self.addr == self.family().black_hole() {
            return false;
        }
        special::python_is_private(self.addr)
    }

    pub fn is_public(&self) -> bool {
        !self.is_private()
    }

    /// IPv6 `fe80::/10`: needs a scope id to bind. ULA (`fc00::/7`) is not link-local.
    pub fn is_link_local(&self) -> bool {
        special::is_link_local(self.addr)
    }

    pub fn is_loopback(&self) -> bool {
        self.addr.is_loopback()
    }

    /// As an `ipnet` network (host bits kept, as `IpNet` allows).
    pub fn to_ipnet(&self) -> IpNet {
        // The prefix was validated on construction, so this cannot fail; the fallback keeps
        // the function total anyway.
        IpNet::new(self.addr, self.prefix).unwrap_or_else(|_| IpNet::from(self.addr))
    }

    /// P2PD's IP entry: `{"ip": normalized address as given, "cidr": n, "af": 2|10}`.
    pub fn to_value(&self) -> Value {
        json!({"ip": ip_norm(&self.addr), "cidr": self.prefix, "af": self.family().number()})
    }

    /// Reads an IP entry; like P2PD only `ip` and `cidr` are used (the family follows `ip`).
    pub fn from_value(v: &Value) -> Result<IpRange, Error> {
        let ip = v.get("ip").and_then(Value::as_str).ok_or_else(|| {
            Error::Json(format!(
                "missing string \"ip\" in {}",
                crate::text::cut(&v.to_string())
            ))
        })?;
        let ip = parse_ip(ip)?;
        let cidr = match v.get("cidr") {
            None | Some(Value::Null) => Family::of(&ip).max_prefix(),
            Some(c) => c
                .as_u64()
                .and_then(|c| u8::try_from(c).ok())
                .ok_or_else(|| {
                    Error::Json(format!(
                        "bad \"cidr\" in {}",
                        crate::text::cut(&v.to_string())
                    ))
                })?,
        };
        IpRange::new(ip, cidr)
    }
}

/// Python's `slice.indices(len)` for step 1, as `[front, back)`.
pub(crate) fn py_slice(start: Option<i128>, stop: Option<i128>, len: u128) -> (u128, u128) {
    let clamp = |i: i128| -> u128 {
        if i < 0 {
            len.saturating_sub(i.unsigned_abs())
        } else {
            i.unsigned_abs().min(len)
        }
    };
    let front = start.map_or(0, clamp);
    let back = stop.map_or(len, clamp);
    (front, back.max(front))
}

/// Iterator over the hosts of an [`IpRange`].
#[derive(Debug, Clone)]
pub struct Hosts<'a> {
    range: &'a IpRange,
    front: u128,
    back: u128,
}

impl Iterator for Hosts<'_> {
    type Item = IpAddr;

    fn next(&mut self) -> Option<IpAddr> {
        if self.front >= self.back {
            return None;
        }
        let ip = self.range.host_at(false, self.front);
        self.front += 1;
        Some(ip)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.back - self.front;
        (
            usize::try_from(n).unwrap_or(usize::MAX),
            usize::try_from(n).ok(),
        )
    }
}

impl DoubleEndedIterator for Hosts<'_> {
    fn next_back(&mut self) -> Option<IpAddr> {
        if self.front >= self.back {
            return None;
        }
        self.back -= 1;
        Some(self.range.host_at(false, self.back))
    }
}

impl<'a> IntoIterator for &'a IpRange {
    type Item = IpAddr;
    type IntoIter = Hosts<'a>;
    fn into_iter(self) -> Hosts<'a> {
        self.iter()
    }
}

impl FromStr for IpRange {
    type Err = Error;

    /// `ip`, `ip%scope`, `ip/prefix` or `ip/netmask`.
    fn from_str(text: &str) -> Result<IpRange, Error> {
        let (addr, suffix) = split_suffix(text);
        let ip: IpAddr = addr.parse().map_err(|_| Error::BadIp(text.to_string()))?;
        match suffix {
            None => Ok(IpRange::host(ip)),
            Some(s) => match s.parse::<u8>() {
                Ok(prefix) => IpRange::new(ip, prefix),
                Err(_) => IpRange::with_netmask(ip, parse_ip(s)?),
            },
        }
    }
}

impl From<IpAddr> for IpRange {
    fn from(ip: IpAddr) -> IpRange {
        IpRange::host(ip)
    }
}

impl From<IpNet> for IpRange {
    fn from(net: IpNet) -> IpRange {
        IpRange {
            addr: net.addr(),
            prefix: net.prefix_len(),
        }
    }
}

/// The first host, normalized (IPv6 exploded), as P2PD's `str(ipr)`.
impl fmt::Display for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&ip_norm(&self.first()))
    }
}

impl PartialEq for IpRange {
    fn eq(&self, other: &IpRange) -> bool {
        self.intersects(other)
    }
}

impl PartialEq<IpAddr> for IpRange {
    fn eq(&self, other: &IpAddr) -> bool {
        self.intersects(&IpRange::host(*other))
    }
}

impl PartialEq<IpRange> for IpAddr {
    fn eq(&self, other: &IpRange) -> bool {
        other == self
    }
}

/// Intersecting ranges are equal; otherwise the upper ends decide (P2PD's `<`), IPv4 first.
impl PartialOrd for IpRange {
    fn partial_cmp(&self, other: &IpRange) -> Option<Ordering> {
        if self.intersects(other) {
            return Some(Ordering::Equal);
        }
        Some((self.family(), self.bounds().1).cmp(&(other.family(), other.bounds().1)))
    }
}

/// `ipr + n` is `ipr[n]`.
impl Add<i128> for &IpRange {
    type Output = IpAddr;
    fn add(self, n: i128) -> IpAddr {
        self.get(n)
    }
}

/// `ipr + other` is `ipr[other's host bits]`.
impl Add<&IpRange> for &IpRange {
    type Output = IpAddr;
    fn add(self, other: &IpRange) -> IpAddr {
        self.host_at(false, other.host_part())
    }
}

/// `ipr - n` is `ipr[-n]`.
impl Sub<i128> for &IpRange {
    type Output = IpAddr;
    fn sub(self, n: i128) -> IpAddr {
        self.host_at(n > 0, n.unsigned_abs())
    }
}

/// `ipr - other` is `ipr[-(other's host bits)]`.
impl Sub<&IpRange> for &IpRange {
    type Output = IpAddr;
    fn sub(self, other: &IpRange) -> IpAddr {
        let h = other.host_part();
        self.host_at(h > 0, h)
    }
}

#[cfg(test)]
mod tests;
