//! STUN servers and timeouts, with the override order the CLI and scripts use.
//!
//! P2PD hard-codes hundreds of server IPs that go stale and offers no override but
//! mutating module lists (baseline §4.4). Here: a short embedded list of public servers by
//! host name for real users, overridden (strongest first) by an explicit list (`--stun
//! HOST:PORT`, repeatable, or a script's `stun_servers([...])`), then `P2PD_STUN`
//! (comma-separated), then the defaults. Resolution is a pure function: the environment
//! value is a parameter, so tests never touch the process environment. Nothing here opens
//! a socket; tests never contact these servers.

use std::fmt;
use std::time::Duration;

/// The environment variable holding comma-separated `HOST[:PORT]` entries.
pub const STUN_ENV: &str = "P2PD_STUN";
/// RFC 8489 §18.6 default STUN port.
pub const STUN_PORT: u16 = 3478;

/// Embedded defaults: (host, port, known to answer RFC 5780 OTHER-ADDRESS). The flag is a
/// hint for ordering NAT tests; the NAT code still checks each reply for OTHER-ADDRESS.
pub const DEFAULT_STUN_SERVERS: &[(&str, u16, bool)] = &[
    ("stun.stunprotocol.org", 3478, true),
    ("stun.l.google.com", 19302, false),
    ("stun1.l.google.com", 19302, false),
    ("stun2.l.google.com", 19302, false),
    ("stun.cloudflare.com", 3478, false),
    ("stun.nextcloud.com", 443, false),
    ("stun.sipgate.net", 3478, false),
];

/// A configuration entry that is not `HOST[:PORT]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// `why` says what is wrong with it; the entry is echoed cut short.
    #[error("bad STUN server {} from {origin}: {why}", crate::text::quoted(.entry))]
    BadServer {
        entry: String,
        origin: StunSource,
        why: String,
    },
}

/// What a bad entry is told it should look like.
const EXPECTED: &str = "expected HOST, HOST:PORT or [IPv6]:PORT";

/// Where the server list (or one entry) came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StunSource {
    /// `--stun` options or a script call.
    Explicit,
    /// The `P2PD_STUN` environment variable.
    Env,
    /// [`DEFAULT_STUN_SERVERS`].
    Default,
    /// One script argument, named as a person would find it (`"stun_lookup's server"`).
    Argument(&'static str),
}

impl fmt::Display for StunSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StunSource::Explicit => "--stun",
            StunSource::Env => STUN_ENV,
            StunSource::Default => "the built-in list",
            StunSource::Argument(what) => what,
        })
    }
}

/// One STUN server by name or literal; resolved later by the STUN client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StunServer {
    pub host: String,
    pub port: u16,
    /// Known to support RFC 5780 (a hint; unknown for user-given servers).
    pub rfc5780: bool,
}

impl StunServer {
    /// Parses `host`, `host:port`, `1.2.3.4:port`, `[v6]:port` or a bare IPv6 literal.
    pub fn parse(entry: &str, source: StunSource) -> Result<StunServer, Error> {
        let bad = |why: String| Error::BadServer {
            entry: entry.to_string(),
            origin: source,
            why,
        };
        let expected = || bad(EXPECTED.to_string());
        let port = |p: &str| match p.parse::<u32>() {
            Ok(n @ 1..=65535) => Ok(n as u16),
            Ok(n) => Err(bad(format!("port {n} is not in 1..=65535"))),
            Err(_) => Err(bad(format!(
                "port {} is not a number in 1..=65535",
                crate::text::quoted(p)
            ))),
        };
        let e = entry.trim();
        if e.len() > MAX_ENTRY_LEN {
            return Err(bad(format!(
                "{} characters is too long for HOST:PORT (a host name has at most 253)",
                e.chars().count()
            )));
        }
        let (host, port) = if let Some(rest) = e.strip_prefix('[') {
            let (h, tail) = rest.split_once(']').ok_or_else(expected)?;
            match tail.strip_prefix(':') {
                Some(p) => (h, port(p)?),
                None if tail.is_empty() => (h, STUN_PORT),
                None => return Err(expected()),
            }
        } else if e.matches(':').count() > 1 {
            (e, STUN_PORT) // bare IPv6 literal
        } else {
            match e.split_once(':') {
                Some((h, p)) => (h, port(p)?),
                None => (e, STUN_PORT),
            }
        };
        let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '_');
        if host.is_empty() || !host.chars().all(valid) {
            return Err(expected());
        }
        if host.len() > 253 {
            return Err(bad("a host name has at most 253 characters".to_string()));
        }
        Ok(StunServer {
            host: host.to_string(),
            port,
            rfc5780: false,
        })
    }
}

/// The longest `HOST:PORT` that can be right: a 253-character DNS name, `:` and 5 digits.
const MAX_ENTRY_LEN: usize = 253 + 6;

impl fmt::Display for StunServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// STUN servers plus the timeouts the interface and NAT code use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StunConfig {
    pub servers: Vec<StunServer>,
    pub source: StunSource,
    /// Bound on `Interface::start` lookups (P2PD: 2 s for `start()`).
    pub start_timeout: Duration,
    /// Wait for one STUN reply before giving up on it (P2PD's recv_timeout, 2 s).
    pub request_timeout: Duration,
    /// Bound on the whole NAT classification (P2PD's `load_nat`, 4 s).
    pub nat_timeout: Duration,
    /// Bound on resolving a server's host name (P2PD's dns_timeout, 2 s).
    pub dns_timeout: Duration,
}

impl Default for StunConfig {
    fn default() -> StunConfig {
        let servers = DEFAULT_STUN_SERVERS
            .iter()
            .map(|&(host, port, rfc5780)| StunServer {
                host: host.to_string(),
                port,
                rfc5780,
            })
            .collect();
        StunConfig {
            servers,
            source: StunSource::Default,
            start_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(2),
            nat_timeout: Duration::from_secs(4),
            dns_timeout: Duration::from_secs(2),
        }
    }
}

impl StunConfig {
    /// Picks the server list: `explicit` if non-empty, else `env` (the value of
    /// `P2PD_STUN`) if it names at least one server, else the defaults.
    pub fn resolve(explicit: &[String], env: Option<&str>) -> Result<StunConfig, Error> {
        let parse_all = |entries: Vec<&str>, source| -> Result<Vec<StunServer>, Error> {
            entries
                .into_iter()
                .map(|e| StunServer::parse(e, source))
                .collect()
        };
        let explicit: Vec<&str> = explicit
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .collect();
        let env: Vec<&str> = env
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        let (servers, source) = if !explicit.is_empty() {
            (
                parse_all(explicit, StunSource::Explicit)?,
                StunSource::Explicit,
            )
        } else if !env.is_empty() {
            (parse_all(env, StunSource::Env)?, StunSource::Env)
        } else {
            return Ok(StunConfig::default());
        };
        Ok(StunConfig {
            servers,
            source,
            ..StunConfig::default()
        })
    }

    /// [`StunConfig::resolve`] with the process's `P2PD_STUN`.
    pub fn from_env(explicit: &[String]) -> Result<StunConfig, Error> {
        StunConfig::resolve(explicit, std::env::var(STUN_ENV).ok().as_deref())
    }

    /// Servers known to support RFC 5780, for NAT behaviour tests.
    pub fn rfc5780_servers(&self) -> impl Iterator<Item = &StunServer> {
        self.servers.iter().filter(|s| s.rfc5780)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(list: &[&str]) -> Vec<String> {
        list.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn override_order() {
        let cli = s(&["127.0.0.1:3478", "[::1]:3479"]);
        let c = StunConfig::resolve(&cli, Some("127.0.0.2:5000")).expect("valid");
        assert_eq!(c.source, StunSource::Explicit);
        assert_eq!(c.servers.len(), 2);
        assert_eq!(c.servers[1].to_string(), "[::1]:3479");

        let c = StunConfig::resolve(&[], Some(" 127.0.0.2:5000 , localhost ,")).expect("valid");
        assert_eq!(c.source, StunSource::Env);
        let shown: Vec<String> = c.servers.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["127.0.0.2:5000", "localhost:3478"]);

        for env in [None, Some(""), Some(" , ")] {
            let c = StunConfig::resolve(&s(&[""]), env).expect("valid");
            assert_eq!(c.source, StunSource::Default);
            assert_eq!(c.servers.len(), DEFAULT_STUN_SERVERS.len());
        }
        assert!(StunConfig::default().rfc5780_servers().count() >= 1);
        assert_eq!(StunConfig::default().nat_timeout, Duration::from_secs(4));
    }

    #[test]
    fn server_entries() {
        let ok = [
            ("stun.example.org", "stun.example.org:3478"),
            ("stun.example.org:19302", "stun.example.org:19302"),
            ("::1", "[::1]:3478"),
            ("[fe80::1]", "[fe80::1]:3478"),
        ];
        for (entry, shown) in ok {
            assert_eq!(
                StunServer::parse(entry, StunSource::Explicit)
                    .expect(entry)
                    .to_string(),
                shown
            );
        }
        for bad in [
            "",
            "host:",
            "host:0",
            "host:70000",
            "[::1",
            "[::1]x",
            "a b:1",
            "host:port",
        ] {
            assert!(StunServer::parse(bad, StunSource::Env).is_err(), "{bad:?}");
        }
        let err = StunConfig::resolve(&[], Some("ok.example:1,bad:x")).expect_err("bad entry");
        assert!(err.to_string().contains("P2PD_STUN") && err.to_string().contains("bad:x"));
    }

    #[test]
    fn errors_name_the_origin_the_port_range_and_stay_short() {
        let e = StunServer::parse("h:70000", StunSource::Explicit).unwrap_err();
        assert_eq!(
            e.to_string(),
            "bad STUN server \"h:70000\" from --stun: port 70000 is not in 1..=65535"
        );
        let e = StunServer::parse("", StunSource::Argument("stun_lookup's server")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "bad STUN server \"\" from stun_lookup's server: expected HOST, HOST:PORT or [IPv6]:PORT"
        );
        let huge = "a".repeat(10_000_000);
        let e = StunServer::parse(&huge, StunSource::Env)
            .unwrap_err()
            .to_string();
        assert!(e.len() < 300 && e.contains("10000000 characters"), "{e}");
        let long_name = format!("{}:3478", "a".repeat(260));
        assert!(StunServer::parse(&long_name, StunSource::Env).is_err());
    }

    #[test]
    fn fuzz_stun_server_entries() {
        let seeds = crate::fuzz::text_seeds(&[
            "stun.example.org:3478",
            "127.0.0.1:3478",
            "[::1]:3479",
            "fe80::1",
            "[2001:db8::1]",
            "h:70000",
        ]);
        crate::fuzz::run("stun server entries", &seeds, |input| {
            let text = String::from_utf8_lossy(input);
            match StunServer::parse(&text, StunSource::Env) {
                // What was accepted prints as an entry that reads back the same.
                Ok(s) => match StunServer::parse(&s.to_string(), StunSource::Env) {
                    Ok(again) if again == s && !s.host.is_empty() && s.host.len() <= 253 => Ok(()),
                    other => Err(format!("{s} read back as {other:?}")),
                },
                Err(e) if e.to_string().len() > 400 => {
                    Err(format!("{} byte message", e.to_string().len()))
                }
                Err(_) => Ok(()),
            }
        });
    }
}
