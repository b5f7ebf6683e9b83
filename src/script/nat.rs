//! Rhai bindings for NAT classification: `i.load_nat()`, `nat_report(i)`, and the
//! `NatReport` object they return.
//!
//! `load_nat` stores its answer in the interface twice: P2PD's `nat` dict (so `repr(i)`
//! keeps P2PD's shape) and the full report (RFC 4787 view, RTTs, servers), which
//! `print(i.nat)` and `nat_report(i)` show as a table. Servers come from the session's
//! STUN configuration; their alternate addresses are learnt at run time.

use super::args::seconds;
use super::engine::BindContext;
use super::error::error;
use super::interface::{InterfaceHandle, json_to_dynamic};
use super::registry::{Help, Registrar};
use super::status;
use super::world::World;
use crate::net::config::{StunConfig, StunServer as ServerEntry};
use crate::net::ip_range::Family;
use crate::net::nat::{NatOptions, NatReport, load_nat_named, resolve_named};
use rhai::{Dynamic, EvalAltResult, Map, NativeCallContext};
use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

const LOAD_NAT: Help = Help::method(
    "nat",
    &[
        "i.load_nat()",
        "i.load_nat(IP6)",
        "i.load_nat(#{timeout: 3, delta_tests: 12, hairpin: true, lifetime: false, max: 120, port_mapping: true, family: IP4})",
    ],
    "Classify the NAT in front of an interface (P2PD type and delta, RFC 4787 mapping and filtering, hairpin); stores and returns the report.",
    r#"let i = Interface("lo"); let s = stun_server("127.0.0.1:0", "127.0.0.2:0"); stun_servers([s.primary]); await i.load_nat()"#,
);
const NAT_REPORT: Help = Help::function(
    "nat",
    &["nat_report(i)"],
    "The last NAT report of an interface, printed as a table (like tailscale netcheck); .to_json() for JSON.",
    r#"let i = Interface("lo"); let s = stun_server("127.0.0.1:0", "127.0.0.2:0"); stun_servers([s.primary]); i.load_nat(#{timeout: 1}); nat_report(i)"#,
);
const TO_JSON: Help = Help::method(
    "nat",
    &["report.to_json()"],
    "The whole NAT report as pretty JSON (times in milliseconds).",
    r#"let i = Interface("lo"); let s = stun_server("127.0.0.1:0", "127.0.0.2:0"); stun_servers([s.primary]); i.load_nat().to_json()"#,
);
const P2PD_DICT: Help = Help::method(
    "nat",
    &["report.p2pd()"],
    "P2PD's full nat dict: type, delta, range, is_open, can_predict, is_hard, is_concurrent.",
    r#"let i = Interface("lo"); let s = stun_server("127.0.0.1:0", "127.0.0.2:0"); stun_servers([s.primary]); i.load_nat().p2pd()"#,
);

pub fn register(reg: &mut Registrar, ctx: &BindContext) {
    register_report(reg);
    let session = (ctx.stun.clone(), ctx.world.clone());
    reg.func(
        "load_nat",
        &LOAD_NAT,
        move |ctx: NativeCallContext, i: &mut InterfaceHandle| {
            run_load_nat(&ctx, i, &session, Map::new())
        },
    );
    let session = (ctx.stun.clone(), ctx.world.clone());
    reg.func(
        "load_nat",
        &LOAD_NAT,
        move |ctx: NativeCallContext, i: &mut InterfaceHandle, af: rhai::INT| {
            let mut opts = Map::new();
            opts.insert("family".into(), Dynamic::from(af));
            run_load_nat(&ctx, i, &session, opts)
        },
    );
    let session = (ctx.stun.clone(), ctx.world.clone());
    reg.func(
        "load_nat",
        &LOAD_NAT,
        move |ctx: NativeCallContext, i: &mut InterfaceHandle, opts: Map| {
            run_load_nat(&ctx, i, &session, opts)
        },
    )
    .func(
        "nat_report",
        &NAT_REPORT,
        |i: InterfaceHandle| -> Result<NatReport, Box<EvalAltResult>> {
            i.read(|iface| {
                iface.nat_report.clone().ok_or_else(|| {
                    error(
                        "nat",
                        format!(
                            "no NAT report for {} yet: run i.load_nat() first",
                            crate::text::quoted(&iface.name)
                        ),
                    )
                })
            })
        },
    )
    .func("to_json", &TO_JSON, |r: &mut NatReport| {
        serde_json::to_string_pretty(&r.to_json()).unwrap_or_default()
    })
    .func("p2pd", &P2PD_DICT, |r: &mut NatReport| {
        json_to_dynamic(&r.to_p2pd_json())
    });
}

fn register_report(reg: &mut Registrar) {
    reg.engine()
        .register_type_with_name::<NatReport>("NatReport")
        .register_fn("to_string", |r: &mut NatReport| {
            r.to_string().trim_end().to_string()
        })
        .register_fn("to_debug", |r: &mut NatReport| {
            r.to_string().trim_end().to_string()
        })
        .register_fn("to_map", |r: &mut NatReport| json_to_dynamic(&r.to_json()))
        // P2PD's dict fields, so `i.nat.type` reads the same before and after this
        // object replaced the dict.
        // P2PD's fields are `()` when nothing was tested: there is no type to give.
        .register_get("type", |r: &mut NatReport| {
            if_tested(r, |r| Dynamic::from(r.nat_type().code() as rhai::INT))
        })
        .register_get("nat_info", |r: &mut NatReport| {
            if_tested(r, |r| r.nat_type().info().into())
        })
        .register_get("delta", |r: &mut NatReport| {
            if_tested(r, |r| json_to_dynamic(&r.delta().to_p2pd_json()))
        })
        .register_get("delta_info", |r: &mut NatReport| {
            if_tested(r, |r| r.delta().info().into())
        })
        .register_get("range", |r: &mut NatReport| {
            let range = r.nat.range();
            vec![
                Dynamic::from(range.start as rhai::INT),
                Dynamic::from(range.stop as rhai::INT),
            ]
        })
        .register_get("is_open", |r: &mut NatReport| {
            if_tested(r, |r| r.nat.is_open().into())
        })
        .register_get("can_predict", |r: &mut NatReport| {
            if_tested(r, |r| r.nat.can_predict().into())
        })
        .register_get("is_hard", |r: &mut NatReport| {
            if_tested(r, |r| r.nat.is_hard().into())
        })
        .register_get("is_concurrent", |r: &mut NatReport| {
            if_tested(r, |r| r.nat.is_concurrent().into())
        })
        .register_get("tested", |r: &mut NatReport| r.tested())
        .register_get("assumed", |r: &mut NatReport| {
            r.assumed
                .iter()
                .map(|a| Dynamic::from(a.name()))
                .collect::<rhai::Array>()
        })
        .register_get("mapping", |r: &mut NatReport| text_or_unit(r.mapping))
        .register_get("filtering", |r: &mut NatReport| text_or_unit(r.filtering))
        .register_get("allocation", |r: &mut NatReport| text_or_unit(r.allocation))
        .register_get("hairpin", |r: &mut NatReport| {
            r.hairpin.map_or(Dynamic::UNIT, Dynamic::from)
        })
        .register_get("external", |r: &mut NatReport| text_or_unit(r.external))
        .register_get("local", |r: &mut NatReport| r.local.to_string())
        .register_get("servers", |r: &mut NatReport| {
            r.servers
                .iter()
                .map(|s| Dynamic::from(s.to_string()))
                .collect::<rhai::Array>()
        })
        .register_get("elapsed", |r: &mut NatReport| r.elapsed.as_secs_f64());
}

/// `f(r)`, or `()` for a report that tested nothing.
fn if_tested(r: &NatReport, f: impl FnOnce(&NatReport) -> Dynamic) -> Dynamic {
    if r.tested() { f(r) } else { Dynamic::UNIT }
}

fn text_or_unit<T: std::fmt::Display>(v: Option<T>) -> Dynamic {
    v.map_or(Dynamic::UNIT, |v| Dynamic::from(v.to_string()))
}

/// Reads `load_nat`'s option map (and the family it asks for); unknown keys are an
/// error, so typos do not pass silently.
fn options(
    map: &Map,
    config: &StunConfig,
    gateway: Option<crate::net::portmap::Gateway>,
) -> Result<(NatOptions, Option<Family>), Box<EvalAltResult>> {
    let mut opts = NatOptions {
        timeout: Duration::from_secs(3).min(config.nat_timeout),
        ..NatOptions::default()
    };
    let mut family = None;
    let mut port_mapping = true;
    for (key, value) in map {
        let what = format!("load_nat option {}", crate::text::quoted(key));
        match key.as_str() {
            "timeout" => opts.timeout = seconds(value, &what)?,
            "rto" => opts.rto = seconds(value, &what)?,
            "floor" => opts.floor = seconds(value, &what)?,
            "ceiling" => opts.ceiling = seconds(value, &what)?,
            "max" => opts.lifetime_max = seconds(value, &what)?,
            "family" => family = Some(family_option(value, &what)?),
            // Port mapping (net::portmap): on unless `port_mapping: false`.
            "port_mapping" => {
                port_mapping = value
                    .as_bool()
                    .map_err(|_| error("type", format!("{what} must be true or false")))?
            }
            "delta_tests" => {
                opts.delta_tests = value
                    .as_int()
                    .ok()
                    .and_then(|n| usize::try_from(n).ok())
                    .ok_or_else(|| error("value", format!("{what} must be an integer >= 0")))?
            }
            "hairpin" | "lifetime" => {
                let on = value
                    .as_bool()
                    .map_err(|_| error("type", format!("{what} must be true or false")))?;
                if key == "hairpin" {
                    opts.hairpin = on;
                } else {
                    opts.lifetime = on;
                }
            }
            _ => {
                return Err(error(
                    "value",
                    format!(
                        "unknown {what}; known: timeout, rto, floor, ceiling, delta_tests, hairpin, lifetime, max, family, port_mapping"
                    ),
                ));
            }
        }
    }
    opts.port_mapping = gateway.filter(|_| port_mapping);
    Ok((opts, family))
}

/// `IP4` / `IP6` (P2PD's numbers) as a family.
fn family_option(value: &Dynamic, what: &str) -> Result<Family, Box<EvalAltResult>> {
    value
        .as_int()
        .ok()
        .and_then(Family::from_number)
        .ok_or_else(|| error("value", format!("{what} must be IP4 or IP6")))
}

/// The address to probe from: the interface's first route of `family`, or (without a
/// family) of IPv4 first.
fn local_ip_of(
    iface: &crate::net::interface::Interface,
    family: Option<Family>,
) -> Result<IpAddr, Box<EvalAltResult>> {
    let families: &[Family] = match &family {
        Some(f) => std::slice::from_ref(f),
        None => &Family::ALL,
    };
    for family in families {
        if let Ok(ip) = iface.nic(*family) {
            return Ok(ip);
        }
        if let Some(a) = iface.nic_ranges(*family).first() {
            return Ok(a.first());
        }
    }
    let which = family.map_or(String::new(), |f| format!("{f} "));
    Err(error(
        "nat",
        format!(
            "interface {} has no {which}address to probe from",
            iface.name
        ),
    ))
}

fn run_load_nat(
    ctx: &NativeCallContext,
    i: &mut InterfaceHandle,
    (stun, world): &(Arc<RwLock<StunConfig>>, Arc<World>),
    opts: Map,
) -> Result<NatReport, Box<EvalAltResult>> {
    let config = stun.read().unwrap_or_else(|p| p.into_inner()).clone();
    // The local world has no gateway of its own: the real one is not asked either.
    let gateway = if world.is_offline() {
        None
    } else {
        super::portmap::interface_gateway(i).ok()
    };
    let (opts, family) = options(&opts, &config, gateway)?;
    let local = i.read(|iface| local_ip_of(iface, family))?;
    let family = Family::of(&local);
    let servers: Vec<ServerEntry> = config.servers_for(family).cloned().collect();
    let dns_timeout = config.dns_timeout.min(opts.timeout);
    let label = format!(
        "load_nat(): probing with {} STUN server(s), up to {}",
        servers.len(),
        status::seconds(opts.timeout).unwrap_or_else(|| "the timeout".into())
    );
    let report = status::wait(ctx, move || label.clone(), async move {
        let named = resolve_named(servers, family, dns_timeout).await;
        Ok::<_, Box<EvalAltResult>>(load_nat_named(local, named, opts).await)
    })?;
    let mut iface = i.0.write().unwrap_or_else(|p| p.into_inner());
    // P2PD's dict only changes when something was tested.
    if report.tested() {
        iface.nat = report.nat.to_interface_json();
    }
    iface.nat_report = Some(report.clone());
    Ok(report)
}
