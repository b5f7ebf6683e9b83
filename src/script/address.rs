//! `Address(host, port, route)` and `resolve(...)`: the tutorial's
//! `dest = await Address("www.google.com", 80, route).res()`.
//!
//! The route decides the address family, as in P2PD (inventory §4), so a lookup asks for
//! exactly one family and its error names the host and that family. Deviations, on purpose:
//! - passing a Route as the third argument works (P2PD recursed forever on it);
//! - without a route, a literal keeps its own family and a name is looked up for IPv4 first
//!   (IPv6 first when only IPv6 has a default route), falling back to the other family
//!   when the first has no address;
//! - an unresolvable name raises an error naming host and family, never a bare
//!   resolver error.
//!
//! Lookup settings (`resolve_timeout`) and the hosts table (`hosts(...)`, see
//! `net::hosts`) belong to the session: [`Resolver`] is shared by every binding that turns
//! names into addresses, pipes included, and asks the table before anything else.

use super::args::seconds;
use super::error::{error, type_name};
use super::interface::InterfaceHandle;
use super::registry::{Help, Registrar};
use super::status;
use crate::net::address::{self, Address, Family, ResolveOptions};
use crate::net::hosts::HostsTable;
use crate::net::interface::Gateways;
use crate::net::route::Route;
use rhai::{Array, Dynamic, EvalAltResult, INT, Map, NativeCallContext};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock};

type Res<T> = Result<T, Box<EvalAltResult>>;

/// The session's lookup settings, shared by `Address`, `resolve` and `pipe_open`.
#[derive(Clone, Default)]
pub struct Resolver {
    opts: Arc<RwLock<ResolveOptions>>,
    hosts: Arc<RwLock<HostsTable>>,
}

impl Resolver {
    /// A resolver that asks `hosts` first.
    pub fn with_hosts(hosts: Arc<RwLock<HostsTable>>) -> Self {
        Self {
            opts: Arc::default(),
            hosts,
        }
    }

    pub fn options(&self) -> ResolveOptions {
        self.opts.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set_timeout(&self, timeout: std::time::Duration) {
        self.opts.write().unwrap_or_else(|p| p.into_inner()).timeout = timeout;
    }

    /// Resolves `host` for `family`, or for the preferred family with a fallback.
    pub async fn resolve(&self, host: &str, port: u16, family: Option<Family>) -> Res<Address> {
        if let Some(found) = self.hosts_entry(host, port, family)? {
            return Ok(found);
        }
        let opts = self.options();
        let order = match family {
            Some(f) => vec![f],
            None => match literal_family(host) {
                Some(f) => vec![f],
                None => preferred_families(),
            },
        };
        let mut last = None;
        for family in order {
            match address::resolve(host, port, family, &opts).await {
                Ok(a) => return Ok(a),
                // Only "no such address" moves on to the other family: a timeout or a
                // broken resolver would fail the same way again.
                // The first family's error is the one to report: it was the one wanted.
                Err(e @ address::Error::NotFound { .. }) => {
                    last.get_or_insert(e);
                }
                Err(e) => return Err(address_error(e)),
            }
        }
        Err(last.map_or_else(|| error("resolve", "no family to resolve"), address_error))
    }
}

impl Resolver {
    /// The session's hosts table entry for `host:port`, checked against the wanted family.
    fn hosts_entry(&self, host: &str, port: u16, family: Option<Family>) -> Res<Option<Address>> {
        let table = self.hosts.read().unwrap_or_else(|p| p.into_inner());
        let Some(to) = table.lookup(host, port) else {
            return Ok(None);
        };
        let found = Family::of(&to.ip());
        if let Some(wanted) = family
            && wanted != found
        {
            return Err(error(
                "family",
                format!(
                    "{host}:{port} is {to} in the session's hosts table (see hosts()), an {found} address, but the route is {wanted}"
                ),
            ));
        }
        Ok(Some(Address {
            host: host.trim().to_string(),
            ip: to.ip(),
            port: to.port(),
            family: found,
            scope_id: 0,
        }))
    }

    fn hosts_map(&self) -> Map {
        let table = self.hosts.read().unwrap_or_else(|p| p.into_inner());
        table
            .entries()
            .into_iter()
            .map(|(k, v)| (k.into(), Dynamic::from(v)))
            .collect()
    }

    /// Applies `changes` (a string sets an entry, `()` removes it) all or nothing.
    fn set_hosts(&self, changes: Map) -> Res<Map> {
        let mut edits = Vec::new();
        for (key, value) in changes {
            let value = if value.is_unit() {
                None
            } else if value.is_string() {
                value.into_string().ok()
            } else {
                return Err(error(
                    "type",
                    format!(
                        "hosts values are \"IP\" or \"IP:PORT\" strings (or () to remove), got {} for {}",
                        type_name(&value),
                        crate::text::quoted(&key)
                    ),
                ));
            };
            if let Some(v) = &value {
                HostsTable::check(&key, v).map_err(|e| error("value", e))?;
            }
            edits.push((key, value));
        }
        {
            let mut table = self.hosts.write().unwrap_or_else(|p| p.into_inner());
            for (key, value) in edits {
                match value {
                    Some(v) => table.set(&key, &v),
                    None => table.remove(&key).map(|_| ()),
                }
                .map_err(|e| error("value", e))?;
            }
        }
        Ok(self.hosts_map())
    }
}

/// The family of an IP literal (brackets and zone allowed).
fn literal_family(host: &str) -> Option<Family> {
    let host = host.trim().trim_start_matches('[').trim_end_matches(']');
    let ip = host.split('%').next().unwrap_or(host);
    ip.parse::<IpAddr>().ok().map(|ip| Family::of(&ip))
}

/// A host an Address can hold: an IP literal, or a name DNS could hold. Checked when the
/// Address is made, so a typo fails at `Address(...)`, not at the first await.
fn check_host(host: &str) -> Res<()> {
    if literal_family(host).is_some() {
        return Ok(());
    }
    address::check_name(host.trim()).map_err(address_error)
}

/// IPv4 first unless only IPv6 has a default route (an IPv6-only host).
fn preferred_families() -> Vec<Family> {
    // Only the routing tables: the interface list is not needed for this.
    let defaults = Gateways::load().default;
    let v6_only = !defaults.contains_key(&Family::V4) && defaults.contains_key(&Family::V6);
    if v6_only {
        vec![Family::V6, Family::V4]
    } else {
        vec![Family::V4, Family::V6]
    }
}

/// Turns a resolver error into a catchable script error with a kind.
pub fn address_error(e: address::Error) -> Box<EvalAltResult> {
    let kind = match &e {
        address::Error::EmptyHost
        | address::Error::BadName { .. }
        | address::Error::BadZone { .. } => "value",
        address::Error::WrongFamily { .. } => "family",
        address::Error::TimedOut { .. } => "timeout",
        address::Error::NotFound { .. } => "not_found",
        address::Error::Lookup { .. } => "resolve",
    };
    error(kind, e)
}

/// The family a route-like argument asks for: a Route, an Interface (its first supported
/// family), an address family number (`IP4`/`IP6`) or `()` for "decide from the host".
pub fn family_of(route: &Dynamic) -> Res<Option<Family>> {
    if route.is_unit() {
        return Ok(None);
    }
    if let Some(r) = route.read_lock::<Route>() {
        return Ok(Some(r.family()));
    }
    if let Some(i) = route.read_lock::<InterfaceHandle>() {
        return i.read(|iface| {
            let families = if iface.resolved {
                iface.supported()
            } else {
                Family::ALL
                    .into_iter()
                    .filter(|f| iface.addrs.iter().any(|a| a.family() == *f))
                    .collect()
            };
            families.first().copied().map(Some).ok_or_else(|| {
                error(
                    "family",
                    format!("interface {} has no IPv4 or IPv6 address", iface.name),
                )
            })
        });
    }
    if let Ok(n) = route.as_int() {
        return Family::from_number(n).map(Some).ok_or_else(|| {
            error(
                "value",
                format!("{n} is not an address family (use IP4 or IP6)"),
            )
        });
    }
    Err(error(
        "type",
        format!(
            "route must be a Route, an Interface, IP4/IP6 or (), got {}",
            super::args::described(route)
        ),
    ))
}

/// A port number from a script int.
pub fn port(value: INT, what: &str) -> Res<u16> {
    u16::try_from(value)
        .map_err(|_| error("value", format!("{what} must be in 0..=65535, got {value}")))
}

/// `[ip, port]` as scripts see addresses.
pub fn tup(addr: SocketAddr) -> Array {
    vec![
        Dynamic::from(addr.ip().to_canonical().to_string()),
        Dynamic::from(INT::from(addr.port())),
    ]
}

/// An address as a script holds it: what was asked and, once resolved, what it became.
#[derive(Clone)]
pub struct ScriptAddress {
    host: String,
    port: u16,
    family: Option<Family>,
    resolved: Option<Address>,
}

impl ScriptAddress {
    pub fn new(host: &str, port: u16, family: Option<Family>) -> Self {
        Self {
            host: host.trim().to_string(),
            port,
            family,
            resolved: None,
        }
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn resolved(&self) -> Option<&Address> {
        self.resolved.as_ref()
    }

    /// Resolves for `family` (the route's, when the caller has one), reusing an earlier
    /// answer of the same family.
    pub async fn resolve_for(&self, resolver: &Resolver, family: Option<Family>) -> Res<Address> {
        let family = family.or(self.family);
        if let Some(a) = &self.resolved
            && family.is_none_or(|f| f == a.family)
        {
            return Ok(a.clone());
        }
        resolver.resolve(&self.host, self.port, family).await
    }

    fn need(&self, what: &str) -> Res<&Address> {
        self.resolved.as_ref().ok_or_else(|| {
            error(
                "unresolved",
                format!(
                    "address {}:{} is not resolved yet, so it has no {what}: use `await addr` or addr.res()",
                    self.host, self.port
                ),
            )
        })
    }

    fn text(&self) -> String {
        match &self.resolved {
            Some(a) => format!("<Address {a}>"),
            None => format!("<Address {}:{} unresolved>", self.host, self.port),
        }
    }
}

const ADDRESS: Help = Help::function(
    "addresses",
    &["Address(host, port)", "Address(host, port, route)"],
    "A destination (IP literal or name) that `await` or .res() resolves for the route's family.",
    r#"let a = await Address("127.0.0.1", 80); a.tup"#,
);
const RES: Help = Help::method(
    "addresses",
    &["addr.res()"],
    "Resolve the address in place and return it; fields ip, port, af, tup, host.",
    r#"let a = Address("::1", 8080).res(); [a.ip, a.af]"#,
);
const RESOLVE: Help = Help::function(
    "addresses",
    &["resolve(host, port)", "resolve(host, port, route)"],
    "Resolve a host for the route's family (IPv4 first without a route); same as Address(...).res().",
    r#"resolve("localhost", 53, IP4).ip"#,
);
const HOSTS: Help = Help::function(
    "addresses",
    &[
        "hosts()",
        "hosts(#{\"name\": \"IP\", \"name:port\": \"IP:PORT\", \"old\": ()})",
    ],
    "The session's hosts table, asked before DNS by Address, resolve and pipe_open; a map sets entries (\"name:port\" keys may move the port, () removes one).",
    r#"hosts(#{"db.test:80": "127.0.0.1:8080"}); resolve("db.test", 80).tup"#,
);
const RESOLVE_TIMEOUT: Help = Help::function(
    "addresses",
    &["resolve_timeout()", "resolve_timeout(secs)"],
    "Read or set how long one name lookup may take in this session (default 2 s).",
    "resolve_timeout(5)",
);

pub fn register(reg: &mut Registrar, hosts: Arc<RwLock<HostsTable>>) -> Resolver {
    let resolver = Resolver::with_hosts(hosts);
    reg.register_type::<ScriptAddress>("Address")
        .register_fn("to_string", |a: &mut ScriptAddress| a.text())
        .register_fn("to_debug", |a: &mut ScriptAddress| a.text())
        .register_get("host", |a: &mut ScriptAddress| a.host.clone())
        .register_get("port", |a: &mut ScriptAddress| INT::from(a.port))
        .register_get("resolved", |a: &mut ScriptAddress| a.resolved.is_some())
        .register_get("ip", |a: &mut ScriptAddress| -> Res<String> {
            Ok(a.need("ip")?.ip.to_string())
        })
        .register_get("af", |a: &mut ScriptAddress| -> Res<INT> {
            Ok(INT::from(a.need("af")?.family.number()))
        })
        .register_get("tup", |a: &mut ScriptAddress| -> Res<Array> {
            Ok(tup(a.need("tup")?.socket_addr()))
        });
    let r = resolver.clone();
    reg.engine().register_fn(
        "__await",
        move |ctx: NativeCallContext, mut a: ScriptAddress| -> Res<ScriptAddress> {
            res(&ctx, &r, &mut a)
        },
    );

    let new = |host: &str, port_no: INT, route: Dynamic| -> Res<ScriptAddress> {
        check_host(host)?;
        Ok(ScriptAddress::new(
            host,
            port(port_no, "port")?,
            family_of(&route)?,
        ))
    };
    reg.func("Address", &ADDRESS, move |h: &str, p: INT| {
        new(h, p, Dynamic::UNIT)
    })
    .func("Address", &ADDRESS, new);
    let r = resolver.clone();
    reg.func(
        "res",
        &RES,
        move |ctx: NativeCallContext, a: &mut ScriptAddress| res(&ctx, &r, a),
    );
    let r = resolver.clone();
    reg.func(
        "resolve",
        &RESOLVE,
        move |ctx: NativeCallContext, h: &str, p: INT| {
            res(&ctx, &r, &mut new(h, p, Dynamic::UNIT)?)
        },
    );
    let r = resolver.clone();
    reg.func(
        "resolve",
        &RESOLVE,
        move |ctx: NativeCallContext, h: &str, p: INT, route: Dynamic| {
            res(&ctx, &r, &mut new(h, p, route)?)
        },
    );
    let r = resolver.clone();
    reg.func("hosts", &HOSTS, move || r.hosts_map());
    let r = resolver.clone();
    reg.func("hosts", &HOSTS, move |changes: Map| r.set_hosts(changes));
    let r = resolver.clone();
    reg.func("resolve_timeout", &RESOLVE_TIMEOUT, move || {
        r.options().timeout.as_secs_f64()
    });
    let r = resolver.clone();
    reg.func(
        "resolve_timeout",
        &RESOLVE_TIMEOUT,
        move |secs: Dynamic| -> Res<()> {
            r.set_timeout(seconds(&secs, "resolve_timeout")?);
            Ok(())
        },
    );
    resolver
}

/// Resolves `a` in place (Ctrl-C cancels the lookup) and returns the resolved copy.
fn res(ctx: &NativeCallContext, resolver: &Resolver, a: &mut ScriptAddress) -> Res<ScriptAddress> {
    if a.resolved.is_none() {
        let pending = a.clone();
        let resolver = resolver.clone();
        let label = format!("resolve: looking up {}", pending.host);
        let found = status::wait(ctx, move || label.clone(), async move {
            pending.resolve_for(&resolver, None).await
        })?;
        a.resolved = Some(found);
    }
    Ok(a.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_families_ignore_brackets_and_zones() {
        assert_eq!(literal_family("[::1]"), Some(Family::V6));
        assert_eq!(literal_family("fe80::1%eth0"), Some(Family::V6));
        assert_eq!(literal_family(" 127.0.0.1 "), Some(Family::V4));
        assert_eq!(literal_family("www.example.com"), None);
    }

    #[test]
    fn route_like_arguments_pick_a_family() {
        assert_eq!(family_of(&Dynamic::UNIT).unwrap(), None);
        assert_eq!(
            family_of(&Dynamic::from(2 as INT)).unwrap(),
            Some(Family::V4)
        );
        assert_eq!(
            family_of(&Dynamic::from(10 as INT)).unwrap(),
            Some(Family::V6)
        );
        assert!(family_of(&Dynamic::from(3 as INT)).is_err());
        assert!(family_of(&Dynamic::from("x")).is_err());
    }

    #[test]
    fn hosts_are_checked_before_any_lookup() {
        for ok in [
            "127.0.0.1",
            "[::1]",
            "fe80::1%1",
            "localhost",
            "www.example.com.",
        ] {
            assert!(check_host(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a b", "127.0.0.1:80", "a..b", "x%y"] {
            assert!(check_host(bad).is_err(), "{bad}");
        }
        let huge = "x".repeat(10_000_000);
        let e = super::super::error::message_of(&check_host(&huge).unwrap_err());
        assert!(e.len() < 300 && e.contains("253"), "{e}");
    }

    #[test]
    fn ports_are_checked() {
        assert_eq!(port(80, "port").unwrap(), 80);
        assert!(port(65536, "port").is_err());
        assert!(port(-1, "port").is_err());
    }
}
