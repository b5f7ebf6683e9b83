//! [`NatReport`]: everything one NAT run concluded, in both vocabularies (P2PD's nat dict
//! and RFC 4787 behaviour), plus what it cost (servers, per-probe RTTs, wall time).
//! It prints as a `tailscale netcheck`-style table and converts to P2PD's dict shapes.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};

use super::behaviour::{Allocation, FilteringBehaviour, MappingBehaviour};
use super::lifetime::MappingLifetime;
use super::observations::ProbeKind;
use super::types::{Delta, NatInfo, NatType};

/// How long one probe's reply took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeRtt {
    pub probe: ProbeKind,
    pub server: SocketAddr,
    pub rtt: Duration,
}

/// The answer of a NAT run. `None` in an RFC 4787 field means "not applicable or not
/// measured": no NAT has no mapping behaviour, a blocked path has no filtering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatReport {
    /// P2PD's view: type, delta, range and the derived flags.
    pub nat: NatInfo,
    pub mapping: Option<MappingBehaviour>,
    pub filtering: Option<FilteringBehaviour>,
    /// Whether a packet sent to our own external address came back in (RFC 4787 REQ-9).
    pub hairpin: Option<bool>,
    pub allocation: Option<Allocation>,
    /// The probing socket's local address.
    pub local: SocketAddr,
    /// Our address as the primary server saw it; `None` when nothing answered.
    pub external: Option<SocketAddr>,
    /// Every server address a probe was sent to, first use first.
    pub servers: Vec<SocketAddr>,
    /// RTT of every probe that was answered.
    pub rtts: Vec<ProbeRtt>,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// How long an idle mapping survived, when that was measured (opt-in, slow).
    pub lifetime: Option<MappingLifetime>,
    /// What the gateway offers for port mapping; `None` when not tested.
    pub port_mapping: Option<crate::net::portmap::PortmapReport>,
}

impl NatReport {
    pub fn nat_type(&self) -> NatType {
        self.nat.nat_type()
    }

    pub fn delta(&self) -> Delta {
        self.nat.delta()
    }

    /// P2PD's full `nat_info()` dict.
    pub fn to_p2pd_json(&self) -> Value {
        self.nat.to_p2pd_json()
    }

    /// Everything: P2PD's dict under `"p2pd"`, the rest beside it; times in milliseconds.
    pub fn to_json(&self) -> Value {
        let text = |v: Option<String>| v.map_or(Value::Null, Value::String);
        json!({
            "p2pd": self.to_p2pd_json(),
            "nat_info": self.nat.nat_type().info(),
            "delta_info": self.nat.delta().info(),
            "mapping": text(self.mapping.map(|m| m.to_string())),
            "filtering": text(self.filtering.map(|f| f.to_string())),
            "hairpin": self.hairpin,
            "allocation": text(self.allocation.map(|a| a.to_string())),
            "local": self.local.to_string(),
            "external": text(self.external.map(|e| e.to_string())),
            "servers": self.servers.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "rtts": self.rtts.iter().map(|r| json!({
                "probe": r.probe.name(),
                "server": r.server.to_string(),
                "ms": millis(r.rtt),
            })).collect::<Vec<_>>(),
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

impl fmt::Display for NatReport {
    /// A netcheck-style block, one fact per line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nat = &self.nat;
        writeln!(f, "NAT report:")?;
        writeln!(
            f,
            "\t* Type: {} ({})",
            nat.nat_type().code(),
            nat.nat_type()
        )?;
        writeln!(
            f,
            "\t* Delta: {} ({})",
            nat.delta().type_code(),
            nat.delta()
        )?;
        writeln!(f, "\t* Mapping: {}", or(self.mapping, "n/a"))?;
        writeln!(f, "\t* Filtering: {}", or(self.filtering, "n/a"))?;
        writeln!(f, "\t* Port allocation: {}", or(self.allocation, "n/a"))?;
        writeln!(f, "\t* Hairpinning: {}", or(self.hairpin, "not tested"))?;
        let port_mapping = self.port_mapping.as_ref().map(|p| p.summary());
        writeln!(f, "\t* Port mapping: {}", or(port_mapping, "not tested"))?;
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
    use crate::net::nat::types::PortRange;

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
    fn json_carries_p2pd_dict_and_rfc4787_view() {
        let v = sample().to_json();
        assert_eq!(v["p2pd"]["type"], 5);
        assert_eq!(v["p2pd"]["is_hard"], false);
        assert_eq!(v["mapping"], "endpoint-independent");
        assert_eq!(v["hairpin"], false);
        assert_eq!(v["rtts"][0]["probe"], "binding");
        assert_eq!(v["elapsed_ms"], 42.0);
        assert_eq!(v["lifetime"]["expired_ms"], 30000.0);
    }
}
