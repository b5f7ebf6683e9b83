//! `netcheck()`: the report `p2pd-repl netcheck` prints, as an object in the REPL.

use super::bridge;
use super::engine::BindContext;
use super::error::error;
use super::interface::json_to_dynamic;
use super::registry::{Help, Registrar};
use crate::net::config::StunConfig;
use crate::net::netcheck::{NetcheckReport, netcheck};
use rhai::{EvalAltResult, NativeCallContext};
use std::sync::RwLock;

const NETCHECK: Help = Help::function(
    "nat",
    &["netcheck()", "netcheck(\"INTERFACE\")"],
    "Start the default interface and report external addresses, NAT type and RFC 4787 behaviour, hairpin, port mapping and STUN RTTs (like tailscale netcheck); .to_json() for JSON.",
    r#"let s = stun_server("127.0.0.1:0", "127.0.0.2:0"); stun_servers([s.primary]); netcheck("lo")"#,
);

pub fn register(reg: &mut Registrar, ctx: &BindContext) {
    reg.engine()
        .register_type_with_name::<NetcheckReport>("NetcheckReport")
        .register_fn("to_string", |r: &mut NetcheckReport| r.to_string())
        .register_fn("to_debug", |r: &mut NetcheckReport| r.to_string())
        .register_fn("to_json", |r: &mut NetcheckReport| {
            serde_json::to_string_pretty(&r.to_json()).unwrap_or_default()
        })
        .register_fn("to_map", |r: &mut NetcheckReport| {
            json_to_dynamic(&r.to_json())
        })
        .register_get("interface", |r: &mut NetcheckReport| r.interface.clone());
    let stun = ctx.stun.clone();
    reg.func("netcheck", &NETCHECK, move |ctx: NativeCallContext| {
        run(&ctx, &stun, None)
    });
    let stun = ctx.stun.clone();
    reg.func(
        "netcheck",
        &NETCHECK,
        move |ctx: NativeCallContext, name: &str| run(&ctx, &stun, Some(name.to_string())),
    );
}

fn run(
    ctx: &NativeCallContext,
    stun: &RwLock<StunConfig>,
    name: Option<String>,
) -> Result<NetcheckReport, Box<EvalAltResult>> {
    let config = stun.read().unwrap_or_else(|p| p.into_inner()).clone();
    bridge::wait(ctx, async move {
        netcheck(&config, name.as_deref())
            .await
            .map_err(|e| error("netcheck", e))
    })
}
