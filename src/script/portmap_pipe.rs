//! A server pipe's port mapping in scripts: `server.map(...)`, pipe_open's `map` option,
//! and `server.mapping` / `server.external`. The mapping belongs to the pipe
//! (`net::pipe::mapped`): `server.close()`, dropping the server or leaving the shell
//! deletes it, and a second `server.map()` returns the one the pipe has.

use super::address::tup;
use super::bridge;
use super::error::error;
use super::pipe::ScriptPipe;
use super::portmap::{gateway_arg, lifetime_arg};
use super::registry::{Help, Registrar};
use crate::net::ip_range::Family;
use crate::net::pipe::MapError;
use crate::net::portmap::{self, DEFAULT_LIFETIME, Gateway, Mapping};
use rhai::{Dynamic, EvalAltResult, Map, NativeCallContext};
use std::time::Duration;

type Res<T> = Result<T, Box<EvalAltResult>>;

const PIPE_MAP: Help = Help::method(
    "port mapping",
    &[
        "server.map()",
        "server.map(lifetime)",
        "server.map(#{lifetime: 600, gateway: \"GATEWAY_IP\"})",
        "pipe_open(proto, (), route, #{map: true})",
    ],
    "Map a server pipe's port on its route's gateway (or the one named): the pipe owns the Mapping (server.mapping, server.external); closing or dropping the pipe deletes it, and a second map() returns it.",
    r#"let s = pipe_open(UDP, (), "127.0.0.1"); try { s.map() } catch (e) { e.message }"#,
);

/// What a pipe's mapping asks for: `server.map`'s argument, pipe_open's `map` option.
#[derive(Debug, Clone, Copy)]
pub struct MapRequest {
    lifetime: Duration,
    gateway: Option<Gateway>,
}

impl MapRequest {
    fn new(lifetime: Duration) -> MapRequest {
        MapRequest {
            lifetime,
            gateway: None,
        }
    }

    /// `#{lifetime, gateway}`, either left out.
    fn from_map(map: &Map, what: &str) -> Res<MapRequest> {
        let mut request = MapRequest::new(DEFAULT_LIFETIME);
        for (key, value) in map {
            match key.as_str() {
                "lifetime" => request.lifetime = lifetime_arg(Some(value))?,
                "gateway" => {
                    let text = value.clone().into_immutable_string().map_err(|_| {
                        error(
                            "type",
                            format!("{what} gateway must be an IP address string"),
                        )
                    })?;
                    request.gateway = Some(gateway_arg(&text)?);
                }
                _ => {
                    return Err(error(
                        "value",
                        format!("unknown {what} option '{key}'; known: lifetime, gateway"),
                    ));
                }
            }
        }
        Ok(request)
    }

    /// pipe_open's `map` option: `true` (the defaults), a lifetime in seconds, or
    /// `#{lifetime, gateway}`; `false` or `()` maps nothing.
    pub fn option(value: &Dynamic) -> Res<Option<MapRequest>> {
        if value.is_unit() || value.as_bool() == Ok(false) {
            return Ok(None);
        }
        if value.as_bool() == Ok(true) {
            return Ok(Some(MapRequest::new(DEFAULT_LIFETIME)));
        }
        if let Some(map) = value.read_lock::<Map>() {
            return MapRequest::from_map(&map, "pipe_open's map").map(Some);
        }
        if value.is_int() || value.is_float() {
            return lifetime_arg(Some(value)).map(|l| Some(MapRequest::new(l)));
        }
        Err(error(
            "type",
            format!(
                "pipe_open's map option must be true, a lifetime in seconds or #{{lifetime, gateway}}, got {}",
                super::registry::type_name(value)
            ),
        ))
    }
}

pub fn register(reg: &mut Registrar) {
    reg.engine()
        .register_get("mapping", |s: &mut ScriptPipe| {
            s.pipe.mapping().map_or(Dynamic::UNIT, Dynamic::from)
        })
        .register_get("external", |s: &mut ScriptPipe| {
            s.pipe
                .external()
                .map_or(Dynamic::UNIT, |a| Dynamic::from(tup(a)))
        });
    reg.func(
        "map",
        &PIPE_MAP,
        |ctx: NativeCallContext, s: &mut ScriptPipe| {
            map_server(&ctx, s, MapRequest::new(DEFAULT_LIFETIME))
        },
    )
    .func(
        "map",
        &PIPE_MAP,
        |ctx: NativeCallContext, s: &mut ScriptPipe, arg: Dynamic| {
            let request = match arg.read_lock::<Map>() {
                Some(map) => MapRequest::from_map(&map, "server.map")?,
                None => MapRequest::new(lifetime_arg(Some(&arg))?),
            };
            map_server(&ctx, s, request)
        },
    );
}

/// Maps `s` as `request` says; the pipe keeps the mapping.
pub fn map_server(ctx: &NativeCallContext, s: &ScriptPipe, request: MapRequest) -> Res<Mapping> {
    if s.pipe.dest().is_some() {
        return Err(error(
            "not_a_server",
            format!(
                "pipe {} is a client: only a server pipe (pipe_open(proto, (), route)) can be mapped",
                s.pipe
            ),
        ));
    }
    let gateway = match request.gateway {
        Some(g) => g,
        None => route_gateway(s)?,
    };
    let pipe = s.pipe.clone();
    bridge::wait(ctx, async move {
        pipe.map(gateway, request.lifetime)
            .await
            .map_err(|e: MapError| error(e.kind(), e))
    })
}

/// The default gateway of the pipe's route's interface, else of the default interface.
fn route_gateway(s: &ScriptPipe) -> Res<Gateway> {
    let local = s.pipe.local_addr();
    let family = Family::of(&local.ip());
    s.route()
        .and_then(|r| r.interface())
        .and_then(|i| portmap::default_gateway(&i.name, family, i.index))
        .or_else(|| {
            crate::net::interface::NetIfaces::load().ok().and_then(|net| {
                let (_, name) = net.gateways().default.get(&family)?.clone();
                portmap::default_gateway(&name, family, None)
            })
        })
        .filter(|_| !local.ip().is_loopback())
        .ok_or_else(|| {
            error(
                "no_route",
                format!(
                    "no gateway to map {local} on: the pipe is not on a route with a default gateway (name one: server.map(#{{gateway: \"IP\"}}))"
                ),
            )
        })
}
