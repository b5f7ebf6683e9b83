//! Rhai bindings for port mapping: `i.load_portmap()` and `portmap_probe(gateway)` (what
//! the gateway offers, creating nothing), `i.map_port(...)` and `map_port(gateway, ...)`
//! (a live mapping), and the `Mapping` object they and `server.map()` (`portmap_pipe`)
//! return.
//!
//! A mapping lives as long as a script holds it: `m.close()`, dropping the last copy,
//! or the end of the program deletes it on the gateway (`main.rs` calls
//! `portmap::close_all` before exiting).

use super::args::seconds;
use super::bridge;
use super::engine::BindContext;
use super::error::error;
use super::interface::InterfaceHandle;
use super::pipe::args::proto;
use super::registry::{Help, Registrar};
use crate::net::ip_range::Family;
use crate::net::portmap::{
    self, DEFAULT_LIFETIME, Gateway, MapSpec, Mapping, PortmapReport, ProbeOptions, Protocol,
};
use rhai::{Dynamic, EvalAltResult, INT, Map, NativeCallContext};
use std::net::IpAddr;
use std::time::Duration;

type Res<T> = Result<T, Box<EvalAltResult>>;

const LOAD_PORTMAP: Help = Help::method(
    "port mapping",
    &[
        "i.load_portmap()",
        "i.load_portmap(#{timeout: 1, upnp: true, pmp: true, pcp: true})",
    ],
    "Ask the interface's default gateway which port mapping protocols it offers (UPnP IGD, NAT-PMP, PCP) without mapping anything: #{upnp, pmp, pcp, gateway, external_ip, rtt, details}.",
    r#"try { Interface("lo").load_portmap() } catch (e) { e.message }"#,
);
const PORTMAP_PROBE: Help = Help::function(
    "port mapping",
    &[
        "portmap_probe(\"GATEWAY_IP\")",
        "portmap_probe(\"GATEWAY_IP\", #{timeout: 1})",
    ],
    "The same probe against a gateway named by address; () in a field means not tested.",
    r#"portmap_probe("127.0.0.1", #{timeout: 0.2}).summary"#,
);
const MAP_PORT: Help = Help::method(
    "port mapping",
    &[
        "i.map_port(proto, internal_port)",
        "i.map_port(proto, internal_port, external_port, lifetime)",
        "map_port(\"GATEWAY_IP\", proto, internal_port[, external_port, lifetime])",
    ],
    "Map a port on the gateway (PCP, then NAT-PMP, then UPnP): a Mapping, renewed at half its lifetime, deleted by .close(), when dropped, or when the program ends.",
    r#"try { map_port("127.0.0.1", UDP, 4000, 0, 60) } catch (e) { e.message }"#,
);
const RENEW: Help = Help::method(
    "port mapping",
    &["m.renew()"],
    "Renew a mapping now (it is also renewed at half its lifetime).",
    r#"try { map_port("127.0.0.1", TCP, 4000).renew() } catch (e) { e.message }"#,
);
const CLOSE: Help = Help::method(
    "port mapping",
    &["m.close()"],
    "Delete a mapping on the gateway (idempotent).",
    r#"try { map_port("127.0.0.1", TCP, 4000).close() } catch (e) { e.message }"#,
);

pub fn register(reg: &mut Registrar, _ctx: &BindContext) {
    register_mapping(reg);
    reg.func(
        "load_portmap",
        &LOAD_PORTMAP,
        |ctx: NativeCallContext, i: &mut InterfaceHandle| load_portmap(&ctx, i, &Map::new()),
    )
    .func(
        "load_portmap",
        &LOAD_PORTMAP,
        |ctx: NativeCallContext, i: &mut InterfaceHandle, opts: Map| load_portmap(&ctx, i, &opts),
    )
    .func(
        "portmap_probe",
        &PORTMAP_PROBE,
        |ctx: NativeCallContext, gw: &str| run_probe(&ctx, gateway_arg(gw)?, &Map::new()),
    )
    .func(
        "portmap_probe",
        &PORTMAP_PROBE,
        |ctx: NativeCallContext, gw: &str, opts: Map| run_probe(&ctx, gateway_arg(gw)?, &opts),
    );
    reg.func(
        "map_port",
        &MAP_PORT,
        |ctx: NativeCallContext, i: &mut InterfaceHandle, p: Dynamic, port: INT| {
            map(&ctx, interface_gateway(i)?, &p, port, 0, None)
        },
    )
    .func(
        "map_port",
        &MAP_PORT,
        |ctx: NativeCallContext, i: &mut InterfaceHandle, p: Dynamic, port: INT, ext: INT| {
            map(&ctx, interface_gateway(i)?, &p, port, ext, None)
        },
    )
    .func(
        "map_port",
        &MAP_PORT,
        |ctx: NativeCallContext,
         i: &mut InterfaceHandle,
         p: Dynamic,
         port: INT,
         ext: INT,
         life: Dynamic| { map(&ctx, interface_gateway(i)?, &p, port, ext, Some(&life)) },
    )
    .func(
        "map_port",
        &MAP_PORT,
        |ctx: NativeCallContext, gw: &str, p: Dynamic, port: INT| {
            map(&ctx, gateway_arg(gw)?, &p, port, 0, None)
        },
    )
    .func(
        "map_port",
        &MAP_PORT,
        |ctx: NativeCallContext, gw: &str, p: Dynamic, port: INT, ext: INT| {
            map(&ctx, gateway_arg(gw)?, &p, port, ext, None)
        },
    )
    .func(
        "map_port",
        &MAP_PORT,
        |ctx: NativeCallContext, gw: &str, p: Dynamic, port: INT, ext: INT, life: Dynamic| {
            map(&ctx, gateway_arg(gw)?, &p, port, ext, Some(&life))
        },
    );
    super::portmap_pipe::register(reg);
    reg.func(
        "renew",
        &RENEW,
        |ctx: NativeCallContext, m: &mut Mapping| -> Res<()> {
            let m = m.clone();
            bridge::wait(&ctx, async move { m.renew().await.map_err(mapping_error) })
        },
    )
    .func(
        "close",
        &CLOSE,
        |ctx: NativeCallContext, m: &mut Mapping| -> Res<()> {
            let m = m.clone();
            bridge::wait(&ctx, async move { m.close().await.map_err(mapping_error) })
        },
    );
}

fn register_mapping(reg: &mut Registrar) {
    reg.engine()
        .register_type_with_name::<Mapping>("Mapping")
        .register_fn("to_string", |m: &mut Mapping| mapping_text(m))
        .register_fn("to_debug", |m: &mut Mapping| mapping_text(m))
        .register_get("external", |m: &mut Mapping| match m.external() {
            (Some(ip), port) => Dynamic::from(std::net::SocketAddr::new(ip, port).to_string()),
            (None, _) => Dynamic::UNIT,
        })
        .register_get("external_port", |m: &mut Mapping| m.external().1 as INT)
        .register_get("internal", |m: &mut Mapping| m.internal().to_string())
        .register_get("protocol", |m: &mut Mapping| {
            m.protocol().name().to_string()
        })
        .register_get("proto", |m: &mut Mapping| {
            super::pipe::args::proto_number(m.proto())
        })
        .register_get("gateway", |m: &mut Mapping| m.gateway().to_string())
        .register_get("lifetime", |m: &mut Mapping| m.lifetime().as_secs_f64())
        .register_get("renewals", |m: &mut Mapping| m.renewals() as INT)
        .register_get("is_open", |m: &mut Mapping| m.is_open())
        .register_get("last_error", |m: &mut Mapping| {
            m.last_error().map_or(Dynamic::UNIT, Dynamic::from)
        });
}

fn mapping_text(m: &Mapping) -> String {
    let (ip, port) = m.external();
    let ext = ip.map_or_else(
        || format!("?:{port}"),
        |ip| std::net::SocketAddr::new(ip, port).to_string(),
    );
    let state = if m.is_open() {
        let l = m.lifetime();
        if l.is_zero() {
            "permanent".to_string()
        } else {
            format!("{} s", l.as_secs())
        }
    } else {
        "closed".to_string()
    };
    format!(
        "<Mapping {} {} {} -> {ext} ({state})",
        m.protocol(),
        m.proto(),
        m.internal()
    )
}

fn mapping_error(e: portmap::Error) -> Box<EvalAltResult> {
    error(e.kind(), e)
}

pub(super) fn gateway_arg(text: &str) -> Res<Gateway> {
    text.trim()
        .parse::<IpAddr>()
        .map(Gateway::new)
        .map_err(|_| {
            error(
                "value",
                format!(
                    "bad gateway {}: expected an IP address, e.g. \"10.77.0.1\"",
                    crate::text::quoted(text)
                ),
            )
        })
}

/// The gateway of the interface's default route, IPv4 first.
pub fn interface_gateway(i: &InterfaceHandle) -> Res<Gateway> {
    i.read(|iface| {
        Family::ALL
            .iter()
            .find_map(|f| {
                portmap::default_gateway(&iface.name, *f, iface.index)
                    .or_else(|| iface.gateways[usize::from(*f == Family::V6)].map(Gateway::new))
            })
            .ok_or_else(|| {
                error(
                    "no_route",
                    format!(
                        "interface {} has no default gateway to ask for port mappings",
                        iface.name
                    ),
                )
            })
    })
}

fn probe_options(map: &Map) -> Res<ProbeOptions> {
    let mut opts = ProbeOptions::default();
    for (key, value) in map {
        let what = format!("port mapping option '{key}'");
        let flag = || {
            value
                .as_bool()
                .map_err(|_| error("type", format!("{what} must be true or false")))
        };
        match key.as_str() {
            "timeout" => {
                opts.timeout = seconds(value, &what)?;
                opts.grace = opts.grace.min(opts.timeout);
            }
            "upnp" => opts.upnp = flag()?,
            "pmp" => opts.pmp = flag()?,
            "pcp" => opts.pcp = flag()?,
            _ => {
                return Err(error(
                    "value",
                    format!("unknown {what}; known: timeout, upnp, pmp, pcp"),
                ));
            }
        }
    }
    Ok(opts)
}

/// The probe's answer as the map scripts read.
pub fn report_map(r: &PortmapReport) -> Map {
    let mut m = Map::new();
    for p in [Protocol::Upnp, Protocol::Pmp, Protocol::Pcp] {
        m.insert(
            p.key().into(),
            r.available(p).map_or(Dynamic::UNIT, Dynamic::from),
        );
    }
    m.insert("gateway".into(), r.gateway.to_string().into());
    m.insert("client".into(), r.client.to_string().into());
    m.insert(
        "external_ip".into(),
        r.external_ip
            .map_or(Dynamic::UNIT, |ip| ip.to_string().into()),
    );
    m.insert(
        "rtt".into(),
        r.rtt.map_or(Dynamic::UNIT, |d| d.as_secs_f64().into()),
    );
    m.insert("elapsed".into(), r.elapsed.as_secs_f64().into());
    m.insert(
        "details".into(),
        r.details()
            .into_iter()
            .map(Dynamic::from)
            .collect::<rhai::Array>()
            .into(),
    );
    m.insert("summary".into(), r.summary().into());
    m
}

fn run_probe(ctx: &NativeCallContext, gw: Gateway, opts: &Map) -> Res<Map> {
    let opts = probe_options(opts)?;
    let report = bridge::wait(ctx, async move {
        Ok::<_, Box<EvalAltResult>>(portmap::probe(gw, opts).await)
    })?;
    Ok(report_map(&report))
}

fn load_portmap(ctx: &NativeCallContext, i: &InterfaceHandle, opts: &Map) -> Res<Map> {
    run_probe(ctx, interface_gateway(i)?, opts)
}

fn port_arg(value: INT, what: &str, zero_ok: bool) -> Res<u16> {
    u16::try_from(value)
        .ok()
        .filter(|p| zero_ok || *p != 0)
        .ok_or_else(|| {
            error(
                "value",
                format!("{what} must be a port number (1-65535), got {value}"),
            )
        })
}

/// A mapping's lifetime in seconds (the default when left out); renewing at half of
/// less than 2 s would be most of the traffic.
pub(super) fn lifetime_arg(life: Option<&Dynamic>) -> Res<Duration> {
    let lifetime = match life {
        Some(l) => seconds(l, "lifetime")?,
        None => DEFAULT_LIFETIME,
    };
    if lifetime < Duration::from_secs(2) {
        return Err(error("value", "lifetime must be at least 2 seconds"));
    }
    Ok(lifetime)
}

fn map(
    ctx: &NativeCallContext,
    gw: Gateway,
    p: &Dynamic,
    port: INT,
    ext: INT,
    life: Option<&Dynamic>,
) -> Res<Mapping> {
    let spec = MapSpec {
        proto: proto(p)?,
        internal_port: port_arg(port, "internal_port", false)?,
        external_port: port_arg(ext, "external_port", true)?,
        lifetime: lifetime_arg(life)?,
    };
    bridge::wait(ctx, async move {
        Mapping::create(gw, spec, ProbeOptions::default())
            .await
            .map(|(m, _)| m)
            .map_err(mapping_error)
    })
}
