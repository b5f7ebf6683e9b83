//! Rhai bindings for STUN: which servers the session uses, the built-in server, and a
//! single lookup.
//!
//! `stun_servers([...])` replaces the session's list (the strongest override, above
//! `--stun` and `P2PD_STUN`, see `net::config`); every later `start()` and NAT test reads
//! it from `BindContext::stun`. `stun_server(...)` runs the built-in RFC 5780 server on the
//! runtime, so a script can work fully offline; the handle closes it on `close()` or when
//! the last copy is dropped. `stun_lookup` is one Binding exchange, for poking at a server.

use super::bridge;
use super::engine::BindContext;
use super::error::{error, type_name};
use super::registry::{Help, Registrar};
use super::status;
use crate::net::config::{StunServer as ServerEntry, StunSource};
use crate::net::interface::external;
use crate::net::ip_range::Family;
use crate::net::route::Route;
use crate::net::stun::{DEFAULT_RTO, StunServer};
use rhai::{Array, Dynamic, EvalAltResult, Map, NativeCallContext};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, RwLock};

/// A running built-in server. Copies share it; the server stops on `close()` or when the
/// last copy goes.
#[derive(Clone)]
pub struct StunServerHandle {
    addrs: Vec<SocketAddr>,
    server: Arc<Mutex<Option<StunServer>>>,
}

impl StunServerHandle {
    fn is_closed(&self) -> bool {
        self.server
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_none()
    }

    fn text(&mut self) -> String {
        let addrs: Vec<String> = self.addrs.iter().map(ToString::to_string).collect();
        let state = if self.is_closed() { "closed" } else { "open" };
        format!("<StunServer {} ({state})>", addrs.join(", "))
    }
}

fn socket_addr(text: &str, what: &str) -> Result<SocketAddr, Box<EvalAltResult>> {
    text.trim().parse().map_err(|_| {
        error(
            "value",
            format!(
                "bad {what} {}: expected IP:PORT, e.g. 127.0.0.1:3478 or [::1]:3478",
                crate::text::quoted(text)
            ),
        )
    })
}

fn start_server(
    ctx: &NativeCallContext,
    primary: &str,
    alternate: Option<&str>,
) -> Result<StunServerHandle, Box<EvalAltResult>> {
    let p = socket_addr(primary, "primary address")?;
    let a = alternate
        .map(|a| socket_addr(a, "alternate address"))
        .transpose()?;
    let server = bridge::wait(ctx, async move {
        StunServer::start(p, a)
            .await
            .map_err(|e| error("stun", format!("cannot start the STUN server on {p}: {e}")))
    })?;
    Ok(StunServerHandle {
        addrs: server.local_addrs().to_vec(),
        server: Arc::new(Mutex::new(Some(server))),
    })
}

fn close(ctx: &NativeCallContext, h: &StunServerHandle) -> Result<(), Box<EvalAltResult>> {
    let server = h.server.lock().unwrap_or_else(|p| p.into_inner()).take();
    let Some(mut server) = server else {
        return Ok(());
    };
    bridge::wait(ctx, async move {
        server.close().await;
        Ok::<_, Box<EvalAltResult>>(())
    })
}

fn server_list(stun: &RwLock<crate::net::config::StunConfig>) -> Array {
    stun.read()
        .unwrap_or_else(|p| p.into_inner())
        .servers
        .iter()
        .map(|s| Dynamic::from(s.to_string()))
        .collect()
}

fn set_servers(
    stun: &RwLock<crate::net::config::StunConfig>,
    list: Array,
) -> Result<Array, Box<EvalAltResult>> {
    if list.is_empty() {
        return Err(error(
            "value",
            "stun_servers([]) needs at least one \"HOST:PORT\"",
        ));
    }
    let servers = list
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            let kind = type_name(&v);
            let text = v.into_string().map_err(|_| {
                error(
                    "type",
                    format!("STUN servers are \"HOST:PORT\" strings, item {i} is {kind}"),
                )
            })?;
            ServerEntry::parse(&text, StunSource::Argument("stun_servers([...])"))
                .map_err(|e| error("value", e))
        })
        .collect::<Result<Vec<_>, _>>()?;
    {
        let mut config = stun.write().unwrap_or_else(|p| p.into_inner());
        config.servers = servers;
        config.source = StunSource::Explicit;
    }
    Ok(server_list(stun))
}

fn lookup(
    ctx: &NativeCallContext,
    stun: &RwLock<crate::net::config::StunConfig>,
    server: &str,
    route: Option<Route>,
) -> Result<Map, Box<EvalAltResult>> {
    let config = stun.read().unwrap_or_else(|p| p.into_inner()).clone();
    let entry = ServerEntry::parse(server, StunSource::Argument("stun_lookup's server"))
        .map_err(|e| error("value", e))?;
    let local = match &route {
        Some(r) => r.bind_addr().unwrap_or_else(|| SocketAddr::new(r.nic(), 0)),
        None => {
            let family = entry
                .host
                .parse::<IpAddr>()
                .map_or(Family::V4, |ip| Family::of(&ip));
            SocketAddr::new(family.unspecified(), 0)
        }
    };
    let timeout = config.request_timeout;
    let label = format!("stun_lookup: asking {entry}");
    let r = status::wait(ctx, move || label.clone(), async move {
        external::query(&entry, local, timeout, config.dns_timeout, DEFAULT_RTO)
            .await
            .map_err(|e| error("stun", format!("{entry}: {}", e.reason(timeout))))
    })?;
    let mut map = Map::new();
    map.insert("mapped".into(), r.mapped.to_string().into());
    map.insert("rtt".into(), r.rtt.as_secs_f64().into());
    map.insert("server".into(), r.server.to_string().into());
    map.insert("local".into(), r.local.to_string().into());
    Ok(map)
}

const SERVERS: Help = Help::function(
    "stun",
    &["stun_servers()", "stun_servers([\"HOST:PORT\", ...])"],
    "The session's STUN servers; with a list, use those from now on (overrides --stun and P2PD_STUN).",
    r#"stun_servers(["127.0.0.1:3478", "[::1]:3478"])"#,
);
const SERVER: Help = Help::function(
    "stun",
    &[
        "stun_server(\"IP:PORT\")",
        "stun_server(\"IP:PORT\", \"ALT_IP:ALT_PORT\")",
    ],
    "Run the built-in STUN server (UDP+TCP; with an alternate, RFC 5780 on 2 IPs x 2 ports); port 0 picks one.",
    r#"let s = stun_server("127.0.0.1:0", "127.0.0.2:0"); print(s.addresses); s.close()"#,
);
const CLOSE: Help = Help::method(
    "stun",
    &["server.close()"],
    "Stop a built-in STUN server and free its ports; safe to call twice.",
    r#"let s = stun_server("127.0.0.1:0"); s.close(); s.is_closed"#,
);
const LOOKUP: Help = Help::function(
    "stun",
    &[
        "stun_lookup(\"HOST:PORT\")",
        "stun_lookup(\"HOST:PORT\", route)",
    ],
    "One Binding request (from the route's address if given): #{mapped, rtt, server, local}.",
    r#"let s = stun_server("127.0.0.1:0"); let r = await stun_lookup(s.addresses[0]); s.close(); r.mapped"#,
);

pub fn register(reg: &mut Registrar, ctx: &BindContext) {
    reg.register_type::<StunServerHandle>("StunServer")
        .register_fn("to_string", StunServerHandle::text)
        .register_fn("to_debug", StunServerHandle::text)
        .register_get("addresses", |h: &mut StunServerHandle| -> Array {
            h.addrs
                .iter()
                .map(|a| Dynamic::from(a.to_string()))
                .collect()
        })
        .register_get("primary", |h: &mut StunServerHandle| {
            h.addrs
                .first()
                .map_or(Dynamic::UNIT, |a| Dynamic::from(a.to_string()))
        })
        .register_get("is_closed", |h: &mut StunServerHandle| h.is_closed());

    let stun = ctx.stun.clone();
    reg.func("stun_servers", &SERVERS, move || server_list(&stun));
    let stun = ctx.stun.clone();
    reg.func("stun_servers", &SERVERS, move |list: Array| {
        set_servers(&stun, list)
    });
    reg.func(
        "stun_server",
        &SERVER,
        |ctx: NativeCallContext, primary: &str| start_server(&ctx, primary, None),
    )
    .func(
        "stun_server",
        &SERVER,
        |ctx: NativeCallContext, primary: &str, alt: &str| start_server(&ctx, primary, Some(alt)),
    )
    .func(
        "close",
        &CLOSE,
        |ctx: NativeCallContext, h: &mut StunServerHandle| close(&ctx, h),
    );
    super::stun_probe::register(reg, &ctx.stun);
    let stun = ctx.stun.clone();
    reg.func(
        "stun_lookup",
        &LOOKUP,
        move |ctx: NativeCallContext, server: &str| lookup(&ctx, &stun, server, None),
    );
    let stun = ctx.stun.clone();
    reg.func(
        "stun_lookup",
        &LOOKUP,
        move |ctx: NativeCallContext, server: &str, route: Route| {
            lookup(&ctx, &stun, server, Some(route))
        },
    );
}
