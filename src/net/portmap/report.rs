//! [`PortmapReport`]: what the probe learnt about the gateway's port mapping protocols,
//! as one line for the NAT report, a block for `print`, and JSON.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use serde_json::{Value, json};

use super::igd::WanService;

/// The three protocols, in the order reports list them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    Upnp,
    Pmp,
    Pcp,
}

impl Protocol {
    /// The order `map_port` tries them in: PCP (the newest, with nonces), NAT-PMP, UPnP.
    pub const MAPPING_ORDER: [Protocol; 3] = [Protocol::Pcp, Protocol::Pmp, Protocol::Upnp];

    pub fn name(self) -> &'static str {
        match self {
            Protocol::Upnp => "UPnP",
            Protocol::Pmp => "NAT-PMP",
            Protocol::Pcp => "PCP",
        }
    }

    /// The short key scripts and JSON use.
    pub fn key(self) -> &'static str {
        match self {
            Protocol::Upnp => "upnp",
            Protocol::Pmp => "pmp",
            Protocol::Pcp => "pcp",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How one protocol ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The gateway speaks it and did not refuse. `external_ip` when it said.
    Available {
        external_ip: Option<IpAddr>,
        rtt: Duration,
        note: String,
    },
    /// The gateway speaks it but refused (the result code, in words).
    Refused(String),
    /// The gateway said it does not speak it.
    NotSpoken(String),
    /// No answer.
    Silent,
    /// An answer that led nowhere (a UPnP description without a WAN service, an HTTP
    /// error).
    Failed(String),
}

impl Outcome {
    pub fn is_available(&self) -> bool {
        matches!(self, Outcome::Available { .. })
    }
}

/// The answer of one probe. `None` for a protocol means "not tested".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortmapReport {
    pub gateway: IpAddr,
    /// The local address the probe was sent from.
    pub client: IpAddr,
    /// From NAT-PMP or UPnP (PCP's ANNOUNCE does not carry it).
    pub external_ip: Option<IpAddr>,
    /// Time to the first answer of any protocol.
    pub rtt: Option<Duration>,
    pub elapsed: Duration,
    /// The probe's bound when nothing answers, for "... within 1 s".
    pub timeout: Duration,
    pub outcomes: [(Protocol, Option<Outcome>); 3],
    /// The UPnP WAN service found, for mapping without a second discovery.
    pub upnp_service: Option<WanService>,
    /// Datagrams dropped as foreign or malformed.
    pub ignored: usize,
}

fn secs_text(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0} s")
    } else {
        format!("{s:.2} s")
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl PortmapReport {
    pub fn outcome(&self, p: Protocol) -> Option<&Outcome> {
        self.outcomes
            .iter()
            .find(|(q, _)| *q == p)
            .and_then(|(_, o)| o.as_ref())
    }

    /// `Some(true)` available, `Some(false)` tested and not usable, `None` not tested.
    pub fn available(&self, p: Protocol) -> Option<bool> {
        self.outcome(p).map(Outcome::is_available)
    }

    pub fn any_available(&self) -> bool {
        self.outcomes
            .iter()
            .any(|(_, o)| o.as_ref().is_some_and(Outcome::is_available))
    }

    /// Whether the gateway answered anything at all.
    pub fn anything_answered(&self) -> bool {
        self.rtt.is_some()
    }

    /// The sentence for "nothing answered", naming what was tried.
    pub fn silence_message(&self) -> String {
        let tried: Vec<&str> = self
            .outcomes
            .iter()
            .filter(|(_, o)| o.is_some())
            .map(|(p, _)| p.name())
            .collect();
        format!(
            "no port mapping protocol answered ({}) at {} within {}",
            tried.join(", "),
            self.gateway,
            secs_text(self.timeout)
        )
    }

    /// One line per protocol: what it said, in words.
    pub fn details(&self) -> Vec<String> {
        self.outcomes
            .iter()
            .filter_map(|(p, o)| {
                let o = o.as_ref()?;
                Some(format!("{}: {}", p.name(), describe(o)))
            })
            .collect()
    }

    /// The NAT report's one-line summary: the available protocols, or why none.
    pub fn summary(&self) -> String {
        let available: Vec<&str> = self
            .outcomes
            .iter()
            .filter(|(_, o)| o.as_ref().is_some_and(Outcome::is_available))
            .map(|(p, _)| p.name())
            .collect();
        if !available.is_empty() {
            let ext = self
                .external_ip
                .map_or_else(String::new, |ip| format!(", external {ip}"));
            return format!("{} (gateway {}{ext})", available.join(", "), self.gateway);
        }
        if !self.anything_answered() {
            return format!("none ({})", self.silence_message());
        }
        let why: Vec<String> = self
            .outcomes
            .iter()
            .filter_map(|(p, o)| match o {
                Some(Outcome::Refused(w)) | Some(Outcome::Failed(w)) => {
                    Some(format!("{}: {w}", p.name()))
                }
                _ => None,
            })
            .collect();
        format!("none usable at {} ({})", self.gateway, why.join("; "))
    }

    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "gateway": self.gateway.to_string(),
            "client": self.client.to_string(),
            "external_ip": self.external_ip.map(|ip| ip.to_string()),
            "rtt_ms": self.rtt.map(ms),
            "elapsed_ms": ms(self.elapsed),
            "details": self.details(),
            "summary": self.summary(),
        });
        for (p, _) in &self.outcomes {
            v[p.key()] = self.available(*p).map_or(Value::Null, Value::Bool);
        }
        v
    }
}

fn describe(o: &Outcome) -> String {
    match o {
        Outcome::Available {
            external_ip,
            rtt,
            note,
        } => {
            let mut parts = Vec::new();
            if !note.is_empty() {
                parts.push(note.clone());
            }
            if let Some(ip) = external_ip {
                parts.push(format!("external address {ip}"));
            }
            parts.push(format!("{:.1} ms", ms(*rtt)));
            format!("available, {}", parts.join(", "))
        }
        Outcome::Refused(why) => format!("answered but refused: {why}"),
        Outcome::NotSpoken(why) => format!("not spoken ({why})"),
        Outcome::Silent => "no answer".into(),
        Outcome::Failed(why) => format!("failed: {why}"),
    }
}

impl fmt::Display for PortmapReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Port mapping report:")?;
        writeln!(f, "\t* Gateway: {} (from {})", self.gateway, self.client)?;
        for (p, _) in &self.outcomes {
            let v = self
                .available(*p)
                .map_or("not tested".to_string(), |b| b.to_string());
            writeln!(f, "\t* {}: {v}", p.name())?;
        }
        let ext = self
            .external_ip
            .map_or_else(|| "unknown".to_string(), |ip| ip.to_string());
        writeln!(f, "\t* External address: {ext}")?;
        for line in self.details() {
            writeln!(f, "\t\t- {line}")?;
        }
        write!(f, "\t* Took: {:.1} ms", ms(self.elapsed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(outcomes: [Option<Outcome>; 3], rtt: Option<Duration>) -> PortmapReport {
        let [u, m, c] = outcomes;
        PortmapReport {
            gateway: "10.77.0.1".parse().unwrap(),
            client: "10.77.0.10".parse().unwrap(),
            external_ip: None,
            rtt,
            elapsed: Duration::from_millis(5),
            timeout: Duration::from_secs(1),
            outcomes: [(Protocol::Upnp, u), (Protocol::Pmp, m), (Protocol::Pcp, c)],
            upnp_service: None,
            ignored: 0,
        }
    }

    #[test]
    fn silence_is_said_in_words() {
        let r = report(
            [
                Some(Outcome::Silent),
                Some(Outcome::Silent),
                Some(Outcome::Silent),
            ],
            None,
        );
        assert_eq!(
            r.silence_message(),
            "no port mapping protocol answered (UPnP, NAT-PMP, PCP) at 10.77.0.1 within 1 s"
        );
        assert!(
            r.summary()
                .starts_with("none (no port mapping protocol answered")
        );
        assert_eq!(r.to_json()["pmp"], false);
        let v6 = report([None, None, Some(Outcome::Silent)], None);
        assert!(v6.silence_message().contains("(PCP)"));
        assert_eq!(v6.to_json()["upnp"], Value::Null);
    }

    #[test]
    fn refusals_name_protocol_and_result() {
        let r = report(
            [
                Some(Outcome::Silent),
                Some(Outcome::Refused("network failure (result 3)".into())),
                Some(Outcome::Refused("address mismatch (result 12)".into())),
            ],
            Some(Duration::from_millis(1)),
        );
        assert_eq!(
            r.summary(),
            "none usable at 10.77.0.1 (NAT-PMP: network failure (result 3); PCP: address mismatch (result 12))"
        );
        assert!(
            r.details()
                .contains(&"PCP: answered but refused: address mismatch (result 12)".to_string())
        );
    }

    #[test]
    fn available_protocols_are_listed() {
        let ok = Outcome::Available {
            external_ip: Some("203.0.113.100".parse().unwrap()),
            rtt: Duration::from_micros(400),
            note: String::new(),
        };
        let mut r = report(
            [Some(ok.clone()), None, Some(ok)],
            Some(Duration::from_micros(400)),
        );
        r.external_ip = Some("203.0.113.100".parse().unwrap());
        assert_eq!(
            r.summary(),
            "UPnP, PCP (gateway 10.77.0.1, external 203.0.113.100)"
        );
        let text = r.to_string();
        assert!(text.contains("\t* NAT-PMP: not tested\n"), "{text}");
        assert!(
            text.contains("UPnP: available, external address 203.0.113.100, 0.4 ms"),
            "{text}"
        );
        let v = r.to_json();
        assert_eq!(
            (v["upnp"].clone(), v["pcp"].clone()),
            (Value::Bool(true), Value::Bool(true))
        );
        assert_eq!(v["external_ip"], "203.0.113.100");
    }
}
