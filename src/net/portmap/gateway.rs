//! Which gateway to ask: the default route's next hop for an interface and family,
//! read from the kernel's routing table.

use std::net::{IpAddr, SocketAddr, SocketAddrV6};

use crate::net::interface::sysroute;
use crate::net::ip_range::Family;

/// A gateway address; IPv6 link-local ones need the interface's scope id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gateway {
    pub ip: IpAddr,
    pub scope_id: u32,
}

impl Gateway {
    pub fn new(ip: IpAddr) -> Gateway {
        Gateway { ip, scope_id: 0 }
    }

    /// The gateway's `port`, with the scope for IPv6.
    pub fn at(&self, port: u16) -> SocketAddr {
        self.with_scope(SocketAddr::new(self.ip, port))
    }

    /// Link-local and multicast IPv6 destinations need the interface.
    pub fn with_scope(&self, to: SocketAddr) -> SocketAddr {
        match to {
            SocketAddr::V6(v6) => {
                SocketAddr::V6(SocketAddrV6::new(*v6.ip(), v6.port(), 0, self.scope_id))
            }
            v4 => v4,
        }
    }
}

/// The next hop of `interface`'s default route for `family` (lowest metric), with the
/// interface's index as the scope of an IPv6 link-local gateway.
pub fn default_gateway(interface: &str, family: Family, index: Option<u32>) -> Option<Gateway> {
    let routes = sysroute::read_routes(family);
    let mine: Vec<sysroute::RouteEntry> = routes
        .into_iter()
        .filter(|r| r.iface == interface)
        .collect();
    let route = sysroute::default_route(&mine)?;
    if route.gateway.is_unspecified() {
        return None;
    }
    Some(Gateway {
        ip: route.gateway,
        scope_id: index.unwrap_or(0),
    })
}
