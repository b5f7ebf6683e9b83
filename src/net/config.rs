//! STUN servers and timeouts, with the override order the CLI and scripts use.
//!
//! P2PD hard-codes hundreds of server IPs that go stale and offers no override but
//! mutating module lists. Here the default list is a data file, `data/stun_servers.txt`,
//! that says for each server what its source claims it can do (RFC 5780, RFC 3489 or
//! plain), on which IP families, where the entry came from and when it was checked; it is
//! compiled in. Overrides, strongest first: an explicit list (`--stun HOST:PORT`,
//! repeatable, or a script's `stun_servers([...])`), then `P2PD_STUN` (comma-separated),
//! then a list file in the same format (`--stun-list FILE` or `P2PD_STUN_LIST`), then the
//! defaults. Claims only pace the probes: what a server does is checked at run time
//! (`net::nat`). Resolution is a pure function: environment values are parameters, so
//! tests never touch the process environment. Nothing here opens a socket; tests never
//! contact the default servers.

use std::fmt;
use std::time::Duration;

use crate::net::ip_range::Family;
use crate::net::nat::Claim;

/// The environment variable holding comma-separated `HOST[:PORT]` entries.
pub const STUN_ENV: &str = "P2PD_STUN";
/// The environment variable naming a server list file (the format of the default list).
pub const STUN_LIST_ENV: &str = "P2PD_STUN_LIST";
/// RFC 8489 §18.6 default STUN port.
pub const STUN_PORT: u16 = 3478;
/// The compiled-in default list.
pub const DEFAULT_LIST: &str = include_str!("../../data/stun_servers.txt");
/// Longest host name accepted (RFC 1035 §2.3.4: 253 characters in text form).
const MAX_HOST_LEN: usize = 253;

/// A configuration entry or list line that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// `why` says what is wrong with it; the entry is echoed cut short.
    #[error("bad STUN server {} from {origin}: {why}", crate::text::quoted(.entry))]
    BadServer {
        entry: String,
        origin: StunSource,
        why: String,
    },
    #[error("{path}:{line}: {message}")]
    BadList {
        path: String,
        line: usize,
        message: String,
    },
    #[error("cannot read the STUN server list {path}: {message}")]
    ListUnreadable { path: String, message: String },
}

/// What a bad entry is told it should look like.
const EXPECTED: &str = "expected HOST, HOST:PORT or [IPv6]:PORT";

/// Where the server list (or one entry) came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StunSource {
    /// `--stun` options.
    Explicit,
    /// The `P2PD_STUN` environment variable.
    Env,
    /// A list file (`--stun-list` or `P2PD_STUN_LIST`).
    List,
    /// The compiled-in list.
    Default,
    /// One script argument, named as a person would find it (`"stun_lookup's server"`).
    Argument(&'static str),
}

impl fmt::Display for StunSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StunSource::Explicit => "--stun",
            StunSource::Env => STUN_ENV,
            StunSource::List => "the server list",
            StunSource::Default => "the built-in list",
            StunSource::Argument(what) => what,
        })
    }
}

/// The IP families a server answers on (both, when unknown).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Families {
    pub v4: bool,
    pub v6: bool,
}

impl Families {
    pub const BOTH: Families = Families { v4: true, v6: true };

    pub fn allows(self, family: Family) -> bool {
        match family {
            Family::V4 => self.v4,
            Family::V6 => self.v6,
        }
    }
}

/// One STUN server by name or literal; resolved later, per family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StunServer {
    pub host: String,
    pub port: u16,
    /// What its source claims (`Unknown` for servers the user names).
    pub claim: Claim,
    /// Families its source saw it answer on.
    pub families: Families,
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
        if host.len() > MAX_HOST_LEN {
            return Err(bad(format!(
                "a host name has at most {MAX_HOST_LEN} characters"
            )));
        }
        Ok(StunServer {
            host: host.to_string(),
            port,
            claim: Claim::Unknown,
            families: Families::BOTH,
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

/// Parses a server list (the format of `data/stun_servers.txt`: `HOST PORT CAPS FAMILIES
/// SOURCE CHECKED` per line, `#` comments). `path` names the file in errors.
pub fn parse_list(text: &str, path: &str) -> Result<Vec<StunServer>, Error> {
    let mut out = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let bad = |message: String| Error::BadList {
            path: path.to_string(),
            line: n + 1,
            message,
        };
        let cols: Vec<&str> = line.split_whitespace().collect();
        let [host, port, caps, families, _source, _checked] = cols[..] else {
            return Err(bad(format!(
                "expected 6 columns (HOST PORT CAPS FAMILIES SOURCE CHECKED), found {}",
                cols.len()
            )));
        };
        let port: u16 = port
            .parse()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| bad(format!("port {} is not 1-65535", crate::text::quoted(port))))?;
        let claim = match caps {
            "5780" | "3489" => Claim::Change,
            "plain" => Claim::Plain,
            other => {
                return Err(bad(format!(
                    "CAPS {} is not 5780, 3489 or plain",
                    crate::text::quoted(other)
                )));
            }
        };
        let families = match families {
            "4" => Families {
                v4: true,
                v6: false,
            },
            "6" => Families {
                v4: false,
                v6: true,
            },
            "46" => Families::BOTH,
            other => {
                return Err(bad(format!(
                    "FAMILIES {} is not 4, 6 or 46",
                    crate::text::quoted(other)
                )));
            }
        };
        let entry = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let mut server =
            StunServer::parse(&entry, StunSource::List).map_err(|e| bad(e.to_string()))?;
        server.claim = claim;
        server.families = families;
        out.push(server);
    }
    Ok(out)
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
        // The compiled-in list parses (a unit test checks it); an empty list is the safe
        // fallback all the same.
        let servers = parse_list(DEFAULT_LIST, "data/stun_servers.txt").unwrap_or_default();
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
    /// `P2PD_STUN`) if it names at least one server, else `list` (a list file's path and
    /// text), else the defaults.
    pub fn resolve(
        explicit: &[String],
        env: Option<&str>,
        list: Option<(&str, &str)>,
    ) -> Result<StunConfig, Error> {
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
        } else if let Some((path, text)) = list {
            (parse_list(text, path)?, StunSource::List)
        } else {
            return Ok(StunConfig::default());
        };
        Ok(StunConfig {
            servers,
            source,
            ..StunConfig::default()
        })
    }

    /// [`StunConfig::resolve`] with the process's `P2PD_STUN`, and the list file `list`
    /// (`--stun-list`) or else the one `P2PD_STUN_LIST` names.
    pub fn from_env(
        explicit: &[String],
        list: Option<&std::path::Path>,
    ) -> Result<StunConfig, Error> {
        let env_list = std::env::var_os(STUN_LIST_ENV).filter(|v| !v.is_empty());
        let path = list
            .map(std::path::Path::to_path_buf)
            .or(env_list.map(std::path::PathBuf::from));
        let text = match &path {
            Some(p) => Some(
                std::fs::read_to_string(p).map_err(|e| Error::ListUnreadable {
                    path: p.display().to_string(),
                    message: e.to_string(),
                })?,
            ),
            None => None,
        };
        let shown_path = path.as_ref().map(|p| p.display().to_string());
        let list = shown_path.as_deref().zip(text.as_deref());
        StunConfig::resolve(explicit, std::env::var(STUN_ENV).ok().as_deref(), list)
    }

    /// The servers worth asking from an address of `family`.
    pub fn servers_for(&self, family: Family) -> impl Iterator<Item = &StunServer> {
        self.servers
            .iter()
            .filter(move |s| s.families.allows(family))
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
        let c = StunConfig::resolve(&cli, Some("127.0.0.2:5000"), None).expect("valid");
        assert_eq!(c.source, StunSource::Explicit);
        assert_eq!(c.servers.len(), 2);
        assert_eq!(c.servers[1].to_string(), "[::1]:3479");

        let c =
            StunConfig::resolve(&[], Some(" 127.0.0.2:5000 , localhost ,"), None).expect("valid");
        assert_eq!(c.source, StunSource::Env);
        let shown: Vec<String> = c.servers.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["127.0.0.2:5000", "localhost:3478"]);

        for env in [None, Some(""), Some(" , ")] {
            let c = StunConfig::resolve(&s(&[""]), env, None).expect("valid");
            assert_eq!(c.source, StunSource::Default);
            assert_eq!(c.servers.len(), StunConfig::default().servers.len());
        }
        let list = "lab1.test 3478 5780 4 lab 2026-12-03\n";
        let c = StunConfig::resolve(&[], None, Some(("lab.txt", list))).expect("valid");
        assert_eq!(c.source, StunSource::List);
        assert_eq!(c.servers[0].claim, Claim::Change);
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
        let err =
            StunConfig::resolve(&[], Some("ok.example:1,bad:x"), None).expect_err("bad entry");
        assert!(err.to_string().contains("P2PD_STUN") && err.to_string().contains("bad:x"));
        let huge = "x".repeat(10_000);
        let err = StunServer::parse(&huge, StunSource::Argument("the test's server"))
            .expect_err("too long");
        let text = err.to_string();
        assert!(
            text.len() < 300 && text.contains("10000 characters"),
            "{text}"
        );
    }

    /// The shipped list parses, holds change-capable and plain servers of both families,
    /// and says where every entry came from.
    #[test]
    fn default_list_is_made_for_the_real_world() {
        let list =
            parse_list(DEFAULT_LIST, "data/stun_servers.txt").expect("the shipped list parses");
        let count = |f: &dyn Fn(&StunServer) -> bool| list.iter().filter(|s| f(s)).count();
        assert!(count(&|s| s.claim == Claim::Change && s.families.v4) >= 8);
        assert!(count(&|s| s.claim == Claim::Change && s.families.v6) >= 3);
        assert!(count(&|s| s.claim == Claim::Plain && s.families.v4) >= 3);
        assert!(count(&|s| s.claim == Claim::Plain && s.families.v6) >= 2);
        for line in DEFAULT_LIST
            .lines()
            .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
        {
            let cols: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(cols.len(), 6, "{line}");
            assert!(cols[5].starts_with("20"), "no check date: {line}");
        }
    }

    #[test]
    fn list_errors_name_the_line() {
        for (text, needle) in [
            ("a.test 3478 5780 4 src\n", "expected 6 columns"),
            ("a.test 0 5780 4 src 2026-01\n", "port \"0\" is not 1-65535"),
            ("a.test 3478 5389 4 src 2026-01\n", "CAPS \"5389\""),
            ("a.test 3478 plain 5 src 2026-01\n", "FAMILIES \"5\""),
            (
                "# ok\n\nbad host! 3478 plain 4 src 2026-01\n",
                "expected 6 columns",
            ),
        ] {
            let err = parse_list(text, "list.txt").expect_err(text).to_string();
            assert!(err.contains(needle), "{err}");
            assert!(err.starts_with("list.txt:"), "{err}");
        }
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
