//! Rhai bindings for routes and IP ranges: the tutorial's "Routes to the rescue" section.
//!
//! A script gets a `Route` from `i.route(af)` (a copy, as in P2PD) and binds it with
//! `bind()`, `bind(port)` or `bind(port, ip)`; the bound copy is what pipes take. `Route`
//! and `IPRange` are the `net` types themselves (small values, copied like P2PD's
//! deepcopies), so other areas can accept them without conversion.
//!
//! One check is added on top of `Route::bind`: an explicit IP must be one of the route's
//! NIC or link-local addresses (or the wildcard / loopback). P2PD accepted any literal and
//! failed later inside `socket.bind` with EADDRNOTAVAIL, far from the mistake.

use super::address;
use super::engine::BindContext;
use super::error::error;
use super::interface::{NIC, TO_JSON, TO_MAP, json_to_dynamic};
use super::registry::{Help, Registrar};
use crate::net::ip_range::{IpRange, ip_norm};
use crate::net::route::Route;
use rhai::{Array, Dynamic, EvalAltResult, INT};
use std::net::IpAddr;

/// Refuses a bind address that is not on the route (unless it is the wildcard or
/// loopback), naming what would work. `Route::bind` has parsed it already.
fn check_on_route(route: &Route, addr: IpAddr) -> Result<(), Box<EvalAltResult>> {
    if addr.is_unspecified() || addr.is_loopback() {
        return Ok(());
    }
    let host = IpRange::host(addr);
    let mine = || route.nic_ips().iter().chain(route.link_local_ips());
    if mine().any(|r| r.intersects(&host)) {
        return Ok(());
    }
    let have: Vec<String> = mine().map(|r| format!("{r}/{}", r.prefix())).collect();
    Err(error(
        "route",
        format!(
            "can't bind to {addr}: it is not an address of this route (NIC {}); \
             use one of those, \"*\" or \"localhost\"",
            have.join(", ")
        ),
    ))
}

fn bind(route: &Route, port: INT, ip: Option<&str>) -> Result<Route, Box<EvalAltResult>> {
    let port = address::port(port, "port")?;
    let bound = route.bind(port, ip).map_err(|e| error("route", e))?;
    if ip.is_some()
        && let Some(addr) = bound.bind_addr()
    {
        check_on_route(route, addr.ip())?;
    }
    Ok(bound)
}

/// An IP range from an `IPRange` value or its text (`"8.8.0.0/16"`).
fn range_arg(v: Dynamic, what: &str) -> Result<IpRange, Box<EvalAltResult>> {
    if let Some(r) = v.read_lock::<IpRange>() {
        return Ok(*r);
    }
    if !v.is_string() {
        return Err(error(
            "type",
            format!(
                "{what} are IPRange values or \"ip[/prefix]\" strings, got {}",
                super::args::described(&v)
            ),
        ));
    }
    let text = v.into_string().unwrap_or_default();
    text.parse().map_err(|e| error("value", e))
}

fn range_list(list: Array, what: &str) -> Result<Vec<IpRange>, Box<EvalAltResult>> {
    list.into_iter().map(|v| range_arg(v, what)).collect()
}

/// `Route(af, nic_ips, ext_ips)`: a route made by hand, as in the tutorial's examples.
fn new_route(af: INT, nic: Array, ext: Array) -> Result<Route, Box<EvalAltResult>> {
    let family = super::interface::family_arg(af)?;
    Route::new(
        family,
        range_list(nic, "NIC addresses")?,
        range_list(ext, "external addresses")?,
    )
    .map_err(|e| error("route", e))
}

fn ranges(list: &[IpRange]) -> Array {
    list.iter().copied().map(Dynamic::from).collect()
}

fn ip_or_unit(ip: Option<std::net::IpAddr>) -> Dynamic {
    ip.map_or(Dynamic::UNIT, |ip| Dynamic::from(ip_norm(&ip)))
}

fn range_text(r: &mut IpRange) -> String {
    format!("{r}/{}", r.prefix())
}

fn route_debug(r: &mut Route) -> String {
    format!("<Route {} {r}>", r.family())
}

const BIND: Help = Help::method(
    "routes",
    &["route.bind()", "route.bind(port)", "route.bind(port, ip)"],
    "A copy of the route bound to port (0 = any) on its first NIC address, or on ip (one of its NIC addresses, \"*\" or \"localhost\").",
    r#"stun_servers(["127.0.0.1:9"]); let r = await Interface("lo").start(0.2).route(IP4).bind(0, "127.0.0.1"); r.bind_addr"#,
);
const EXT: Help = Help::method(
    "routes",
    &["route.ext()"],
    "The external address STUN found for the route, or () when no server answered.",
    r#"stun_servers(["127.0.0.1:9"]); Interface("lo").start(0.2).route(IP4).ext()"#,
);
const LINK_LOCAL: Help = Help::method(
    "routes",
    &["route.link_local()"],
    "The NIC's first IPv6 link-local address (fe80::/10), or ().",
    r#"stun_servers(["127.0.0.1:9"]); Interface("lo").start(0.2).route(IP4).link_local()"#,
);

const IPRANGE: Help = Help::function(
    "routes",
    &[
        "IPRange(\"ip\")",
        "IPRange(\"ip/prefix\")",
        "IPRange(\"ip\", cidr)",
    ],
    "One address or a block of addresses (P2PD's IPRange): a host without a prefix.",
    r#"IPRange("8.8.0.0", 16).cidr"#,
);
const ROUTE_NEW: Help = Help::function(
    "routes",
    &["Route(af, [nic, ...], [ext, ...])"],
    "A route made by hand from IPRange values or \"ip[/prefix]\" strings: NIC addresses -> external address.",
    r#"Route(IP4, [IPRange("192.168.0.20"), "7.7.7.7"], ["1.3.3.7"])"#,
);

pub fn register(reg: &mut Registrar, _: &BindContext) {
    reg.register_type::<Route>("Route")
        .register_fn("to_string", |r: &mut Route| r.to_string())
        .register_fn("to_debug", route_debug)
        .register_get("af", |r: &mut Route| INT::from(r.family().number()))
        .register_get("nic_ips", |r: &mut Route| ranges(r.nic_ips()))
        .register_get("ext_ips", |r: &mut Route| ranges(r.ext_ips()))
        .register_get("link_local_ips", |r: &mut Route| ranges(r.link_local_ips()))
        .register_get("is_bound", |r: &mut Route| r.is_bound())
        .register_get("bind_port", |r: &mut Route| INT::from(r.bind_port()))
        .register_get("bind_addr", |r: &mut Route| {
            r.bind_addr()
                .map_or(Dynamic::UNIT, |a| Dynamic::from(a.to_string()))
        })
        .register_get("interface", |r: &mut Route| {
            r.interface()
                .map_or(Dynamic::UNIT, |i| Dynamic::from(i.name.clone()))
        });
    reg.register_type::<IpRange>("IPRange")
        .register_fn("to_string", range_text)
        .register_fn("to_debug", range_text)
        .register_get("ip", |r: &mut IpRange| ip_norm(&r.addr()))
        .register_get("cidr", |r: &mut IpRange| INT::from(r.prefix()))
        .register_get("af", |r: &mut IpRange| INT::from(r.family().number()))
        .register_get("is_private", |r: &mut IpRange| r.is_private())
        .register_get("is_public", |r: &mut IpRange| r.is_public());

    reg.func("IPRange", &IPRANGE, |ip: Dynamic| {
        range_arg(ip, "addresses")
    })
    .func("IPRange", &IPRANGE, |ip: &str, cidr: INT| {
        let ip = crate::net::ip_range::parse_ip(ip).map_err(|e| error("value", e))?;
        let prefix = u8::try_from(cidr)
            .map_err(|_| error("value", format!("cidr must be 0..=128, got {cidr}")))?;
        IpRange::new(ip, prefix).map_err(|e| error("value", e))
    })
    .func("Route", &ROUTE_NEW, new_route);
    reg.func("bind", &BIND, |r: &mut Route| bind(r, 0, None))
        .func("bind", &BIND, |r: &mut Route, port: INT| {
            bind(r, port, None)
        })
        .func("bind", &BIND, |r: &mut Route, port: INT, ip: &str| {
            bind(r, port, Some(ip))
        })
        .func("nic", &NIC, |r: &mut Route| ip_norm(&r.nic()))
        .func("ext", &EXT, |r: &mut Route| ip_or_unit(r.ext()))
        .func("link_local", &LINK_LOCAL, |r: &mut Route| {
            ip_or_unit(r.link_local())
        })
        .func("to_json", &TO_JSON, |r: &mut Route| {
            r.to_value().to_string()
        })
        .func("to_map", &TO_MAP, |r: &mut Route| {
            json_to_dynamic(&r.to_value())
        });
}
