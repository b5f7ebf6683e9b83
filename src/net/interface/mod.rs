//! Network interfaces: find one by name or as a family's default, then `start` it to learn
//! its routes (inventory §1). The tutorial's `Interface().start()`, `i.supported()`,
//! `i.route(af)`, `Interface.list()` and `repr(i)` live here.
//!
//! Submodules: [`sysroute`] (kernel routing tables, MAC), [`netifaces`] (the snapshot
//! `init_p2pd()` returns), [`kind`] (Ethernet/Wi-Fi name rules), [`build`] (route grouping
//! and the concurrent lookup driver), [`external`] (the STUN lookup with server agreement),
//! `json` (P2PD's dict shape and `repr`).
//!
//! Deviations: the default interface comes from the kernel's default routes instead of a
//! UDP connect trick; `start` never fails on lookup errors (routes keep their NIC addresses,
//! failures land in `warnings`) and reports "no usable address" as an error instead of
//! P2PD's bare assert; `nat` is opaque JSON owned by the NAT module.

pub mod build;
pub mod external;
mod json;
pub mod kind;
pub mod netifaces;
pub mod sysroute;

pub use build::{Built, ExternalLookup};
pub use external::{StunLookup, load_interfaces};
pub use kind::{InterfaceType, interface_type, usable_names};
pub use netifaces::{Gateways, NetIfaces, Nic, NicAddr};

use std::net::IpAddr;
use std::time::Duration;

use serde_json::Value;

use crate::net::ip_range::{Family, IpRange};
use crate::net::route::{IfRef, Route, RoutePool};
use crate::text::quoted;

/// Why an interface could not be found, started, used or read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No interface has that name; the message lists the ones that exist.
    #[error("interface {} not found; existing interfaces: {}", quoted(.name), .existing.join(", "))]
    NotFound { name: String, existing: Vec<String> },
    /// No default route for any family (or for the one asked).
    #[error("no default interface for {0}: the routing table has no default route")]
    NoDefault(String),
    /// `start` found no address to build a route from.
    #[error("interface {} has no usable IPv4 or IPv6 address", quoted(.0))]
    NoRoutes(String),
    /// The family has no route (P2PD's "No route for <af> found.").
    #[error("No route for {0} found.")]
    NoRouteFor(Family),
    /// The OS interface list could not be read.
    #[error(transparent)]
    Snapshot(#[from] netifaces::Error),
    /// `from_dict` input is not P2PD's interface dict.
    #[error("bad interface JSON: {0}")]
    Json(String),
    /// A route inside the dict is invalid.
    #[error(transparent)]
    Route(#[from] crate::net::route::Error),
}

/// One network interface and, once started, its routes per family.
#[derive(Debug, Clone)]
pub struct Interface {
    pub name: String,
    /// Interface name on Unix (scope ids, SO_BINDTODEVICE); P2PD's NIC number on Windows.
    pub id: String,
    /// Windows interface number; 0 elsewhere.
    pub nic_no: u32,
    /// OS interface index (IPv6 scope id).
    pub index: Option<u32>,
    /// Position in `NetIfaces::interfaces()`; None when read from JSON without it.
    pub netiface_index: Option<usize>,
    /// `aa-bb-cc-dd-ee-ff`, or "" when unknown.
    pub mac: String,
    pub kind: InterfaceType,
    /// The NIC's addresses (what `start` groups into routes).
    pub addrs: Vec<NicAddr>,
    /// Whether this interface carries the default route, per family (IPv4, IPv6).
    pub is_default: [bool; 2],
    /// Gateway per family (IPv4, IPv6) when this is the default interface.
    pub gateways: [Option<IpAddr>; 2],
    /// NAT description; owned and shaped by the NAT module (P2PD's `nat` dict).
    pub nat: Value,
    /// The full answer of the last `load_nat` (RFC 4787 view, RTTs, servers), which
    /// P2PD's dict has no room for; not serialised, so the dict keeps P2PD's shape.
    pub nat_report: Option<crate::net::nat::NatReport>,
    rp: [RoutePool; 2],
    /// True after `start` or `from_dict`.
    pub resolved: bool,
    /// What went wrong during the last `start` (failed lookups, private answers), one
    /// line per cause.
    pub warnings: Vec<String>,
    /// The same, one line per server and source address.
    pub warning_details: Vec<String>,
}

fn slot(family: Family) -> usize {
    match family {
        Family::V4 => 0,
        Family::V6 => 1,
    }
}

impl Interface {
    /// Every interface name of the OS, loopback and virtual ones included (P2PD's
    /// `Interface.list()`).
    pub fn list() -> Result<Vec<String>, Error> {
        Ok(NetIfaces::load()?.interfaces())
    }

    /// Names worth starting: Ethernet/Wi-Fi by name rules (P2PD's `list_interfaces`).
    pub fn list_usable(net: &NetIfaces) -> Vec<String> {
        usable_names(&net.interfaces())
    }

    /// Loads the OS snapshot and picks `name`, or the default interface for `None` / "".
    pub fn by_name(name: Option<&str>) -> Result<Interface, Error> {
        Interface::from_netifaces(&NetIfaces::load()?, name)
    }

    /// The interface carrying `family`'s default route.
    pub fn default_for(family: Family) -> Result<Interface, Error> {
        let net = NetIfaces::load()?;
        let name = net
            .default_interface(family)
            .ok_or_else(|| Error::NoDefault(family.to_string()))?;
        Interface::from_netifaces(&net, Some(name))
    }

    /// Picks an interface from a snapshot (pure). `None`/"" means the IPv4 default, else
    /// the IPv6 default.
    pub fn from_netifaces(net: &NetIfaces, name: Option<&str>) -> Result<Interface, Error> {
        let name = match name.map(str::trim).filter(|n| !n.is_empty()) {
            Some(n) => n.to_string(),
            None => Family::ALL
                .iter()
                .find_map(|f| net.default_interface(*f))
                .ok_or_else(|| Error::NoDefault("IPv4 or IPv6".into()))?
                .to_string(),
        };
        let nic = net.ifaddresses(&name).ok_or_else(|| Error::NotFound {
            name: name.clone(),
            existing: net.interfaces(),
        })?;
        let mut is_default = [false; 2];
        let mut gateways = [None; 2];
        for family in Family::ALL {
            if let Some((gw, dev)) = net.gateways().default.get(&family)
                && *dev == name
            {
                is_default[slot(family)] = true;
                gateways[slot(family)] = Some(*gw);
            }
        }
        // P2PD: with a single usable interface it is the default for everything.
        if Interface::list_usable(net) == [name.clone()]
            && interface_type(&name) != InterfaceType::Unknown
        {
            is_default = [true; 2];
        }
        Ok(Interface {
            id: name.clone(),
            nic_no: 0,
            index: nic.index,
            netiface_index: net.position(&name),
            mac: nic.mac.clone(),
            kind: interface_type(&name),
            addrs: nic.addrs.clone(),
            is_default,
            gateways,
            nat: Value::Null,
            nat_report: None,
            rp: Default::default(),
            resolved: false,
            warnings: Vec::new(),
            warning_details: Vec::new(),
            name,
        })
    }

    /// Name and index for routes (no back-reference to the interface).
    pub fn if_ref(&self) -> IfRef {
        IfRef {
            name: self.name.clone(),
            index: self.index,
        }
    }

    /// Whether this interface carries `family`'s default route.
    pub fn is_default(&self, family: Family) -> bool {
        self.is_default[slot(family)]
    }

    /// The source address the OS would use towards the default gateway: the NIC address
    /// whose subnet holds the gateway, else the first non-link-local one. None when this is
    /// not the family's default interface.
    pub fn default_src(&self, family: Family) -> Option<IpAddr> {
        if !self.is_default(family) {
            return None;
        }
        let candidates: Vec<&NicAddr> = self
            .addrs
            .iter()
            .filter(|a| a.family() == family && !a.range().is_link_local())
            .collect();
        let gw = self.gateways[slot(family)];
        candidates
            .iter()
            .find(|a| gw.is_some_and(|g| a.range().to_ipnet().contains(&g)))
            .or(candidates.first())
            .map(|a| a.ip)
    }

    /// Looks up external addresses for every NIC address (both families concurrently, every
    /// source concurrently, each lookup bounded by `timeout`) and builds the route pools.
    /// Lookup failures do not fail: they leave routes without external addresses and add
    /// `warnings`. Fails only when the NIC has no address to route from.
    pub async fn start<L: ExternalLookup>(
        &mut self,
        timeout: Duration,
        lookup: &L,
    ) -> Result<(), Error> {
        let addrs: Vec<IpAddr> = self.addrs.iter().map(|a| a.ip).collect();
        let iface = self.if_ref();
        let run = |family: Family| {
            build::resolve_family(
                family,
                &addrs,
                self.default_src(family),
                lookup,
                timeout,
                Some(&iface),
            )
        };
        let (v4, v6) = tokio::join!(run(Family::V4), run(Family::V6));
        self.warnings = v4.warnings.into_iter().chain(v6.warnings).collect();
        self.warning_details.clone_from(&self.warnings);
        self.rp = [v4.pool, v6.pool];
        self.resolved = true;
        if self.supported().is_empty() {
            return Err(Error::NoRoutes(self.name.clone()));
        }
        Ok(())
    }

    /// The pool of one family.
    pub fn rp(&self, family: Family) -> &RoutePool {
        &self.rp[slot(family)]
    }

    /// Replaces the pool of one family (routes are re-labelled with this interface).
    pub fn set_rp(&mut self, family: Family, pool: RoutePool) {
        let iface = self.if_ref();
        let routes = pool
            .routes()
            .iter()
            .cloned()
            .map(|r| r.with_interface(Some(iface.clone())))
            .collect();
        self.rp[slot(family)] = RoutePool::new(routes);
    }

    /// Families with at least one route, IPv4 first (P2PD's `supported()`).
    pub fn supported(&self) -> Vec<Family> {
        Family::ALL
            .into_iter()
            .filter(|f| !self.rp(*f).routes().is_empty())
            .collect()
    }

    /// A copy of the first route of `family` (default: the first supported family).
    pub fn route(&self, family: Option<Family>) -> Result<Route, Error> {
        let family = match family {
            Some(f) => f,
            None => *self
                .supported()
                .first()
                .ok_or_else(|| Error::NoRoutes(self.name.clone()))?,
        };
        self.rp(family)
            .routes()
            .first()
            .cloned()
            .ok_or(Error::NoRouteFor(family))
    }

    /// The route `start` would give first for `family`, built from the NIC addresses alone:
    /// no external lookup, so no external address and no network traffic. It is the route
    /// holding the default source address (else the first route), with that address first,
    /// so binding it without an IP binds where the OS sends from. What a pipe opened without
    /// a route binds (P2PD: the default interface's first route, minus its STUN round).
    pub fn nic_route(&self, family: Family) -> Result<Route, Error> {
        let addrs: Vec<IpAddr> = self.addrs.iter().map(|a| a.ip).collect();
        let src = self.default_src(family);
        // Every source counts as "no answer"; the warnings that produces are not news here.
        let built = build::build_routes(
            family,
            &addrs,
            src,
            &Default::default(),
            Some(&self.if_ref()),
        );
        let routes = built.pool.routes();
        let holds_src = |r: &&Route| src.is_some_and(|s| r.has_nic_ip(&IpRange::host(s)));
        let route = routes
            .iter()
            .find(holds_src)
            .or(routes.first())
            .ok_or(Error::NoRouteFor(family))?;
        let Some(src) = src.filter(|s| route.nic() != *s && route.has_nic_ip(&IpRange::host(*s)))
        else {
            return Ok(route.clone());
        };
        let mut nic_ips = vec![IpRange::host(src)];
        nic_ips.extend(route.nic_ips().iter().filter(|r| r.first() != src).cloned());
        Ok(Route::new(family, nic_ips, route.ext_ips().to_vec())?
            .with_link_locals(route.link_local_ips().to_vec())?
            .with_interface(route.interface().cloned()))
    }

    /// The first route's first NIC address (P2PD's `nic(af)`).
    pub fn nic(&self, family: Family) -> Result<IpAddr, Error> {
        Ok(self.route(Some(family))?.nic())
    }

    /// P2PD's `get_scope_id()`: the interface name on Unix.
    pub fn scope_id(&self) -> &str {
        &self.id
    }

    /// NIC addresses of one family as single-host ranges.
    pub fn nic_ranges(&self, family: Family) -> Vec<IpRange> {
        self.addrs
            .iter()
            .filter(|a| a.family() == family)
            .map(|a| IpRange::host(a.ip))
            .collect()
    }
}

#[cfg(test)]
mod tests;
