//! Destination addresses: an IP literal or a host name, resolved for one address family.
//!
//! P2PD's `Address` (inventory §4) resolves both families through public DNS with a
//! `getaddrinfo` fallback and raises a bare resolver error (or `KeyError`) when the family is
//! missing. Here a route's family is asked for explicitly, so the error can say which name
//! and which family failed, and how long we waited.
//!
//! - IP literals never reach the resolver: hickory ignores its family strategy for them
//!   (rust-stack-notes §5(e)), so the family is checked here. `0.0.0.0` and `::` become
//!   loopback, since a daemon listening on "any" is reached through loopback (P2PD patches
//!   only the IPv4 case; `::` was a bug there).
//! - Names go through hickory-resolver with the hosts file honoured. One resolver is cached
//!   per (family, options), because the family strategy is fixed when a resolver is built.
//! - hickory's own default is 5 s × 3 tries = 15 s; here the whole lookup gets one budget,
//!   `ResolveOptions::timeout`, split over the tries and enforced again by an outer
//!   `tokio::time::timeout`.
//! - An unusable `resolv.conf` falls back to a resolver with no name servers, so literals and
//!   hosts-file names still work.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::text::{cut, quoted};
use hickory_resolver::config::{
    ConnectionConfig, LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::{Hosts, TokioResolver};

/// The address family a route chooses; shared with routes and interfaces.
pub use crate::net::ip_range::Family;

/// How to resolve a name. Two equal option sets share one cached resolver.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ResolveOptions {
    /// Budget for the whole lookup, all tries included (P2PD's `dns_timeout`, 2 s).
    pub timeout: Duration,
    /// Retries after the first try; the timeout is shared between all of them.
    pub attempts: usize,
    /// Name servers to ask instead of those in `resolv.conf` (UDP, given port). Tests point
    /// this at loopback so no query can leave the machine.
    pub name_servers: Option<Vec<SocketAddr>>,
    /// A hosts file to read instead of the system one.
    pub hosts_file: Option<PathBuf>,
}

impl Default for ResolveOptions {
    fn default() -> Self {
        ResolveOptions {
            timeout: Duration::from_secs(2),
            attempts: 1,
            name_servers: None,
            hosts_file: None,
        }
    }
}

/// A resolved destination: what the caller asked for and the address it became.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Address {
    /// The host as given (name or literal, without brackets or zone).
    pub host: String,
    pub ip: IpAddr,
    pub port: u16,
    pub family: Family,
    /// IPv6 zone (interface index) from a `fe80::1%eth0` literal; 0 when none.
    pub scope_id: u32,
}

impl Address {
    /// `(ip, port)`, P2PD's `.tup`.
    pub fn tup(&self) -> (IpAddr, u16) {
        (self.ip, self.port)
    }

    /// The socket address, with the IPv6 zone kept.
    pub fn socket_addr(&self) -> SocketAddr {
        match self.ip {
            IpAddr::V4(ip) => SocketAddr::new(IpAddr::V4(ip), self.port),
            IpAddr::V6(ip) => SocketAddr::V6(SocketAddrV6::new(ip, self.port, 0, self.scope_id)),
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.socket_addr())?;
        if self.host != self.ip.to_string() {
            write!(f, " ({})", self.host)?;
        }
        Ok(())
    }
}

/// Why a host could not be turned into an address of the wanted family.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An empty host string (or `[]`).
    #[error("empty host name")]
    EmptyHost,
    /// A literal of the other family: the route decides the family, so pick a matching route
    /// or a matching literal.
    #[error("{} is an {literal} address but the route is {wanted}", cut(.host))]
    WrongFamily {
        host: String,
        literal: Family,
        wanted: Family,
    },
    /// Neither an IP literal nor a name DNS could hold: refused before any lookup, so a
    /// typo never reaches a name server.
    #[error("{} is not a host name: {why}", quoted(.host))]
    BadName { host: String, why: &'static str },
    /// A `%zone` suffix naming no interface on this host.
    #[error("unknown IPv6 zone {} in {}", quoted(.zone), cut(.host))]
    BadZone { host: String, zone: String },
    /// The budget ran out; a larger `ResolveOptions::timeout` may help on slow links.
    #[error("no {family} address for {} within {:.1} s", cut(.host), .timeout.as_secs_f64())]
    TimedOut {
        host: String,
        family: Family,
        timeout: Duration,
    },
    /// The name has no address of this family (NXDOMAIN or no A/AAAA records).
    #[error("no {family} address for {}: {}", cut(.host), cut(.reason))]
    NotFound {
        host: String,
        family: Family,
        reason: String,
    },
    /// The resolver itself failed (no name servers, bad name, network error).
    #[error("resolving {} for {family} failed: {}", cut(.host), cut(.reason))]
    Lookup {
        host: String,
        family: Family,
        reason: String,
    },
}

/// Resolve `host` to one `family` address with `port`.
///
/// Literals (`203.0.113.5`, `::1`, `[::1]`, `fe80::1%eth0`) are parsed without any lookup and
/// must be of `family`. Names use the hosts file first, then DNS, within `opts.timeout`.
pub async fn resolve(
    host: &str,
    port: u16,
    family: Family,
    opts: &ResolveOptions,
) -> Result<Address, Error> {
    let host = host.trim();
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() {
        return Err(Error::EmptyHost);
    }
    if let Some(literal) = parse_literal(host)? {
        return literal_address(host, literal, port, family);
    }
    check_name(host)?;
    let ip = lookup(host, family, opts).await?;
    Ok(Address {
        host: host.to_owned(),
        ip,
        port,
        family,
        scope_id: 0,
    })
}

/// Refuses what cannot be a DNS name (RFC 1035 §2.3.4: at most 253 characters, labels of
/// 1 to 63), or holds characters no host name has (letters, digits, `-` and `_` only, dot
/// separated; one trailing dot allowed). IP literals are checked by their own parser.
pub fn check_name(host: &str) -> Result<(), Error> {
    let bad = |why| {
        Err(Error::BadName {
            host: host.to_owned(),
            why,
        })
    };
    let name = host.strip_suffix('.').unwrap_or(host);
    if name.is_empty() {
        return Err(Error::EmptyHost);
    }
    if name.len() > 253 {
        return bad("longer than the 253 characters a DNS name can have");
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    for label in name.split('.') {
        if label.is_empty() {
            return bad("it has an empty label (two dots in a row, or a leading dot)");
        }
        if label.len() > 63 {
            return bad("a label is longer than 63 characters");
        }
        if !label.chars().all(allowed) {
            return bad("only letters, digits, '-', '_' and '.' can be in a name");
        }
    }
    Ok(())
}

/// `Some((ip, zone index))` when `host` is an IP literal.
fn parse_literal(host: &str) -> Result<Option<(IpAddr, u32)>, Error> {
    let (addr, zone) = match host.split_once('%') {
        Some((addr, zone)) => (addr, Some(zone)),
        None => (host, None),
    };
    let Ok(ip) = addr.parse::<IpAddr>() else {
        return Ok(None);
    };
    let scope_id = match (ip, zone) {
        (IpAddr::V6(_), Some(zone)) => zone_index(zone).ok_or_else(|| Error::BadZone {
            host: host.to_owned(),
            zone: zone.to_owned(),
        })?,
        // A zone on an IPv4 literal is not a literal at all; let the resolver reject it.
        (IpAddr::V4(_), Some(_)) => return Ok(None),
        (_, None) => 0,
    };
    Ok(Some((ip, scope_id)))
}

/// A zone is either an interface index or an interface name.
fn zone_index(zone: &str) -> Option<u32> {
    if let Ok(index) = zone.parse::<u32>() {
        return Some(index);
    }
    let name = std::ffi::CString::new(zone).ok()?;
    // SAFETY: `name` is a valid NUL-terminated string that outlives the call.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    (index != 0).then_some(index)
}

fn literal_address(
    host: &str,
    (ip, scope_id): (IpAddr, u32),
    port: u16,
    family: Family,
) -> Result<Address, Error> {
    let literal = Family::of(&ip);
    if literal != family {
        return Err(Error::WrongFamily {
            host: host.to_owned(),
            literal,
            wanted: family,
        });
    }
    let ip = if ip.is_unspecified() {
        family.loopback()
    } else {
        ip
    };
    Ok(Address {
        host: host.split('%').next().unwrap_or(host).to_owned(),
        ip,
        port,
        family,
        scope_id,
    })
}

async fn lookup(host: &str, family: Family, opts: &ResolveOptions) -> Result<IpAddr, Error> {
    let resolver = cached_resolver(family, opts).map_err(|reason| Error::Lookup {
        host: host.to_owned(),
        family,
        reason,
    })?;
    let answer = tokio::time::timeout(opts.timeout, resolver.lookup_ip(host)).await;
    let timed_out = || Error::TimedOut {
        host: host.to_owned(),
        family,
        timeout: opts.timeout,
    };
    let lookup = match answer {
        Err(_) => return Err(timed_out()),
        Ok(Err(hickory_resolver::net::NetError::Timeout)) => {
            return Err(timed_out());
        }
        Ok(Err(e)) if e.is_nx_domain() => {
            return Err(Error::NotFound {
                host: host.to_owned(),
                family,
                reason: "no such name".to_owned(),
            });
        }
        Ok(Err(e)) if e.is_no_records_found() => {
            return Err(Error::NotFound {
                host: host.to_owned(),
                family,
                reason: "no DNS answer".to_owned(),
            });
        }
        Ok(Err(e)) => {
            return Err(Error::Lookup {
                host: host.to_owned(),
                family,
                reason: plain_reason(&e.to_string()),
            });
        }
        Ok(Ok(lookup)) => lookup,
    };
    // The hosts file can hold both families for one name; the strategy does not filter it.
    lookup
        .iter()
        .find(|ip| Family::of(ip) == family)
        .ok_or_else(|| Error::NotFound {
            host: host.to_owned(),
            family,
            reason: "the answer held no address of that family".to_owned(),
        })
}

/// A resolver error in a few words: hickory's texts can embed debug renderings of its
/// query types (`Query { name: Name(...) }`), which no user should have to read.
fn plain_reason(text: &str) -> String {
    if text.contains("no connections available") {
        return "no DNS server is configured or reachable".to_owned();
    }
    let cut = text.find(['{', '(', '[']).map_or(text, |i| &text[..i]);
    let cut = cut.trim().trim_end_matches(':').trim();
    let words: String = cut.chars().take(80).collect();
    if words.is_empty() {
        "DNS error".to_owned()
    } else {
        words
    }
}

impl Error {
    /// Why the name gave no address, in a few words for grouped warnings
    /// (`name did not resolve (no DNS answer)`), without the name itself.
    pub fn cause(&self) -> String {
        match self {
            Error::EmptyHost => "empty host name".to_owned(),
            Error::BadName { why, .. } => format!("not a host name: {why}"),
            Error::WrongFamily { literal, .. } => format!("is an {literal} address"),
            Error::BadZone { zone, .. } => format!("unknown IPv6 zone {zone:?}"),
            Error::TimedOut { timeout, .. } => format!(
                "name did not resolve (no DNS answer within {:.1} s)",
                timeout.as_secs_f64()
            ),
            Error::NotFound { family, reason, .. } if reason == "no DNS answer" => {
                format!("name did not resolve (no {family} address)")
            }
            Error::NotFound { reason, .. } | Error::Lookup { reason, .. } => {
                format!("name did not resolve ({reason})")
            }
        }
    }
}

/// One resolver per (family, options): hickory keeps its answer cache inside the resolver.
fn cached_resolver(family: Family, opts: &ResolveOptions) -> Result<TokioResolver, String> {
    type Cache = Mutex<HashMap<(Family, ResolveOptions), TokioResolver>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    // A poisoned lock only means another thread panicked while inserting; the map is intact.
    let mut map = cache.lock().unwrap_or_else(|e| e.into_inner());
    let key = (family, opts.clone());
    if let Some(resolver) = map.get(&key) {
        return Ok(resolver.clone());
    }
    let resolver = build_resolver(family, opts)?;
    map.insert(key, resolver.clone());
    Ok(resolver)
}

fn build_resolver(family: Family, opts: &ResolveOptions) -> Result<TokioResolver, String> {
    let provider = TokioRuntimeProvider::default();
    let mut builder = match &opts.name_servers {
        Some(servers) => TokioResolver::builder_with_config(explicit_config(servers), provider),
        None => TokioResolver::builder_tokio().unwrap_or_else(|_| {
            TokioResolver::builder_with_config(ResolverConfig::default(), provider)
        }),
    };
    let tries = u32::try_from(opts.attempts.saturating_add(1)).unwrap_or(u32::MAX);
    let options = builder.options_mut();
    options.ip_strategy = match family {
        Family::V4 => LookupIpStrategy::Ipv4Only,
        Family::V6 => LookupIpStrategy::Ipv6Only,
    };
    options.timeout = opts.timeout / tries;
    options.attempts = opts.attempts;
    options.use_hosts_file = ResolveHosts::Always;
    // Building only fails on TLS set-up, which plain UDP never needs.
    let mut resolver = builder.build().map_err(|e| e.to_string())?;
    if let Some(path) = &opts.hosts_file {
        let mut hosts = Hosts::default();
        // An unreadable hosts file acts as an empty one, as hickory does for the system file.
        if let Ok(file) = std::fs::File::open(path) {
            let _ = hosts.read_hosts_conf(file);
        }
        resolver.set_hosts(Arc::new(hosts));
    }
    Ok(resolver)
}

fn explicit_config(servers: &[SocketAddr]) -> ResolverConfig {
    let name_servers = servers
        .iter()
        .map(|server| {
            let mut udp = ConnectionConfig::udp();
            udp.port = server.port();
            NameServerConfig::new(server.ip(), true, vec![udp])
        })
        .collect();
    ResolverConfig::from_name_servers(name_servers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_with_zone_index() {
        let parsed = parse_literal("fe80::1%3").unwrap();
        assert_eq!(parsed, Some(("fe80::1".parse().unwrap(), 3)));
    }

    #[test]
    fn literal_with_unknown_zone_is_an_error() {
        assert!(matches!(
            parse_literal("fe80::1%no-such-if0"),
            Err(Error::BadZone { .. })
        ));
    }

    #[test]
    fn names_are_not_literals() {
        assert!(matches!(parse_literal("example.com"), Ok(None)));
        assert!(matches!(parse_literal("1.2.3.4%x"), Ok(None)));
    }

    #[test]
    fn unspecified_becomes_loopback() {
        let a = literal_address("::", ("::".parse().unwrap(), 0), 7, Family::V6).unwrap();
        assert_eq!(a.ip, Family::V6.loopback());
    }

    #[test]
    fn timeout_message_names_host_family_and_budget() {
        let e = Error::TimedOut {
            host: "example.com".into(),
            family: Family::V6,
            timeout: Duration::from_secs(2),
        };
        assert_eq!(
            e.to_string(),
            "no IPv6 address for example.com within 2.0 s"
        );
    }

    #[test]
    fn fuzz_host_names() {
        let seeds = crate::fuzz::text_seeds(&["www.example.com", "a-b_c.d.", "localhost", "x..y"]);
        crate::fuzz::run("host names", &seeds, |input| {
            let text = String::from_utf8_lossy(input);
            let _ = parse_literal(&text);
            match check_name(&text) {
                Ok(()) => {
                    let ok = text.trim_end_matches('.').len() <= 253
                        && text
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
                    if ok {
                        Ok(())
                    } else {
                        Err("accepted a name DNS cannot hold".into())
                    }
                }
                Err(e) if e.to_string().len() > 400 => Err("long message".into()),
                Err(_) => Ok(()),
            }
        });
    }
}
