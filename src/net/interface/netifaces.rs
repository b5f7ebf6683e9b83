//! A netifaces-like snapshot of the machine's interfaces: what the tutorial's
//! `init_p2pd()` returns (inventory §1.1). `interfaces()`, `ifaddresses(name)` and
//! `gateways()` mirror the Python module's three calls.
//!
//! if-addrs gives one entry per address, so entries are grouped by name here; interfaces
//! with no address (which getifaddrs omits) are added from `/sys/class/net`. Gateways come
//! from the kernel routing tables ([`super::sysroute`]). Building from parts is pure, so
//! the grouping and default selection are tested without touching the machine.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::{Value, json};

use super::sysroute::{self, RouteEntry};
use crate::net::ip_range::{Family, IpRange, ip_norm};

/// One address of a NIC with its prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NicAddr {
    pub ip: IpAddr,
    pub prefix: u8,
}

impl NicAddr {
    /// The netmask spelled as an address (netifaces' `"netmask"`).
    pub fn netmask(&self) -> IpAddr {
        let bits = u32::from(self.prefix);
        match self.ip {
            IpAddr::V4(_) => {
                IpAddr::from(u32::MAX.checked_shl(32 - bits).unwrap_or(0).to_be_bytes())
            }
            IpAddr::V6(_) => {
                IpAddr::from(u128::MAX.checked_shl(128 - bits).unwrap_or(0).to_be_bytes())
            }
        }
    }

    pub fn family(&self) -> Family {
        Family::of(&self.ip)
    }

    /// The address with its prefix as an [`IpRange`].
    pub fn range(&self) -> IpRange {
        IpRange::new(self.ip, self.prefix).unwrap_or_else(|_| IpRange::host(self.ip))
    }
}

/// One interface: name, OS index, addresses and MAC ("" when unknown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nic {
    pub name: String,
    pub index: Option<u32>,
    pub addrs: Vec<NicAddr>,
    pub mac: String,
}

impl Nic {
    /// Addresses of one family, in the OS's order.
    pub fn addrs_of(&self, family: Family) -> impl Iterator<Item = &NicAddr> {
        self.addrs.iter().filter(move |a| a.family() == family)
    }
}

/// netifaces' `gateways()`: the default per family and every gateway route.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Gateways {
    /// Family -> (gateway, interface name) of the lowest-metric usable default route.
    pub default: BTreeMap<Family, (IpAddr, String)>,
    /// Family -> (gateway, interface name, is that family's default) for routes via a gateway.
    pub all: BTreeMap<Family, Vec<(IpAddr, String, bool)>>,
}

impl Gateways {
    /// Built from parsed routing tables.
    pub fn from_routes(v4: &[RouteEntry], v6: &[RouteEntry]) -> Gateways {
        let mut gw = Gateways::default();
        for (family, table) in [(Family::V4, v4), (Family::V6, v6)] {
            let default = sysroute::default_route(table);
            if let Some(d) = default {
                gw.default.insert(family, (d.gateway, d.iface.clone()));
            }
            let list: Vec<(IpAddr, String, bool)> = table
                .iter()
                .filter(|e| e.flags & sysroute::RTF_GATEWAY != 0 && e.flags & sysroute::RTF_UP != 0)
                .map(|e| (e.gateway, e.iface.clone(), default == Some(e)))
                .collect();
            if !list.is_empty() {
                gw.all.insert(family, list);
            }
        }
        gw
    }

    /// The kernel's routing tables now: enough to know the default routes without listing
    /// every interface.
    pub fn load() -> Gateways {
        Gateways::from_routes(
            &sysroute::read_routes(Family::V4),
            &sysroute::read_routes(Family::V6),
        )
    }
}

/// Why the snapshot could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// getifaddrs failed.
    #[error("can't list network interfaces: {0}")]
    List(#[from] std::io::Error),
}

/// The machine's interfaces at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetIfaces {
    nics: Vec<Nic>,
    gateways: Gateways,
}

impl NetIfaces {
    /// Reads the OS: if-addrs, `/sys/class/net` and the `/proc` routing tables.
    pub fn load() -> Result<NetIfaces, Error> {
        let entries = if_addrs::get_if_addrs()?.into_iter().map(|i| {
            let addr = match i.addr {
                if_addrs::IfAddr::V4(a) => NicAddr {
                    ip: IpAddr::V4(a.ip),
                    prefix: a.prefixlen,
                },
                if_addrs::IfAddr::V6(a) => NicAddr {
                    ip: IpAddr::V6(a.ip),
                    prefix: a.prefixlen,
                },
            };
            (i.name, i.index, addr)
        });
        let mut net =
            NetIfaces::from_parts(sysroute::read_sys_interfaces(), entries, Gateways::load());
        for nic in &mut net.nics {
            nic.mac = sysroute::read_mac(&nic.name);
        }
        Ok(net)
    }

    /// Groups per-address entries by name. `known` lists (name, index) pairs that exist even
    /// without addresses; the result is ordered by index, then name.
    pub fn from_parts(
        known: Vec<(String, u32)>,
        entries: impl IntoIterator<Item = (String, Option<u32>, NicAddr)>,
        gateways: Gateways,
    ) -> NetIfaces {
        let mut nics: Vec<Nic> = known
            .into_iter()
            .map(|(name, index)| Nic {
                name,
                index: Some(index),
                addrs: Vec::new(),
                mac: String::new(),
            })
            .collect();
        for (name, index, addr) in entries {
            match nics.iter_mut().find(|n| n.name == name) {
                Some(nic) => {
                    nic.index = nic.index.or(index);
                    if !nic.addrs.contains(&addr) {
                        nic.addrs.push(addr);
                    }
                }
                None => nics.push(Nic {
                    name,
                    index,
                    addrs: vec![addr],
                    mac: String::new(),
                }),
            }
        }
        nics.sort_by(|a, b| {
            (a.index.unwrap_or(u32::MAX), &a.name).cmp(&(b.index.unwrap_or(u32::MAX), &b.name))
        });
        NetIfaces { nics, gateways }
    }

    /// Every interface name, in index order (netifaces' `interfaces()`).
    pub fn interfaces(&self) -> Vec<String> {
        self.nics.iter().map(|n| n.name.clone()).collect()
    }

    /// One interface by name (netifaces' `ifaddresses(name)`, typed).
    pub fn ifaddresses(&self, name: &str) -> Option<&Nic> {
        self.nics.iter().find(|n| n.name == name)
    }

    /// Position of a name in `interfaces()` (P2PD's `netiface_index`).
    pub fn position(&self, name: &str) -> Option<usize> {
        self.nics.iter().position(|n| n.name == name)
    }

    pub fn gateways(&self) -> &Gateways {
        &self.gateways
    }

    /// The interface carrying the family's default route.
    pub fn default_interface(&self, family: Family) -> Option<&str> {
        self.gateways
            .default
            .get(&family)
            .map(|(_, name)| name.as_str())
    }

    /// The snapshot as netifaces-shaped JSON: `{"interfaces": [...], "ifaddresses": {name:
    /// {"2": [{"addr", "netmask"}], "10": [...], "17": [{"addr": mac}]}}, "gateways": {...}}`.
    pub fn to_value(&self) -> Value {
        let mut addrs = serde_json::Map::new();
        for nic in &self.nics {
            let mut fams = serde_json::Map::new();
            for family in Family::ALL {
                let list: Vec<Value> = nic
                    .addrs_of(family)
                    .map(|a| {
                        let mut ip = a.ip.to_string();
                        if IpRange::host(a.ip).is_link_local() {
                            ip = format!("{ip}%{}", nic.name);
                        }
                        json!({"addr": ip, "netmask": a.netmask().to_string()})
                    })
                    .collect();
                if !list.is_empty() {
                    fams.insert(family.number().to_string(), Value::Array(list));
                }
            }
            if !nic.mac.is_empty() {
                // 17 is Linux's AF_PACKET, netifaces' AF_LINK there.
                fams.insert("17".into(), json!([{"addr": nic.mac.replace('-', ":")}]));
            }
            addrs.insert(nic.name.clone(), Value::Object(fams));
        }
        let mut gw = serde_json::Map::new();
        let defaults: serde_json::Map<String, Value> = self
            .gateways
            .default
            .iter()
            .map(|(f, (ip, name))| (f.number().to_string(), json!([ip_norm(ip), name])))
            .collect();
        gw.insert("default".into(), Value::Object(defaults));
        for (f, list) in &self.gateways.all {
            let v: Vec<Value> = list
                .iter()
                .map(|(ip, name, d)| json!([ip_norm(ip), name, d]))
                .collect();
            gw.insert(f.number().to_string(), Value::Array(v));
        }
        json!({"interfaces": self.interfaces(), "ifaddresses": addrs, "gateways": gw})
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn addr(s: &str, prefix: u8) -> NicAddr {
        NicAddr {
            ip: s.parse().expect("ip"),
            prefix,
        }
    }

    pub(crate) fn sample() -> NetIfaces {
        let v4 = sysroute::parse_v4_routes(
            "eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n",
        );
        let v6 = sysroute::parse_v6_routes(
            "00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000000000000000000000000000001 00000400 00000002 00000000 00000003     eth0\n",
        );
        NetIfaces::from_parts(
            vec![("lo".into(), 1), ("ifb0".into(), 2), ("eth0".into(), 4)],
            vec![
                ("lo".into(), Some(1), addr("127.0.0.1", 8)),
                ("eth0".into(), Some(4), addr("192.0.2.2", 24)),
                ("eth0".into(), Some(4), addr("fd00::2", 64)),
                ("eth0".into(), Some(4), addr("fe80::fc:ff:fe00:1", 64)),
                ("eth0".into(), Some(4), addr("192.0.2.2", 24)),
                ("lo".into(), Some(1), addr("::1", 128)),
            ],
            Gateways::from_routes(&v4, &v6),
        )
    }

    #[test]
    fn groups_entries_by_name_in_index_order() {
        let net = sample();
        assert_eq!(net.interfaces(), vec!["lo", "ifb0", "eth0"]);
        let eth0 = net.ifaddresses("eth0").expect("eth0");
        assert_eq!(eth0.addrs.len(), 3);
        assert_eq!(eth0.index, Some(4));
        assert_eq!(eth0.addrs_of(Family::V6).count(), 2);
        assert!(net.ifaddresses("ifb0").is_some_and(|n| n.addrs.is_empty()));
        assert_eq!(net.position("eth0"), Some(2));
        assert!(net.ifaddresses("meow").is_none());
    }

    #[test]
    fn gateways_and_defaults() {
        let net = sample();
        assert_eq!(net.default_interface(Family::V4), Some("eth0"));
        assert_eq!(net.default_interface(Family::V6), Some("eth0"));
        let v = net.to_value();
        assert_eq!(v["gateways"]["default"]["2"][0], "192.0.2.1");
        assert_eq!(v["gateways"]["10"][0][2], true);
        assert_eq!(v["ifaddresses"]["eth0"]["2"][0]["netmask"], "255.255.255.0");
        assert_eq!(
            v["ifaddresses"]["eth0"]["10"][1]["addr"],
            "fe80::fc:ff:fe00:1%eth0"
        );
        assert!(NetIfaces::default().default_interface(Family::V4).is_none());
    }

    #[test]
    fn netmask_spelling() {
        assert_eq!(addr("10.0.0.1", 8).netmask().to_string(), "255.0.0.0");
        assert_eq!(addr("10.0.0.1", 0).netmask().to_string(), "0.0.0.0");
        assert_eq!(
            addr("fd00::2", 64).netmask().to_string(),
            "ffff:ffff:ffff:ffff::"
        );
    }
}
