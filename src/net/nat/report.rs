//! [`NatReport`]: everything one NAT run concluded, in both vocabularies (P2PD's nat dict
//! and RFC 4787 behaviour), plus what it cost (servers, per-probe RTTs, wall time).
//! It prints as a `tailscale netcheck`-style table and converts to P2PD's dict shapes.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde_json::{Value, json};

use super::behaviour::{Allocation, FilteringBehaviour, MappingBehaviour};
use super::lifetime::MappingLifetime;
use super::observations::ProbeKind;
use super::server_kind::ServerReport;
use super::types::{Delta, NatInfo, NatType, PortRange};

/// How long one probe's reply took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeRtt {
    pub probe: ProbeKind,
    pub server: SocketAddr,
    pub rtt: Duration,
}

/// A field of the answer that rests on an assumption, not on evidence: P2PD's own default
/// filled it (restrict port for the NAT type, random for the delta).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Assumed {
    Mapping,
    Filtering,
    Delta,
}

impl Assumed {
    pub fn name(self) -> &'static str {
        match self {
            Assumed::Mapping => "mapping",
            Assumed::Filtering => "filtering",
            Assumed::Delta => "delta",
        }
    }
}

/// The answer of a NAT run. `None` in an RFC 4787 field means "not applicable or not
/// measured": no NAT has no mapping behaviour, a blocked path has no filtering.
#[derive(Debug, Clone, PartialEq)]
pub struct NatReport {
    /// P2PD's view: type, delta, range and the derived flags.
    pub nat: NatInfo,
    pub mapping: Option<MappingBehaviour>,
    pub filtering: Option<FilteringBehaviour>,
    /// Whether a packet sent to our own external address came back in (RFC 4787 REQ-9).
    pub hairpin: Option<bool>,
    pub allocation: Option<Allocation>,
    /// Without a NAT: whether unsolicited packets reach a port that never sent.
    pub open_path: Option<bool>,
    /// The reported socket's local address.
    pub local: SocketAddr,
    /// Our address as the servers saw it; `None` when nothing answered.
    pub external: Option<SocketAddr>,
    /// Fields that rest on P2PD's default assumption rather than on evidence.
    pub assumed: Vec<Assumed>,
    /// Why nothing was sent, when nothing was: the run tested nothing.
    pub untested: Option<String>,
    /// Every server address a probe was sent to, first use first.
    pub servers: Vec<SocketAddr>,
    /// What each configured server turned out to be.
    pub stun: Vec<ServerReport>,
    /// RTT of every probe that was answered.
    pub rtts: Vec<ProbeRtt>,
    /// Round trips lost on answering paths (0.0-1.0), when any were measured.
    pub loss: Option<f64>,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// How long an idle mapping survived, when that was measured (opt-in, slow).
    pub lifetime: Option<MappingLifetime>,
    /// What the gateway offers for port mapping; `None` when not tested.
    pub port_mapping: Option<crate::net::portmap::PortmapReport>,
}

impl NatReport {
    /// A report of nothing (blocked until shown otherwise) for `local_ip`.
    pub fn empty(local_ip: IpAddr) -> NatReport {
        NatReport {
            nat: NatInfo::new(NatType::BlockedNat, Delta::NotApplicable, PortRange::FULL),
            mapping: None,
            filtering: None,
            hairpin: None,
            allocation: None,
            open_path: None,
            local: SocketAddr::new(local_ip, 0),
            external: None,
            assumed: Vec::new(),
            untested: None,
            servers: Vec::new(),
            stun: Vec::new(),
            rtts: Vec::new(),
            loss: None,
            elapsed: Duration::ZERO,
            lifetime: None,
            port_mapping: None,
        }
    }

    /// Whether any request went out.
    pub fn tested(&self) -> bool {
        self.untested.is_none()
    }

    pub fn nat_type(&self) -> NatType {
        self.nat.nat_type()
    }

    pub fn delta(&self) -> Delta {
        self.nat.delta()
    }

    /// Whether `field` ("filtering", "mapping", "delta") rests on an assumption.
    pub fn is_assumed(&self, field: Assumed) -> bool {
        self.assumed.contains(&field)
    }

    /// P2PD's full `nat_info()` dict.
    pub fn to_p2pd_json(&self) -> Value {
        self.nat.to_p2pd_json()
    }

    /// Everything: P2PD's dict under `"p2pd"` (null when nothing was tested), the rest
    /// beside it; times in milliseconds.
    pub fn to_json(&self) -> Value {
        let text = |v: Option<String>| v.map_or(Value::Null, Value::String);
        let tested = self.tested();
        json!({
            "tested": tested,
            "untested": self.untested,
            "p2pd": if tested { self.to_p2pd_json() } else { Value::Null },
            "nat_info": tested.then(|| self.nat.nat_type().info()),
            "delta_info": tested.then(|| self.nat.delta().info()),
            "assumed": self.assumed.iter().map(|a| a.name()).collect::<Vec<_>>(),
            "mapping": text(self.mapping.map(|m| m.to_string())),
            "filtering": text(self.filtering.map(|f| f.to_string())),
            "hairpin": self.hairpin,
            "allocation": text(self.allocation.map(|a| a.to_string())),
            "open_path": self.open_path,
            "local": self.local.to_string(),
            "external": text(self.external.map(|e| e.to_string())),
            "servers": self.servers.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "stun": self.stun.iter().map(|s| json!({
                "name": s.name,
                "address": s.address.map(|a| a.to_string()),
                "kind": s.kind.code(),
                "verdict": s.kind.to_string(),
                "changes_address": s.kind.changes_address(),
                "alternate": s.alternate.map(|a| a.to_string()),
                "mapped": s.mapped.map(|a| a.to_string()),
                "rtt_ms": s.rtt.map(millis),
                "software": s.software,
            })).collect::<Vec<_>>(),
            "rtts": self.rtts.iter().map(|r| json!({
                "probe": r.probe.name(),
                "server": r.server.to_string(),
                "ms": millis(r.rtt),
            })).collect::<Vec<_>>(),
            "loss": self.loss,
            "elapsed_ms": millis(self.elapsed),
            "lifetime": self.lifetime.map_or(Value::Null, |l| json!({
                "alive_ms": l.alive.map(millis),
                "expired_ms": l.expired.map(millis),
            })),
            "port_mapping": self.port_mapping.as_ref().map_or(Value::Null, |p| p.to_json()),
        })
    }
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `Some(x)` prints as x, `None` as the given placeholder.
fn or<T: fmt::Display>(value: Option<T>, none: &str) -> String {
    value.map_or_else(|| none.to_string(), |v| v.to_string())
}

/// How to get the fields that are only assumed.
const HINT: &str = "for filtering, add a STUN server that answers from a second address \
(RFC 5780 OTHER-ADDRESS or RFC 3489 CHANGED-ADDRESS) with stun_servers([...]) or --stun; \
for mapping, servers at two different IPs";

impl fmt::Display for NatReport {
    /// A netcheck-style block, one fact per line; `[assumed]` marks a value that rests on
    /// P2PD's default rather than on evidence.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "NAT report:")?;
        if let Some(why) = &self.untested {
            writeln!(f, "\t* Not tested: {why}")?;
            return write!(f, "\t* Took: {:.3}s", self.elapsed.as_secs_f64());
        }
        let nat = &self.nat;
        let mark = |field| {
            if self.is_assumed(field) {
                " [assumed]"
            } else {
                ""
            }
        };
        let type_mark = if self.is_assumed(Assumed::Filtering) || self.is_assumed(Assumed::Mapping)
        {
            " [assumed]"
        } else {
            ""
        };
        writeln!(
            f,
            "\t* Type: {} ({}){type_mark}",
            nat.nat_type().code(),
            nat.nat_type()
        )?;
        writeln!(
            f,
            "\t* Delta: {} ({}){}",
            nat.delta().type_code(),
            nat.delta(),
            mark(Assumed::Delta)
        )?;
        let unknown = |field| {
            if self.is_assumed(field) {
                "unknown"
            } else {
                "n/a"
            }
        };
        writeln!(
            f,
            "\t* Mapping: {}",
            or(self.mapping, unknown(Assumed::Mapping))
        )?;
        writeln!(
            f,
            "\t* Filtering: {}",
            or(self.filtering, unknown(Assumed::Filtering))
        )?;
        writeln!(f, "\t* Port allocation: {}", or(self.allocation, "n/a"))?;
        writeln!(f, "\t* Hairpinning: {}", or(self.hairpin, "not tested"))?;
        let port_mapping = self.port_mapping.as_ref().map(|p| p.summary());
        writeln!(f, "\t* Port mapping: {}", or(port_mapping, "not tested"))?;
        if let Some(open) = self.open_path {
            let text = if open {
                "yes (unsolicited packets reach unused ports)"
            } else {
                "no (a firewall drops unsolicited packets)"
            };
            writeln!(f, "\t* Open path: {text}")?;
        }
        if let Some(l) = self.lifetime {
            let secs = |d: Option<Duration>| d.map(|d| format!("{:.1}s", d.as_secs_f64()));
            writeln!(
                f,
                "\t* Mapping lifetime: alive after {}, expired after {}",
                or(secs(l.alive), "none"),
                or(secs(l.expired), "never")
            )?;
        }
        writeln!(f, "\t* Local address: {}", self.local)?;
        writeln!(f, "\t* External address: {}", or(self.external, "none"))?;
        writeln!(f, "\t* Range: {}-{}", nat.range().start, nat.range().stop)?;
        writeln!(
            f,
            "\t* Open: {}, predictable: {}, hard: {}, concurrent: {}",
            nat.is_open(),
            nat.can_predict(),
            nat.is_hard(),
            nat.is_concurrent()
        )?;
        if !self.assumed.is_empty() {
            let names: Vec<&str> = self.assumed.iter().map(|a| a.name()).collect();
            writeln!(
                f,
                "\t* Assumed: {} unknown, P2PD's default used",
                names.join(", ")
            )?;
            writeln!(f, "\t  Hint: {HINT}")?;
        }
        if let Some(loss) = self.loss.filter(|l| *l > 0.0) {
            writeln!(f, "\t* Loss seen: {:.0}% of round trips", loss * 100.0)?;
        }
        writeln!(f, "\t* Servers:")?;
        for s in &self.stun {
            let rtt = s
                .rtt
                .map(|r| format!(", {:.1}ms", millis(r)))
                .unwrap_or_default();
            let addr = match s.address {
                Some(a) if a.to_string() != s.name => format!(" ({a})"),
                _ => String::new(),
            };
            writeln!(f, "\t\t- {}{addr}: {}{rtt}", s.name, s.kind)?;
        }
        writeln!(f, "\t* Probes:")?;
        for server in &self.servers {
            let heard: Vec<String> = self
                .rtts
                .iter()
                .filter(|r| r.server == *server)
                .map(|r| format!("{} {:.1}ms", r.probe.name(), millis(r.rtt)))
                .collect();
            let heard = if heard.is_empty() {
                "no reply".to_string()
            } else {
                heard.join(", ")
            };
            writeln!(f, "\t\t- {server}: {heard}")?;
        }
        write!(f, "\t* Took: {:.3}s", self.elapsed.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::nat::server_kind::ServerKind;

    fn sample() -> NatReport {
        let server: SocketAddr = "203.0.113.1:3478".parse().unwrap();
        NatReport {
            nat: NatInfo::new(NatType::RestrictPortNat, Delta::Equal, PortRange::FULL),
            mapping: Some(MappingBehaviour::EndpointIndependent),
            filtering: Some(FilteringBehaviour::AddressAndPortDependent),
            hairpin: Some(false),
            allocation: Some(Allocation::Preserving),
            local: "10.77.0.10:40000".parse().unwrap(),
            external: Some("203.0.113.100:40000".parse().unwrap()),
            servers: vec![server],
            rtts: vec![ProbeRtt {
                probe: ProbeKind::Binding,
                server,
                rtt: Duration::from_micros(1500),
            }],
            elapsed: Duration::from_millis(42),
            lifetime: Some(MappingLifetime {
                alive: Some(Duration::from_secs(15)),
                expired: Some(Duration::from_secs(30)),
            }),
            open_path: None,
            assumed: Vec::new(),
            untested: None,
            stun: vec![ServerReport {
                name: "stun.lab:3478".into(),
                address: Some(server),
                kind: ServerKind::Changes,
                alternate: Some("203.0.113.2:3479".parse().unwrap()),
                mapped: Some("203.0.113.100:40000".parse().unwrap()),
                rtt: Some(Duration::from_micros(1500)),
                software: None,
            }],
            loss: Some(0.0),
            port_mapping: None,
        }
    }

    #[test]
    fn table_names_every_fact() {
        let text = sample().to_string();
        for needle in [
            "Type: 5 (restrict port)",
            "Delta: 2 (equal delta",
            "Mapping: endpoint-independent",
            "Filtering: address-and-port-dependent",
            "Port allocation: preserving",
            "Hairpinning: false",
            "External address: 203.0.113.100:40000",
            "203.0.113.1:3478: binding 1.5ms",
            "Took: 0.042s",
            "Port mapping: not tested",
            "Mapping lifetime: alive after 15.0s, expired after 30.0s",
        ] {
            assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
        }
    }

    #[test]
    fn assumed_fields_are_marked_with_a_hint() {
        let mut r = sample();
        r.filtering = None;
        r.assumed = vec![Assumed::Filtering];
        let text = r.to_string();
        for needle in [
            "Type: 5 (restrict port) [assumed]",
            "Filtering: unknown",
            "Assumed: filtering unknown",
            "Hint:",
        ] {
            assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
        }
        assert_eq!(r.to_json()["assumed"][0], "filtering");
        assert!(!sample().to_string().contains("assumed"));
    }

    #[test]
    fn untested_says_why_and_carries_no_type() {
        let mut r = NatReport::empty("10.77.0.10".parse().unwrap());
        r.untested =
            Some("no STUN server could be asked: 8 configured, 8 names did not resolve".into());
        let text = r.to_string();
        assert!(
            text.contains("Not tested: no STUN server could be asked"),
            "{text}"
        );
        assert!(!text.contains("Type:"), "{text}");
        let v = r.to_json();
        assert_eq!(v["tested"], false);
        assert!(v["p2pd"].is_null());
    }

    #[test]
    fn json_carries_p2pd_dict_and_rfc4787_view() {
        let v = sample().to_json();
        assert_eq!(v["p2pd"]["type"], 5);
        assert_eq!(v["p2pd"]["is_hard"], false);
        assert_eq!(v["mapping"], "endpoint-independent");
        assert_eq!(v["hairpin"], false);
        assert_eq!(v["rtts"][0]["probe"], "binding");
        assert_eq!(v["elapsed_ms"], 42.0);
        assert_eq!(v["lifetime"]["expired_ms"], 30000.0);
        assert_eq!(v["stun"][0]["kind"], "changes");
        assert_eq!(v["stun"][0]["changes_address"], true);
        assert_eq!(v["tested"], true);
    }
}
