//! A session's own hosts table: names (and name:port pairs) that resolve to fixed addresses
//! before any hosts file or DNS is asked.
//!
//! The offline world uses it to send `www.google.com` to a local stand-in, and anyone can
//! use it to point a script at a test server without editing `/etc/hosts` (which needs
//! root). An entry is one of:
//! - `"name" -> "ip"`: every port of `name` goes to `ip`;
//! - `"name:port" -> "ip"` or `"name:port" -> "ip:port2"`: only that port, optionally moved
//!   to another port. This is how a tutorial line connecting to port 80 reaches a stand-in
//!   that an unprivileged user could only bind on a high port.
//!
//! A `name:port` entry wins over a `name` entry. Names compare without case and without a
//! trailing dot; values are IP literals (a table that pointed at names could loop).

use crate::text::quoted;
use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// An entry the table cannot hold, with what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error(
        "bad hosts key {}: expected \"name\" or \"name:port\", e.g. \"www.google.com:80\"",
        quoted(.0)
    )]
    BadKey(String),
    #[error("hosts keys are names, not addresses: {}", quoted(.0))]
    AddressKey(String),
    #[error(
        "bad hosts value {}: expected an IP (\"127.0.0.80\") or IP:PORT (\"127.0.0.80:8080\", \"[::1]:8080\")",
        quoted(.0)
    )]
    BadValue(String),
    #[error(
        "{} -> {} moves every port to one: give the port on both sides, e.g. \"NAME:80\": \"IP:PORT\"",
        quoted(.key),
        quoted(.value)
    )]
    PortWithoutKeyPort { key: String, value: String },
}

/// Which lookups an entry answers.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    name: String,
    port: Option<u16>,
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.port {
            Some(p) => write!(f, "{}:{p}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// Where an entry sends a lookup: an address and, for `name:port` keys, maybe a port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target {
    pub ip: IpAddr,
    pub port: Option<u16>,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.port {
            Some(p) => write!(f, "{}", SocketAddr::new(self.ip, p)),
            None => write!(f, "{}", self.ip),
        }
    }
}

/// The table. Pure: it holds entries and answers lookups, nothing else.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostsTable {
    entries: BTreeMap<Key, Target>,
}

fn normalize(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

fn parse_key(text: &str) -> Result<Key, Error> {
    let bad = || Error::BadKey(text.to_string());
    let t = text.trim();
    let (name, port) = match t.rsplit_once(':') {
        Some((n, p)) if !n.contains(':') => (n, Some(p.parse::<u16>().map_err(|_| bad())?)),
        Some(_) => return Err(Error::AddressKey(text.to_string())),
        None => (t, None),
    };
    let name = normalize(name);
    if name.parse::<IpAddr>().is_ok() {
        return Err(Error::AddressKey(text.to_string()));
    }
    let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
    if name.is_empty() || !name.chars().all(valid) || port == Some(0) {
        return Err(bad());
    }
    Ok(Key { name, port })
}

fn parse_value(text: &str) -> Result<Target, Error> {
    let t = text.trim();
    if let Ok(ip) = t.parse::<IpAddr>() {
        return Ok(Target { ip, port: None });
    }
    match t.parse::<SocketAddr>() {
        Ok(a) if a.port() != 0 => Ok(Target {
            ip: a.ip(),
            port: Some(a.port()),
        }),
        _ => Err(Error::BadValue(text.to_string())),
    }
}

impl HostsTable {
    /// Adds or replaces one entry.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), Error> {
        let (k, v) = Self::parse_entry(key, value)?;
        self.entries.insert(k, v);
        Ok(())
    }

    /// Checks one entry without adding it.
    pub fn check(key: &str, value: &str) -> Result<(), Error> {
        Self::parse_entry(key, value).map(|_| ())
    }

    fn parse_entry(key: &str, value: &str) -> Result<(Key, Target), Error> {
        let k = parse_key(key)?;
        let v = parse_value(value)?;
        if k.port.is_none() && v.port.is_some() {
            return Err(Error::PortWithoutKeyPort {
                key: k.name,
                value: value.trim().to_string(),
            });
        }
        Ok((k, v))
    }

    /// Removes one entry; true if it was there.
    pub fn remove(&mut self, key: &str) -> Result<bool, Error> {
        Ok(self.entries.remove(&parse_key(key)?).is_some())
    }

    /// Where `host:port` goes, if the table knows: `name:port` first, then `name`.
    pub fn lookup(&self, host: &str, port: u16) -> Option<SocketAddr> {
        let name = normalize(host);
        let exact = Key {
            name,
            port: Some(port),
        };
        let target = self.entries.get(&exact).or_else(|| {
            self.entries.get(&Key {
                name: exact.name.clone(),
                port: None,
            })
        })?;
        Some(SocketAddr::new(target.ip, target.port.unwrap_or(port)))
    }

    /// Every entry as (key, value) text, sorted by key.
    pub fn entries(&self) -> Vec<(String, String)> {
        self.entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(entries: &[(&str, &str)]) -> HostsTable {
        let mut t = HostsTable::default();
        for (k, v) in entries {
            t.set(k, v).unwrap();
        }
        t
    }

    #[test]
    fn name_port_entries_win_and_may_move_the_port() {
        let t = table(&[
            ("www.google.com:80", "127.0.0.80:8080"),
            ("WWW.Google.com.", "127.0.0.81"),
        ]);
        assert_eq!(
            t.lookup("www.google.com", 80),
            Some("127.0.0.80:8080".parse().unwrap())
        );
        assert_eq!(
            t.lookup("www.GOOGLE.com", 443),
            Some("127.0.0.81:443".parse().unwrap())
        );
        assert_eq!(t.lookup("example.com", 80), None);
        let t = table(&[("db:5432", "::1")]);
        assert_eq!(t.lookup("db", 5432), Some("[::1]:5432".parse().unwrap()));
        assert_eq!(t.lookup("db", 5433), None);
    }

    #[test]
    fn bad_entries_say_what_is_wrong() {
        let mut t = HostsTable::default();
        assert!(matches!(t.set("a b", "127.0.0.1"), Err(Error::BadKey(_))));
        assert!(matches!(
            t.set("host:http", "127.0.0.1"),
            Err(Error::BadKey(_))
        ));
        assert!(matches!(
            t.set("1.2.3.4", "127.0.0.1"),
            Err(Error::AddressKey(_))
        ));
        assert!(matches!(
            t.set("::1", "127.0.0.1"),
            Err(Error::AddressKey(_))
        ));
        assert!(matches!(
            t.set("host", "localhost"),
            Err(Error::BadValue(_))
        ));
        assert!(matches!(
            t.set("host:1", "127.0.0.1:0"),
            Err(Error::BadValue(_))
        ));
        let e = t.set("host", "127.0.0.1:8080").unwrap_err();
        assert!(e.to_string().contains("port on both sides"), "{e}");
        let long = t.set(&"x y".repeat(10_000), "1").unwrap_err().to_string();
        assert!(long.len() < 300, "{long}");
        assert!(t.is_empty());
    }

    #[test]
    fn entries_list_and_remove() {
        let mut t = table(&[("b.example", "127.0.0.2"), ("a.example:80", "[::1]:8080")]);
        assert_eq!(
            t.entries(),
            [
                ("a.example:80".to_string(), "[::1]:8080".to_string()),
                ("b.example".to_string(), "127.0.0.2".to_string())
            ]
        );
        assert!(t.remove("B.example").unwrap());
        assert!(!t.remove("b.example").unwrap());
        assert_eq!(t.entries().len(), 1);
    }
}
