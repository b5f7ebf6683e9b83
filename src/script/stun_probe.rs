//! `stun_probe("host:port")`: what one STUN server really does, learnt at run time. It is
//! a NAT run against that server alone (no delta, no hairpin), so "changes address" means
//! the same here as in a NAT report: a change reply proved it, not a claimed
//! OTHER-ADDRESS.

use super::bridge;
use super::error::error;
use super::registry::{Help, Registrar};
use crate::net::address::{self, ResolveOptions};
use crate::net::config::{StunConfig, StunServer as ServerEntry, StunSource};
use crate::net::ip_range::Family;
use crate::net::nat::{Claim, NamedServer, NatOptions, load_nat_named};
use crate::net::route::Route;
use rhai::{Dynamic, EvalAltResult, Map, NativeCallContext};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock};

const PROBE: Help = Help::function(
    "stun",
    &[
        "stun_probe(\"HOST:PORT\")",
        "stun_probe(\"HOST:PORT\", route)",
    ],
    "What one STUN server does: #{mapped, rtt, other_address, changes_address, software, verdict}; changes_address is true only when a change reply proved it, () when this path cannot tell.",
    r#"let s = stun_server("127.0.0.1:0", "127.0.0.2:0"); let p = await stun_probe(s.primary); s.close(); p.changes_address"#,
);

/// Registers `stun_probe`; part of the `stun` area.
pub fn register(reg: &mut Registrar, stun: &Arc<RwLock<StunConfig>>) {
    let config = Arc::clone(stun);
    reg.func(
        "stun_probe",
        &PROBE,
        move |ctx: NativeCallContext, server: &str| probe(&ctx, &config, server, None),
    );
    let config = Arc::clone(stun);
    reg.func(
        "stun_probe",
        &PROBE,
        move |ctx: NativeCallContext, server: &str, route: Route| {
            probe(&ctx, &config, server, Some(route))
        },
    );
}

fn probe(
    ctx: &NativeCallContext,
    stun: &RwLock<StunConfig>,
    server: &str,
    route: Option<Route>,
) -> Result<Map, Box<EvalAltResult>> {
    let config = stun.read().unwrap_or_else(|p| p.into_inner()).clone();
    let entry = ServerEntry::parse(server, StunSource::Argument("stun_probe's server"))
        .map_err(|e| error("value", e))?;
    // The family: the route's, else the literal's, else IPv4 first.
    let family = match &route {
        Some(r) => Some(Family::of(&r.nic())),
        None => entry.host.parse::<IpAddr>().ok().map(|ip| Family::of(&ip)),
    };
    let local = route
        .as_ref()
        .map(|r| r.bind_addr().map_or(r.nic(), |a| a.ip()));
    let opts = NatOptions {
        timeout: config.request_timeout,
        delta_tests: 0,
        hairpin: false,
        ..NatOptions::default()
    };
    let dns = ResolveOptions {
        timeout: config.dns_timeout.min(config.request_timeout),
        ..ResolveOptions::default()
    };
    let name = entry.to_string();
    let report = bridge::wait(ctx, async move {
        let families = family.map_or(Family::ALL.to_vec(), |f| vec![f]);
        let mut last = None;
        for family in families {
            match address::resolve(&entry.host, entry.port, family, &dns).await {
                Ok(a) => {
                    let dest = a.socket_addr();
                    let local = local.unwrap_or(family.unspecified());
                    let named = vec![NamedServer {
                        name: name.clone(),
                        resolved: Ok(dest),
                        claim: Claim::Unknown,
                    }];
                    return Ok(load_nat_named(local, named, opts).await);
                }
                Err(e) => last = Some(e),
            }
        }
        let why = last.map_or_else(|| "no address".to_string(), |e| e.cause());
        Err(error("stun", format!("{name}: {why}")))
    })?;
    let Some(s) = report.stun.first() else {
        return Err(error("stun", format!("{server}: not probed")));
    };
    if s.rtt.is_none() {
        return Err(error("stun", format!("{}: {}", s.name, s.kind)));
    }
    let text = |a: Option<SocketAddr>| a.map_or(Dynamic::UNIT, |a| Dynamic::from(a.to_string()));
    let mut map = Map::new();
    map.insert("mapped".into(), text(s.mapped));
    map.insert(
        "rtt".into(),
        s.rtt
            .map_or(Dynamic::UNIT, |r| Dynamic::from(r.as_secs_f64())),
    );
    map.insert("other_address".into(), text(s.alternate));
    map.insert(
        "changes_address".into(),
        s.kind
            .changes_address()
            .map_or(Dynamic::UNIT, Dynamic::from),
    );
    map.insert(
        "software".into(),
        s.software.clone().map_or(Dynamic::UNIT, Dynamic::from),
    );
    map.insert("verdict".into(), s.kind.to_string().into());
    map.insert("server".into(), text(s.address));
    Ok(map)
}
