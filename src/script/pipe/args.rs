//! What the pipe functions accept, turned into socket addresses: protocols, destinations,
//! the route (which decides where a pipe binds) and subscription keys.
//!
//! P2PD takes nearly anything for each argument (inventory §5.1); the same spirit here, but
//! every rejection says what was expected. The route decides the family; without one the
//! destination does (IPv4 for a server without either), and a left-out route is the
//! default interface's NIC route, or loopback towards a loopback destination.

use super::super::address::{Resolver, ScriptAddress, family_of, port};
use super::super::error::{error, show, type_name};
use super::super::interface::{InterfaceHandle, TCP, UDP};
use crate::net::address::Family;
use crate::net::interface::Interface;
use crate::net::ip_range::IpRange;
use crate::net::pipe::{Error, Proto};
use crate::net::route::Route;
use crate::text::quoted;
use rhai::{Array, Dynamic, EvalAltResult, INT};
use std::net::{IpAddr, SocketAddr};

type Res<T> = Result<T, Box<EvalAltResult>>;

pub fn proto(value: &Dynamic) -> Res<Proto> {
    match value.as_int() {
        Ok(TCP) => Ok(Proto::Tcp),
        Ok(UDP) => Ok(Proto::Udp),
        _ => Err(error(
            "value",
            format!(
                "proto must be TCP ({TCP}) or UDP ({UDP}), got {}",
                show(value)
            ),
        )),
    }
}

pub fn proto_number(p: Proto) -> INT {
    match p {
        Proto::Tcp => TCP,
        Proto::Udp => UDP,
    }
}

/// A destination before resolution: a host (name or literal) and a port.
pub enum Dest {
    Address(ScriptAddress),
    HostPort(String, u16),
}

impl Dest {
    /// Reads an Address, `[host, port]` or `"host:port"` (`"[v6]:port"` for IPv6).
    pub fn parse(value: &Dynamic) -> Res<Dest> {
        if let Some(a) = value.read_lock::<ScriptAddress>() {
            return Ok(Dest::Address(a.clone()));
        }
        let (host, p) = host_port(value, "dest")?;
        Ok(Dest::HostPort(host, p))
    }

    /// The host as given (a name or a literal).
    pub fn host(&self) -> &str {
        match self {
            Dest::Address(a) => a.host(),
            Dest::HostPort(host, _) => host,
        }
    }

    /// Resolves for `family` (the route's), or for the host's own family.
    pub async fn resolve(self, resolver: &Resolver, family: Option<Family>) -> Res<SocketAddr> {
        let addr = match self {
            Dest::Address(a) => a.resolve_for(resolver, family).await?,
            Dest::HostPort(host, p) => resolver.resolve(&host, p, family).await?,
        };
        Ok(addr.socket_addr())
    }
}

/// `[host, port]` or `"host:port"`; `what` names the argument in errors.
fn host_port(value: &Dynamic, what: &str) -> Res<(String, u16)> {
    if let Some(items) = value.read_lock::<Array>() {
        if let [host, p] = items.as_slice()
            && let (Ok(host), Ok(p)) = (host.clone().into_string(), p.as_int())
        {
            return Ok((host, port(p, &format!("{what} port"))?));
        }
        return Err(error(
            "value",
            format!(
                "{what} must be [host, port] as an array, got {}",
                show(value)
            ),
        ));
    }
    if let Some(text) = value.read_lock::<rhai::ImmutableString>() {
        return split_host_port(text.as_str())
            .map_err(|why| error("value", format!("{what} {}: {why}", quoted(text.as_str()))));
    }
    Err(error(
        "type",
        format!(
            "{what} must be an Address, [host, port] or \"host:port\", got {}",
            super::super::args::described(value)
        ),
    ))
}

/// What a `host:port` text holds, or why it holds nothing usable.
fn split_host_port(text: &str) -> Result<(String, u16), String> {
    const SHAPE: &str = "expected \"host:port\" or \"[ipv6]:port\"";
    let text = text.trim();
    let (host, p) = match text.strip_prefix('[') {
        Some(rest) => {
            let (host, rest) = rest.split_once(']').ok_or(SHAPE)?;
            (host, rest.strip_prefix(':').ok_or(SHAPE)?)
        }
        None => {
            let (host, p) = text.rsplit_once(':').ok_or(SHAPE)?;
            if host.contains(':') {
                return Err(format!("{SHAPE} (an IPv6 address goes in brackets)"));
            }
            (host, p)
        }
    };
    if host.is_empty() {
        return Err(format!("the host is empty; {SHAPE}"));
    }
    if host.contains(['[', ']']) || host.contains(|c: char| c.is_whitespace() || c.is_control()) {
        return Err(SHAPE.to_string());
    }
    let port = match p.parse::<i64>() {
        Ok(n) => u16::try_from(n).map_err(|_| format!("port {n} is not in 0..=65535"))?,
        Err(_) => return Err(format!("port {} is not a number in 0..=65535", quoted(p))),
    };
    Ok((host.to_string(), port))
}

/// An IP literal and port, for peer filters and `send` targets (no lookups there).
pub fn peer(value: &Dynamic) -> Res<SocketAddr> {
    if let Some(a) = value.read_lock::<ScriptAddress>() {
        return a.resolved().map(|a| a.socket_addr()).ok_or_else(|| {
            error(
                "unresolved",
                "the address is not resolved yet: use `await addr` first",
            )
        });
    }
    let (host, p) = host_port(value, "peer")?;
    let ip = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .map_err(|_| {
            error(
                "value",
                format!(
                    "peer {} is not an IP address (a peer is [ip, port], no names)",
                    quoted(&host)
                ),
            )
        })?;
    Ok(SocketAddr::new(ip, p))
}

/// A `pipe_open` callback argument: a function pointer or closure, or `()` for none.
pub fn callback(value: &Dynamic, name: &str) -> Res<Option<rhai::FnPtr>> {
    if value.is_unit() {
        return Ok(None);
    }
    value
        .clone()
        .try_cast::<rhai::FnPtr>()
        .map(Some)
        .ok_or_else(|| {
            error(
                "type",
                format!(
                    "pipe_open's {name} must be a function |msg, client, pipe| or (), got {}",
                    type_name(value)
                ),
            )
        })
}

/// What a pipe binds when its route is left out (`()`), and what to suggest instead.
pub struct Omitted<'a> {
    /// The resolved destination, if any: a loopback one binds the family's loopback.
    pub dest: Option<IpAddr>,
    /// The call to suggest, given the text of a route (e.g. `"::1"`).
    pub suggest: &'a dyn Fn(&str) -> String,
}

/// Where a pipe binds. `route` is a bound Route (its address), an unbound Route (its NIC
/// address, any port), an Interface (its first route of `family`; an interface not
/// started gives its NIC route, without a STUN round), an IP literal or `[ip, port]`,
/// IP4/IP6 (that family's wildcard) or `()` (see [`default_route`]).
/// The result also says which route the pipe reports, if there is one.
pub fn local_bind(
    route: &Dynamic,
    family: Family,
    omitted: &Omitted,
) -> Res<(SocketAddr, Option<Route>)> {
    let route = if route.is_unit() {
        default_route(family, omitted)?
    } else if let Some(r) = route.read_lock::<Route>() {
        r.clone()
    } else if let Some(i) = route.read_lock::<InterfaceHandle>() {
        i.read(|iface| {
            iface
                .route(Some(family))
                .or_else(|_| iface.nic_route(family))
                .map_err(|_| {
                    error(
                        "family",
                        format!("interface {} has no {family} address", iface.name),
                    )
                })
        })?
    } else if route.is_int() {
        return Ok((SocketAddr::new(family.unspecified(), 0), None));
    } else {
        return literal_bind(route, family).map(|a| (a, None));
    };
    route_bind(&route, family).map(|(a, r)| (a, Some(r)))
}

/// The route of a pipe opened without one. To a loopback destination (or an unspecified
/// one, which the OS delivers to this host too): the family's loopback, so loopback use
/// needs no network at all. Otherwise P2PD's default interface's first route, built from
/// its NIC addresses only ([`Interface::nic_route`]: no STUN, no DNS). No default
/// interface is an error saying what to pass, never a silent wildcard.
pub fn default_route(family: Family, omitted: &Omitted) -> Res<Route> {
    if let Some(dest) = omitted.dest
        && (dest.is_loopback() || dest.is_unspecified())
    {
        let lo = IpRange::host(family.loopback());
        return Route::new(family, vec![lo], vec![])
            .map_err(|e| error("route", format!("cannot make a loopback route: {e}")));
    }
    let no_default = |why: String| {
        let any = match family {
            Family::V4 => "IP4",
            Family::V6 => "IP6",
        };
        let example = (omitted.suggest)(&format!("\"{}\"", family.loopback()));
        error(
            "no_route",
            format!(
                "no default {family} interface to bind{why}: pass a route, e.g. {example}, or {any} for any address"
            ),
        )
    };
    let iface = Interface::default_for(family).map_err(|_| no_default(String::new()))?;
    iface
        .nic_route(family)
        .map_err(|_| no_default(format!(" ({} has no {family} address)", iface.name)))
}

/// An IP literal or `[ip, port]` to bind, of `family`.
fn literal_bind(route: &Dynamic, family: Family) -> Res<SocketAddr> {
    let addr = literal_addr(route)?;
    if Family::of(&addr.ip()) != family {
        return Err(error(
            "family",
            format!("cannot bind {addr} for an {family} destination"),
        ));
    }
    Ok(addr)
}

/// An IP literal (any port) or `[ip, port]` given as a route.
fn literal_addr(route: &Dynamic) -> Res<SocketAddr> {
    if route.is_array() {
        return peer(route);
    }
    let Ok(text) = route.clone().into_string() else {
        return Err(error(
            "type",
            format!(
                "route must be a Route, an Interface, an IP, [ip, port], IP4/IP6 or (), got {}",
                super::super::args::described(route)
            ),
        ));
    };
    let ip = text.trim().parse::<IpAddr>().map_err(|_| {
        error(
            "value",
            format!("route {} is not an IP address to bind", quoted(&text)),
        )
    })?;
    Ok(SocketAddr::new(ip, 0))
}

fn route_bind(route: &Route, family: Family) -> Res<(SocketAddr, Route)> {
    if route.family() != family {
        return Err(error(
            "family",
            format!(
                "the route is {} but the destination is {family}",
                route.family()
            ),
        ));
    }
    let bound = match route.bind_addr() {
        Some(_) => route.clone(),
        None => route
            .bind(0, None)
            .map_err(|e| error("route", format!("cannot bind the route: {e}")))?,
    };
    let addr = bound
        .bind_addr()
        .unwrap_or_else(|| SocketAddr::new(family.unspecified(), 0));
    Ok((addr, bound))
}

/// The family the route argument decides, if it decides one (`()` does not).
pub fn pipe_family(route: &Dynamic) -> Res<Option<Family>> {
    if route.is_string() || route.is_array() {
        return Ok(Some(Family::of(&literal_addr(route)?.ip())));
    }
    family_of(route)
}

/// A subscription key: a regex (text or bytes, `()` = everything) and a peer filter
/// (`()` = anyone, port 0 = any port of that IP).
pub type SubKey = (Option<String>, Option<SocketAddr>);

/// Reads `sub` as scripts write it: `()`, a regex, or P2PD's pair `[regex, [ip, port]]`.
pub fn sub_key(sub: &Dynamic) -> Res<SubKey> {
    if let Some(items) = sub.read_lock::<Array>()
        && let [regex, who] = items.as_slice()
        && !who.is_int()
    {
        return Ok((pattern(regex)?, peer_filter(who)?));
    }
    Ok((pattern(sub)?, None))
}

pub fn sub_pair(regex: &Dynamic, who: &Dynamic) -> Res<SubKey> {
    Ok((pattern(regex)?, peer_filter(who)?))
}

fn pattern(value: &Dynamic) -> Res<Option<String>> {
    if value.is_unit() {
        return Ok(None);
    }
    if let Some(b) = value.read_lock::<super::super::bytes::Bytes>() {
        return String::from_utf8(b.0.clone()).map(Some).map_err(|_| {
            error(
                "value",
                "a bytes regex must be valid UTF-8; write raw bytes as (?-u)\\xNN escapes",
            )
        });
    }
    value.clone().into_string().map(Some).map_err(|_| {
        error(
            "type",
            format!(
                "a subscription regex is a string, bytes or (), got {}",
                type_name(value)
            ),
        )
    })
}

fn peer_filter(value: &Dynamic) -> Res<Option<SocketAddr>> {
    if value.is_unit() {
        Ok(None)
    } else {
        peer(value).map(Some)
    }
}

/// `[regex, [ip, port]]`, what `subscribe` returns so `recv(sub)` can name the queue.
pub fn sub_value((regex, who): &SubKey) -> Array {
    vec![
        regex.clone().map_or(Dynamic::UNIT, Dynamic::from),
        who.map_or(Dynamic::UNIT, |a| {
            Dynamic::from(super::super::address::tup(a))
        }),
    ]
}

/// A pipe error as a catchable script error with a kind scripts can test.
pub fn pipe_error(e: Error) -> Box<EvalAltResult> {
    let kind = match &e {
        Error::Refused { .. } => "refused",
        Error::TimedOut { .. } => "timeout",
        Error::AddrInUse { .. } => "addr_in_use",
        Error::AddrNotAvailable { .. } => "addr_not_available",
        Error::Closed { .. } => "closed",
        Error::Broken { .. } => "broken",
        Error::NoDestination { .. } => "no_destination",
        Error::UnknownPeer { .. } => "unknown_peer",
        Error::FamilyMismatch { .. } => "family",
        Error::BadRegex { .. } => "regex",
        Error::NoSuchSubscription { .. } => "no_subscription",
        Error::NotAServer { .. } => "not_a_server",
        Error::Io { .. } => "io",
    };
    error(kind, e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_text() {
        assert_eq!(
            split_host_port("127.0.0.1:80"),
            Ok(("127.0.0.1".into(), 80))
        );
        assert_eq!(split_host_port("[::1]:53"), Ok(("::1".into(), 53)));
        assert_eq!(
            split_host_port("www.example.com:443"),
            Ok(("www.example.com".into(), 443))
        );
        assert!(split_host_port("::1:53").unwrap_err().contains("brackets"));
        assert!(split_host_port("host").is_err());
        assert!(
            split_host_port(":80")
                .unwrap_err()
                .contains("host is empty")
        );
        assert_eq!(
            split_host_port("host:99999"),
            Err("port 99999 is not in 0..=65535".into())
        );
        assert_eq!(
            split_host_port("host:-1"),
            Err("port -1 is not in 0..=65535".into())
        );
        assert!(
            split_host_port("host:x")
                .unwrap_err()
                .contains("not a number")
        );
    }

    #[test]
    fn bad_destinations_name_the_argument_and_echo_it_short() {
        let message = |v: Dynamic| match Dest::parse(&v) {
            Err(e) => super::super::super::error::message_of(&e),
            Ok(_) => panic!("accepted"),
        };
        assert_eq!(
            message(Dynamic::from("127.0.0.1:70000")),
            "dest \"127.0.0.1:70000\": port 70000 is not in 0..=65535"
        );
        assert_eq!(
            message(Dynamic::from("")),
            "dest \"\": expected \"host:port\" or \"[ipv6]:port\""
        );
        let huge = message(Dynamic::from("h".repeat(10_000_000)));
        assert!(
            huge.len() < 200 && huge.contains("(10000000 characters)"),
            "{huge}"
        );
        let arr: Array = vec![Dynamic::from("h"), Dynamic::from(70000 as INT)];
        assert!(message(Dynamic::from(arr)).contains("dest port must be in 0..=65535"));
    }

    #[test]
    fn protocols_are_p2pd_numbers() {
        assert_eq!(proto(&Dynamic::from(1 as INT)).unwrap(), Proto::Tcp);
        assert_eq!(proto(&Dynamic::from(2 as INT)).unwrap(), Proto::Udp);
        assert!(proto(&Dynamic::from(3 as INT)).is_err());
    }

    #[test]
    fn subscription_keys() {
        let all = sub_key(&Dynamic::UNIT).unwrap();
        assert_eq!(all, (None, None));
        let re = sub_key(&Dynamic::from("^m")).unwrap();
        assert_eq!(re, (Some("^m".into()), None));
        let pair: Array = vec![
            Dynamic::UNIT,
            Dynamic::from(vec![Dynamic::from("127.0.0.1"), Dynamic::from(0 as INT)]),
        ];
        let (r, p) = sub_key(&Dynamic::from(pair)).unwrap();
        assert_eq!(r, None);
        assert_eq!(p, Some("127.0.0.1:0".parse().unwrap()));
    }

    #[test]
    fn routes_decide_where_a_pipe_binds() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let none = Omitted {
            dest: None,
            suggest: &|r| format!("pipe_open(TCP, (), {r})"),
        };
        let route = Route::new(Family::V4, vec![IpRange::host(lo)], vec![]).unwrap();
        let (addr, r) = local_bind(&Dynamic::from(route.clone()), Family::V4, &none).unwrap();
        assert_eq!(addr, SocketAddr::new(lo, 0));
        assert!(r.unwrap().is_bound());
        let bound = route.bind(4000, Some("*")).unwrap();
        let (addr, _) = local_bind(&Dynamic::from(bound), Family::V4, &none).unwrap();
        assert_eq!(addr, "0.0.0.0:4000".parse().unwrap());
        assert!(local_bind(&Dynamic::from(route.clone()), Family::V6, &none).is_err());
        assert_eq!(
            pipe_family(&Dynamic::from(route)).unwrap(),
            Some(Family::V4)
        );
        let (addr, r) = local_bind(&Dynamic::from(10 as INT), Family::V6, &none).unwrap();
        assert_eq!(addr, "[::]:0".parse().unwrap());
        assert!(r.is_none());
        let (addr, _) = local_bind(&Dynamic::from("::1"), Family::V6, &none).unwrap();
        assert_eq!(addr, "[::1]:0".parse().unwrap());
        assert!(local_bind(&Dynamic::from("::1"), Family::V4, &none).is_err());
    }

    #[test]
    fn a_left_out_route_towards_loopback_is_loopback() {
        for (dest, family) in [
            ("127.0.0.1", Family::V4),
            ("::1", Family::V6),
            ("::", Family::V6),
        ] {
            let to_lo = Omitted {
                dest: Some(dest.parse().unwrap()),
                suggest: &|r| r.to_string(),
            };
            let (addr, r) = local_bind(&Dynamic::UNIT, family, &to_lo).unwrap();
            assert_eq!(addr, SocketAddr::new(family.loopback(), 0));
            let r = r.expect("a loopback route");
            assert_eq!((r.nic(), r.ext()), (family.loopback(), None));
        }
    }

    #[test]
    fn fuzz_host_port_text() {
        let seeds = crate::fuzz::text_seeds(&[
            "127.0.0.1:80",
            "[::1]:53",
            "www.example.com:443",
            "host:-1",
            "[fe80::1%eth0]:9",
        ]);
        crate::fuzz::run("host:port", &seeds, |input| {
            let text = String::from_utf8_lossy(input);
            match split_host_port(&text) {
                // What was accepted is written back the same way and splits the same.
                Ok((host, port)) => {
                    let written = if host.contains(':') {
                        format!("[{host}]:{port}")
                    } else {
                        format!("{host}:{port}")
                    };
                    match split_host_port(&written) {
                        Ok(again) if again == (host.clone(), port) && !host.is_empty() => Ok(()),
                        other => Err(format!("{written} split as {other:?}")),
                    }
                }
                Err(why) if why.len() > 300 => Err(format!("{} byte reason", why.len())),
                Err(_) => Ok(()),
            }
        });
    }
}
