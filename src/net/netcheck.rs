//! `netcheck`: the whole picture in one call, for people who want the answer without
//! writing a line. Probes the gateway for port mapping from the start, starts the
//! default interface meanwhile, then classifies the NAT of every family that has an
//! external address; bounded by the interface start plus the NAT timeout (the
//! port-mapping probe's 1 s runs inside the start), so offline it ends with the start's
//! 2 s.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::net::config::StunConfig;
use crate::net::interface::{self, Interface};
use crate::net::ip_range::Family;
use crate::net::nat::{NatOptions, NatReport, load_nat_named, resolve_named};
use crate::net::portmap::{self, PortmapReport, ProbeOptions};

/// What one family showed.
#[derive(Debug, Clone)]
pub struct FamilyCheck {
    pub family: Family,
    /// The address probes were sent from.
    pub local: Option<IpAddr>,
    pub external: Option<IpAddr>,
    /// `None` when not tested (no route, or no STUN server answered at start).
    pub nat: Option<NatReport>,
}

/// One netcheck run.
#[derive(Debug, Clone)]
pub struct NetcheckReport {
    pub interface: String,
    pub families: Vec<FamilyCheck>,
    /// `None` when the interface has no default gateway.
    pub port_mapping: Option<PortmapReport>,
    pub warnings: Vec<String>,
    pub elapsed: Duration,
}

/// Runs the checks on `interface` (the default one for `None`) with `config`'s servers.
/// Fails only when there is no such interface or it has no address.
pub async fn netcheck(
    config: &StunConfig,
    interface: Option<&str>,
) -> Result<NetcheckReport, interface::Error> {
    let started = Instant::now();
    let mut iface = Interface::by_name(interface)?;
    let gateway = Family::ALL
        .iter()
        .find_map(|f| portmap::default_gateway(&iface.name, *f, iface.index));
    let portmap = gateway.map(|gw| tokio::spawn(portmap::probe(gw, ProbeOptions::default())));
    if let Err(e) = iface.start_stun(config, config.start_timeout).await {
        if let Some(task) = &portmap {
            task.abort();
        }
        return Err(e);
    }
    let nat_opts = NatOptions {
        timeout: config.nat_timeout.min(Duration::from_secs(3)),
        ..NatOptions::default()
    };
    let mut runs = Vec::new();
    for family in Family::ALL {
        let route = iface.route(Some(family)).ok();
        let local = route.as_ref().map(|r| r.nic());
        let external = route
            .as_ref()
            .and_then(|r| r.ext_ips().first().map(|e| e.first()));
        let servers: Vec<_> = config.servers_for(family).cloned().collect();
        let dns = config.dns_timeout;
        runs.push(tokio::spawn(async move {
            // Without an external address no STUN server answered: a NAT test would only
            // wait out its timeout.
            let nat = match (local, external) {
                (Some(local), Some(_)) => {
                    let named = resolve_named(servers, family, dns).await;
                    Some(load_nat_named(local, named, nat_opts).await)
                }
                _ => None,
            };
            FamilyCheck {
                family,
                local,
                external,
                nat,
            }
        }));
    }
    let mut families = Vec::new();
    for run in runs {
        if let Ok(check) = run.await {
            families.push(check);
        }
    }
    let port_mapping = match portmap {
        Some(task) => task.await.ok(),
        None => None,
    };
    Ok(NetcheckReport {
        interface: iface.name.clone(),
        families,
        port_mapping,
        warnings: iface.warnings.clone(),
        elapsed: started.elapsed(),
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Each server the NAT test asked, with its best round trip (`None`: no reply).
fn best_rtts(nat: &NatReport) -> Vec<(SocketAddr, Option<Duration>)> {
    nat.servers
        .iter()
        .map(|server| {
            let best = nat
                .rtts
                .iter()
                .filter(|r| r.server == *server)
                .map(|r| r.rtt)
                .min();
            (*server, best)
        })
        .collect()
}

impl NetcheckReport {
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "interface": self.interface,
            "port_mapping": self.port_mapping.as_ref().map(PortmapReport::to_json),
            "warnings": self.warnings,
            "elapsed_ms": ms(self.elapsed),
        });
        for f in &self.families {
            let key = match f.family {
                Family::V4 => "ipv4",
                Family::V6 => "ipv6",
            };
            let rtts: serde_json::Map<String, Value> = f
                .nat
                .iter()
                .flat_map(best_rtts)
                .map(|(server, rtt)| (server.to_string(), json!(rtt.map(ms))))
                .collect();
            v[key] = json!({
                "local": f.local.map(|ip| ip.to_string()),
                "external": f.external.map(|ip| ip.to_string()),
                "nat": f.nat.as_ref().map(NatReport::to_json),
                "stun_rtt_ms": rtts,
            });
        }
        v
    }
}

impl fmt::Display for NetcheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Report:")?;
        writeln!(f, "\t* Interface: {}", self.interface)?;
        for c in &self.families {
            match (c.local, c.external) {
                (None, _) => writeln!(f, "\t* {}: no (no route)", c.family)?,
                (Some(l), None) => writeln!(
                    f,
                    "\t* {}: no external address (no STUN server answered from {l})",
                    c.family
                )?,
                (Some(l), Some(x)) => {
                    writeln!(f, "\t* {}: yes, external {x} (local {l})", c.family)?
                }
            }
        }
        for c in &self.families {
            let Some(nat) = &c.nat else { continue };
            let t = nat.nat_type();
            let text = |v: Option<String>| v.unwrap_or_else(|| "n/a".into());
            writeln!(
                f,
                "\t* NAT ({}): {} ({}); mapping {}, filtering {}",
                c.family,
                t.code(),
                t,
                text(nat.mapping.map(|m| m.to_string())),
                text(nat.filtering.map(|m| m.to_string()))
            )?;
            let hairpin = nat
                .hairpin
                .map_or("not tested".to_string(), |h| h.to_string());
            writeln!(f, "\t* Hairpinning ({}): {hairpin}", c.family)?;
        }
        let pm = self.port_mapping.as_ref().map_or(
            "not tested (no default gateway)".to_string(),
            PortmapReport::summary,
        );
        writeln!(f, "\t* Port mapping: {pm}")?;
        for c in &self.families {
            let Some(nat) = &c.nat else { continue };
            writeln!(f, "\t* STUN servers ({}):", c.family)?;
            for (server, best) in best_rtts(nat) {
                match best {
                    Some(rtt) => writeln!(f, "\t\t- {server}: {:.1} ms", ms(rtt))?,
                    None => writeln!(f, "\t\t- {server}: no reply")?,
                }
            }
        }
        for w in &self.warnings {
            writeln!(f, "\t* Warning: {w}")?;
        }
        write!(f, "\t* Took: {:.3} s", self.elapsed.as_secs_f64())
    }
}
