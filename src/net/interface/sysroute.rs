//! Linux routing table and MAC address, read from `/proc` and `/sys`.
//!
//! No mandated crate gives the default route (if-addrs has no gateways), so the kernel's
//! text tables are parsed here: pure parsers over captured text, plus a few lines of file
//! reading. Gotchas (rust-stack-notes §5f): `/proc/net/route` prints network-order bytes as
//! a host-endian hex word; a default route only counts with RTF_UP and without RTF_REJECT
//! (`lo` carries an "unreachable" IPv6 default with metric `ffffffff`); lowest metric wins.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::net::ip_range::Family;

/// Route is usable (`<linux/route.h>`).
pub const RTF_UP: u32 = 0x0001;
/// Destination reached through a gateway.
pub const RTF_GATEWAY: u32 = 0x0002;
/// Reject route ("unreachable"): never a real default.
pub const RTF_REJECT: u32 = 0x0200;

/// One line of a kernel routing table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteEntry {
    pub iface: String,
    pub dest: IpAddr,
    pub prefix: u8,
    pub gateway: IpAddr,
    pub flags: u32,
    pub metric: u32,
}

impl RouteEntry {
    /// A default route (`0.0.0.0/0` or `::/0`) that is up and not a reject route.
    pub fn is_usable_default(&self) -> bool {
        self.prefix == 0
            && self.dest.is_unspecified()
            && self.flags & RTF_UP != 0
            && self.flags & RTF_REJECT == 0
    }
}

/// The kernel prints the network-order address as a native-endian word.
fn v4_hex(field: &str) -> Option<Ipv4Addr> {
    u32::from_str_radix(field, 16)
        .ok()
        .map(|w| Ipv4Addr::from(w.to_ne_bytes()))
}

/// Parses `/proc/net/route`; malformed lines are skipped.
pub fn parse_v4_routes(text: &str) -> Vec<RouteEntry> {
    text.lines()
        .skip_while(|l| l.starts_with("Iface"))
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (iface, dest, gw, flags, metric, mask) = (
                f.first()?,
                f.get(1)?,
                f.get(2)?,
                f.get(3)?,
                f.get(6)?,
                f.get(7)?,
            );
            Some(RouteEntry {
                iface: (*iface).to_string(),
                dest: IpAddr::V4(v4_hex(dest)?),
                prefix: u32::from(v4_hex(mask)?).count_ones() as u8,
                gateway: IpAddr::V4(v4_hex(gw)?),
                flags: u32::from_str_radix(flags, 16).ok()?,
                metric: metric.parse().ok()?,
            })
        })
        .collect()
}

/// Parses `/proc/net/ipv6_route` (addresses are big-endian hex, numbers hex).
pub fn parse_v6_routes(text: &str) -> Vec<RouteEntry> {
    let v6 = |s: &str| {
        u128::from_str_radix(s, 16)
            .ok()
            .map(|v| IpAddr::V6(Ipv6Addr::from(v)))
    };
    let hex = |s: &str| u32::from_str_radix(s, 16).ok();
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            Some(RouteEntry {
                iface: (*f.get(9)?).to_string(),
                dest: v6(f.first()?)?,
                prefix: u8::try_from(hex(f.get(1)?)?).ok()?,
                gateway: v6(f.get(4)?)?,
                flags: hex(f.get(8)?)?,
                metric: hex(f.get(5)?)?,
            })
        })
        .collect()
}

/// The usable default route with the lowest metric.
pub fn default_route(entries: &[RouteEntry]) -> Option<&RouteEntry> {
    entries
        .iter()
        .filter(|e| e.is_usable_default())
        .min_by_key(|e| e.metric)
}

/// Reads and parses the kernel table for a family; an unreadable file gives no routes.
pub fn read_routes(family: Family) -> Vec<RouteEntry> {
    match family {
        Family::V4 => {
            parse_v4_routes(&std::fs::read_to_string("/proc/net/route").unwrap_or_default())
        }
        Family::V6 => {
            parse_v6_routes(&std::fs::read_to_string("/proc/net/ipv6_route").unwrap_or_default())
        }
    }
}

/// `aa:bb:..` from sysfs as P2PD writes it (`aa-bb-..`); empty when unknown.
pub fn normalize_mac(text: &str) -> String {
    text.trim().to_ascii_lowercase().replace(':', "-")
}

/// The MAC of an interface from `/sys/class/net/NAME/address`, or "" (P2PD's fallback).
pub fn read_mac(name: &str) -> String {
    if name.contains('/') || name.is_empty() {
        return String::new();
    }
    std::fs::read_to_string(format!("/sys/class/net/{name}/address"))
        .map(|t| normalize_mac(&t))
        .unwrap_or_default()
}

/// Every interface name the kernel knows with its index, including those with no address
/// (which getifaddrs omits), sorted by index like netifaces' `interfaces()`.
pub fn read_sys_interfaces() -> Vec<(String, u32)> {
    let Ok(dir) = std::fs::read_dir("/sys/class/net") else {
        return Vec::new();
    };
    let mut out: Vec<(String, u32)> = dir
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            let index = std::fs::read_to_string(e.path().join("ifindex"))
                .ok()?
                .trim()
                .parse()
                .ok()?;
            Some((name, index))
        })
        .collect();
    out.sort_by_key(|(_, i)| *i);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // Captured on the build machine (eth0 192.0.2.2/24, fd00::2/64).
    const V4: &str =
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0
eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
wlan0\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0
tun0\t00000000\t00000000\t0201\t0\t0\t0\t00000000\t0\t0\t0
";
    const V6: &str = "\
fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000000000000000000000000000001 00000400 00000002 00000000 00000003     eth0
00000000000000000000000000000001 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000002 00000000 80200001       lo
00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo
garbage line
";

    #[test]
    fn v4_default_is_lowest_metric_up_route() {
        let routes = parse_v4_routes(V4);
        assert_eq!(routes.len(), 4);
        assert_eq!(routes[1].dest, "192.0.2.0".parse::<IpAddr>().expect("ip"));
        assert_eq!(routes[1].prefix, 24);
        let d = default_route(&routes).expect("default");
        assert_eq!(d.iface, "eth0");
        assert_eq!(d.gateway, "192.0.2.1".parse::<IpAddr>().expect("ip"));
        assert_eq!(d.flags, RTF_UP | RTF_GATEWAY);
        // Without eth0, wlan0 (metric 600) wins over the reject route on tun0.
        let rest: Vec<RouteEntry> = routes.into_iter().filter(|r| r.iface != "eth0").collect();
        assert_eq!(
            default_route(&rest).map(|r| r.iface.as_str()),
            Some("wlan0")
        );
    }

    #[test]
    fn v6_default_skips_reject_route() {
        let routes = parse_v6_routes(V6);
        assert_eq!(routes.len(), 4);
        let d = default_route(&routes).expect("default");
        assert_eq!(d.iface, "eth0");
        assert_eq!(d.gateway, "fd00::1".parse::<IpAddr>().expect("ip"));
        assert_eq!(d.metric, 0x400);
        let only_lo: Vec<RouteEntry> = routes.into_iter().filter(|r| r.iface == "lo").collect();
        assert!(default_route(&only_lo).is_none());
    }

    #[test]
    fn empty_tables() {
        assert!(parse_v4_routes("").is_empty());
        assert!(default_route(&parse_v6_routes("")).is_none());
    }

    #[test]
    fn mac_text() {
        assert_eq!(normalize_mac("02:FC:00:00:00:01\n"), "02-fc-00-00-00-01");
        assert_eq!(read_mac("../etc"), "");
    }
}
