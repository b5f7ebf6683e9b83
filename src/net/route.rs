//! Routes: `[NIC ranges] -> [external ranges]` for one address family (inventory §3.2, §3.5),
//! and [`RoutePool`], the per-family list an interface owns (§3.3).
//!
//! A route answers "if I bind here, which external address will peers see?". It also carries
//! the bind address once bound, so pipes can take a route and know where to bind.
//!
//! Deviations from P2PD, each on purpose:
//! - A route names its interface by [`IfRef`] (name + OS index) instead of holding the
//!   interface: no reference cycle, and the index is what an IPv6 scope id needs.
//! - The external list may be empty (every STUN lookup failed): the route still binds, and
//!   equality with it is always false as in P2PD. A *private* external address is accepted
//!   (test labs map into 198.51.100.0/24, carrier NATs hand out 100.64/10); only the zero
//!   address is refused, as P2PD's own check does.
//! - `bind` on a bound route re-binds (P2PD returns None and does nothing), the default IP is
//!   the route's own first NIC address, and only link-local IPv6 (`fe80::/10`) gets a scope
//!   id: P2PD also scoped ULA addresses, which glibc then refused (its bug list, item 5).

mod pool;

pub use pool::{PoolIter, RoutePool};

use std::fmt;
use std::net::{IpAddr, SocketAddr, SocketAddrV6};

use serde_json::{Value, json};

use crate::net::ip_range::{self, Family, IpRange};
use crate::text::quoted;

/// Why a route could not be built, bound or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A route needs at least one interface-side address.
    #[error("a route needs at least one NIC address")]
    NoNicIps,
    /// An address of the other family was put in a route.
    #[error("{ip} is not an {family} address")]
    WrongFamily { ip: IpAddr, family: Family },
    /// The external range's network number is zero, e.g. `0.0.0.0` (P2PD's assert).
    #[error("external address {0} is in the zero network")]
    ZeroExternal(IpAddr),
    /// The bind IP is not a literal, "*", "", "localhost" or a `%scope`d literal.
    #[error("can't use {} as a bind address", quoted(.0))]
    BadBindIp(String),
    /// A link-local IPv6 address needs an interface index as its scope id.
    #[error("link-local {0} needs a scope id: the route has no interface index")]
    NoScope(IpAddr),
    /// The `%scope` of a bind IP is neither a number nor this route's interface name.
    #[error("unknown scope {} (the route's interface is {})", quoted(.scope), .iface.as_deref().map_or("unknown".to_string(), quoted))]
    UnknownScope {
        scope: String,
        iface: Option<String>,
    },
    /// `RoutePool::pop` went past the last external host.
    #[error("No more routes.")]
    NoMoreRoutes,
    /// A route entry in JSON is missing a field or has the wrong type.
    #[error("bad route in JSON: {0}")]
    Json(String),
    /// An IP entry inside a route is invalid.
    #[error(transparent)]
    Ip(#[from] ip_range::Error),
}

/// Which interface a route belongs to: its name and OS index (the IPv6 scope id).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IfRef {
    pub name: String,
    pub index: Option<u32>,
}

/// `[NIC ranges] -> [external ranges]` for one family, plus the NIC's IPv6 link-locals.
#[derive(Debug, Clone)]
pub struct Route {
    family: Family,
    nic_ips: Vec<IpRange>,
    /// Only `ext_ips[0]` is used, as in P2PD; empty when no lookup succeeded.
    ext_ips: Vec<IpRange>,
    link_locals: Vec<IpRange>,
    interface: Option<IfRef>,
    bound: Option<SocketAddr>,
}

fn check_family(family: Family, ips: &[IpRange]) -> Result<(), Error> {
    match ips.iter().find(|r| r.family() != family) {
        Some(r) => Err(Error::WrongFamily {
            ip: r.addr(),
            family,
        }),
        None => Ok(()),
    }
}

impl Route {
    /// Checks what P2PD asserts: NIC list non-empty, one family throughout, and a non-zero
    /// first external address.
    pub fn new(
        family: Family,
        nic_ips: Vec<IpRange>,
        ext_ips: Vec<IpRange>,
    ) -> Result<Route, Error> {
        if nic_ips.is_empty() {
            return Err(Error::NoNicIps);
        }
        check_family(family, &nic_ips)?;
        check_family(family, &ext_ips)?;
        if let Some(ext) = ext_ips.first()
            && ext.network() == family.unspecified()
        {
            return Err(Error::ZeroExternal(ext.addr()));
        }
        Ok(Route {
            family,
            nic_ips,
            ext_ips,
            link_locals: Vec::new(),
            interface: None,
            bound: None,
        })
    }

    /// Sets the IPv6 link-local addresses of the NIC (P2PD's `set_link_locals`).
    pub fn with_link_locals(mut self, link_locals: Vec<IpRange>) -> Result<Route, Error> {
        check_family(self.family, &link_locals)?;
        self.link_locals = link_locals;
        Ok(self)
    }

    /// Names the interface this route leaves through.
    pub fn with_interface(mut self, interface: Option<IfRef>) -> Route {
        self.interface = interface;
        self
    }

    pub fn family(&self) -> Family {
        self.family
    }

    pub fn nic_ips(&self) -> &[IpRange] {
        &self.nic_ips
    }

    pub fn ext_ips(&self) -> &[IpRange] {
        &self.ext_ips
    }

    pub fn link_local_ips(&self) -> &[IpRange] {
        &self.link_locals
    }

    pub fn interface(&self) -> Option<&IfRef> {
        self.interface.as_ref()
    }

    /// First host of the first NIC range (P2PD's `nic()`; format with `ip_norm` for its text).
    pub fn nic(&self) -> IpAddr {
        // `new` guarantees a NIC address; the loopback fallback only keeps this total.
        self.nic_ips
            .first()
            .map_or(self.family.loopback(), IpRange::first)
    }

    /// First external host, if a lookup found one (P2PD's `ext()`).
    pub fn ext(&self) -> Option<IpAddr> {
        self.ext_ips.first().map(IpRange::first)
    }

    /// First IPv6 link-local of the NIC (P2PD's `link_local()`).
    pub fn link_local(&self) -> Option<IpAddr> {
        self.link_locals.first().map(IpRange::first)
    }

    /// Whether `ipr` overlaps one of the NIC ranges.
    pub fn has_nic_ip(&self, ipr: &IpRange) -> bool {
        self.nic_ips.iter().any(|n| n == ipr)
    }

    /// Hosts in the external range (0 when there is none), as P2PD's `len(route)`.
    pub fn len(&self) -> u128 {
        self.ext_ips.first().map_or(0, IpRange::len)
    }

    pub fn is_empty(&self) -> bool {
        self.ext_ips.is_empty()
    }

    /// Where sockets for this route bind, once [`Route::bind`] was called.
    pub fn bind_addr(&self) -> Option<SocketAddr> {
        self.bound
    }

    pub fn is_bound(&self) -> bool {
        self.bound.is_some()
    }

    /// The bound port, 0 (any) when unbound.
    pub fn bind_port(&self) -> u16 {
        self.bound.map_or(0, |a| a.port())
    }

    /// Loopback of this family on the bound port (P2PD's `LOOPBACK_BIND` tuple).
    pub fn loopback_addr(&self) -> SocketAddr {
        SocketAddr::new(self.family.loopback(), self.bind_port())
    }

    /// A copy of this route bound to `port` (0 = any) on `ip`:
    /// `None` = this route's first NIC address; `"*"`/`""` = the family's wildcard;
    /// `"localhost"`, `"127.0.0.1"`, `"::1"` = the family's loopback; otherwise a literal,
    /// optionally `%scope` (index, or this route's interface name) and `/n` (ignored).
    /// Link-local IPv6 gets the interface index as its scope id.
    pub fn bind(&self, port: u16, ip: Option<&str>) -> Result<Route, Error> {
        let (ip, scope) = match ip.map(str::trim) {
            None => (self.nic(), None),
            Some("localhost" | "127.0.0.1" | "::1") => (self.family.loopback(), None),
            Some("*" | "") => (self.family.unspecified(), None),
            Some(text) => {
                let (addr, scope) = match text.split_once('%') {
                    Some((a, rest)) => (a, Some(rest.split('/').next().unwrap_or(rest))),
                    None => (text, None),
                };
                let ip =
                    ip_range::parse_ip(addr).map_err(|_| Error::BadBindIp(text.to_string()))?;
                (ip, scope)
            }
        };
        if Family::of(&ip) != self.family {
            return Err(Error::WrongFamily {
                ip,
                family: self.family,
            });
        }
        let addr = match ip {
            IpAddr::V6(v6) if IpRange::host(ip).is_link_local() => {
                let scope_id = self.scope_id(ip, scope)?;
                SocketAddr::V6(SocketAddrV6::new(v6, port, 0, scope_id))
            }
            _ => SocketAddr::new(ip, port),
        };
        let mut route = self.clone();
        route.bound = Some(addr);
        Ok(route)
    }

    fn scope_id(&self, ip: IpAddr, scope: Option<&str>) -> Result<u32, Error> {
        let iface = self.interface.as_ref();
        match scope {
            Some(s) => match s.parse::<u32>() {
                Ok(n) => Ok(n),
                Err(_) => iface
                    .filter(|i| i.name == s)
                    .and_then(|i| i.index)
                    .ok_or_else(|| Error::UnknownScope {
                        scope: s.to_string(),
                        iface: iface.map(|i| i.name.clone()),
                    }),
            },
            None => iface.and_then(|i| i.index).ok_or(Error::NoScope(ip)),
        }
    }

    /// P2PD's route dict: `{"af", "nic_ips", "ext_ips", "link_local_ips"}`.
    pub fn to_value(&self) -> Value {
        let list = |v: &[IpRange]| Value::Array(v.iter().map(IpRange::to_value).collect());
        json!({
            "af": self.family.number(),
            "nic_ips": list(&self.nic_ips),
            "ext_ips": list(&self.ext_ips),
            "link_local_ips": list(&self.link_locals),
        })
    }

    /// Reads a route dict; `link_local_ips` may be absent (the seed's older shape).
    pub fn from_value(v: &Value) -> Result<Route, Error> {
        let family = v
            .get("af")
            .and_then(Value::as_i64)
            .and_then(Family::from_number)
            .ok_or_else(|| {
                Error::Json(format!(
                    "missing or unknown \"af\" in {}",
                    crate::text::cut(&v.to_string())
                ))
            })?;
        let list = |key: &str, required: bool| -> Result<Vec<IpRange>, Error> {
            match v.get(key) {
                Some(Value::Array(items)) => Ok(items
                    .iter()
                    .map(IpRange::from_value)
                    .collect::<Result<_, _>>()?),
                None if !required => Ok(Vec::new()),
                _ => Err(Error::Json(format!(
                    "\"{key}\" must be a list in {}",
                    crate::text::cut(&v.to_string())
                ))),
            }
        };
        Route::new(family, list("nic_ips", true)?, list("ext_ips", true)?)?
            .with_link_locals(list("link_local_ips", false)?)
    }

    /// Structural equality (every list and the bind address), unlike `==`.
    pub fn identical(&self, other: &Route) -> bool {
        let same = |a: &[IpRange], b: &[IpRange]| {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.identical(y))
        };
        self.family == other.family
            && same(&self.nic_ips, &other.nic_ips)
            && same(&self.ext_ips, &other.ext_ips)
            && same(&self.link_locals, &other.link_locals)
            && self.bound == other.bound
    }
}

/// `[nic, ...] -> [ext, ...]` with addresses in P2PD's normalized text.
impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let join = |v: &[IpRange]| {
            v.iter()
                .map(|r| format!("{r}/{}", r.prefix()))
                .collect::<Vec<_>>()
        };
        write!(
            f,
            "[{}] -> [{}]",
            join(&self.nic_ips).join(", "),
            join(&self.ext_ips).join(", ")
        )?;
        if let Some(b) = self.bound {
            write!(f, " bound {b}")?;
        }
        Ok(())
    }
}

/// Routes are equal when their first external ranges intersect; a route without one equals
/// nothing (P2PD's `bad_len`).
impl PartialEq for Route {
    fn eq(&self, other: &Route) -> bool {
        match (self.ext_ips.first(), other.ext_ips.first()) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        }
    }
}

impl PartialEq<IpRange> for Route {
    fn eq(&self, other: &IpRange) -> bool {
        self.ext_ips.first().is_some_and(|e| e == other)
    }
}

impl PartialEq<IpAddr> for Route {
    fn eq(&self, other: &IpAddr) -> bool {
        self.ext_ips.first().is_some_and(|e| e == other)
    }
}

impl PartialOrd for Route {
    fn partial_cmp(&self, other: &Route) -> Option<std::cmp::Ordering> {
        self.ext_ips.first()?.partial_cmp(other.ext_ips.first()?)
    }
}

#[cfg(test)]
mod tests;
