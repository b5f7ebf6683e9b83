//! Rhai bindings for interfaces: the tutorial's "Network interface cards" section.
//!
//! `init_p2pd()` returns the netifaces-like snapshot; `Interface()` picks an interface (by
//! name, by family default, or the default); `start()` looks up its external addresses over
//! the session's STUN servers (`BindContext::stun`) and builds its routes. `Interface` is
//! also a constant whose methods are `list()` and `from_dict(...)`, so both
//! `Interface("eth0")` and `Interface.list()` read as in Python: Rhai keeps functions and
//! variables in separate namespaces. The logic lives in `net::interface`; this file only
//! converts arguments, results and errors. (It runs past 400 lines only because every name
//! carries its help text; splitting the one area over two files would hide half of it.)

use super::args::seconds;
use super::engine::BindContext;
use super::error::{error, type_name};
use super::registry::{Help, Registrar};
use super::status;
use super::world::{LOOPBACK_INTERFACE, World};
use crate::net::config::StunConfig;
use crate::net::interface::{self, Interface, NetIfaces};
use crate::net::ip_range::Family;
use crate::net::progress::Tally;
use crate::net::route::Route;
use crate::text::quoted;
use rhai::{Array, Dynamic, EvalAltResult, INT, NativeCallContext};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// The script's handle on an interface. Shared, because `start()` and `load_nat()`
/// update the interface in place and every copy a script holds must see that.
#[derive(Clone)]
pub struct InterfaceHandle(pub Arc<RwLock<Interface>>);

impl InterfaceHandle {
    pub fn new(iface: Interface) -> Self {
        Self(Arc::new(RwLock::new(iface)))
    }

    /// Reads the interface in place: what property getters use, so reading `i.name`
    /// does not copy every address, route and NAT report.
    pub fn read<R>(&self, f: impl FnOnce(&Interface) -> R) -> R {
        f(&self.0.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// A snapshot of the interface, for work that outlives the lock (an await).
    pub fn get(&self) -> Interface {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set(&self, iface: Interface) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = iface;
    }
}

/// `init_p2pd()`'s result: the machine's interfaces at one moment.
#[derive(Clone)]
pub struct NetIfacesHandle(pub Arc<NetIfaces>);

/// The value of the constant `Interface`, which carries `list()` and `from_dict(...)`.
#[derive(Clone, Copy)]
pub struct InterfaceClass;

/// P2PD's numbers (inventory §0): `AF_INET`, Linux `AF_INET6`, `DUEL_STACK`, and the
/// socket types.
pub const IP4: INT = 2;
pub const IP6: INT = 10;
pub const AF_ANY: INT = 1337;
pub const TCP: INT = 1;
pub const UDP: INT = 2;

/// A family argument: `IP4` or `IP6` (other OSes' `AF_INET6` numbers are accepted too).
pub fn family_arg(af: INT) -> Result<Family, Box<EvalAltResult>> {
    Family::from_number(af).ok_or_else(|| {
        error(
            "value",
            format!("bad address family {af}: use IP4 ({IP4}) or IP6 ({IP6})"),
        )
    })
}

/// Like [`family_arg`], with `AF_ANY` meaning "whichever the interface supports first".
pub fn family_or_any(af: INT) -> Result<Option<Family>, Box<EvalAltResult>> {
    if af == AF_ANY {
        return Ok(None);
    }
    family_arg(af).map(Some).map_err(|_| {
        error(
            "value",
            format!("bad address family {af}: use IP4 ({IP4}), IP6 ({IP6}) or AF_ANY ({AF_ANY})"),
        )
    })
}

fn iface_err(e: impl std::fmt::Display) -> Box<EvalAltResult> {
    error("interface", e)
}

/// JSON as the Rhai map/array/value it reads as (`()` for what has no Rhai form).
pub(super) fn json_to_dynamic(v: &serde_json::Value) -> Dynamic {
    rhai::serde::to_dynamic(v).unwrap_or(Dynamic::UNIT)
}

/// Accepts a map (the dict), JSON text, the text `repr(i)` printed, or an interface.
fn interface_from(v: &Dynamic) -> Result<Interface, Box<EvalAltResult>> {
    if let Some(h) = v.read_lock::<InterfaceHandle>() {
        return Ok(h.get());
    }
    if v.is_string() {
        let text = v.clone().into_string().unwrap_or_default();
        let t = text.trim();
        let json = t
            .strip_prefix("Interface.from_dict(")
            .and_then(|r| r.strip_suffix(')'))
            .unwrap_or(t);
        return Interface::from_json(json).map_err(iface_err);
    }
    if v.is_map() {
        let value: serde_json::Value = rhai::serde::from_dynamic(v)
            .map_err(|e| iface_err(format!("bad interface dict: {e}")))?;
        return Interface::from_dict(&value).map_err(iface_err);
    }
    Err(error(
        "type",
        format!(
            "Interface.from_dict needs a map, JSON text or an Interface, got {}",
            type_name(v)
        ),
    ))
}

/// The interface for `Interface(...)`: a name or a family number; neither is the default.
/// Offline, a machine without a default interface gives its loopback interface.
fn pick(
    world: &World,
    name: Option<&str>,
    af: Option<INT>,
) -> Result<Interface, Box<EvalAltResult>> {
    if let Some(name) = name.filter(|n| n.trim().is_empty()) {
        let names = Interface::list().unwrap_or_default().join(", ");
        return Err(error(
            "value",
            format!(
                "interface name {} is empty: give one of {names}, or nothing (Interface()) for the default",
                quoted(name)
            ),
        ));
    }
    let found = match af {
        None => Interface::by_name(name),
        Some(af) => match family_or_any(af)? {
            Some(f) => Interface::default_for(f),
            None => Interface::by_name(None),
        },
    };
    match found {
        Err(e @ interface::Error::NoDefault(_)) if world.is_offline() => {
            Interface::by_name(Some(LOOPBACK_INTERFACE)).map_err(|_| iface_err(e))
        }
        other => other.map_err(iface_err),
    }
}

/// Starts `h` in place on the runtime; returns the same handle so calls chain.
fn start(
    ctx: &NativeCallContext,
    h: &InterfaceHandle,
    stun: &RwLock<StunConfig>,
    timeout: Option<Duration>,
) -> Result<InterfaceHandle, Box<EvalAltResult>> {
    let config = stun.read().unwrap_or_else(|p| p.into_inner()).clone();
    let timeout = timeout.unwrap_or(config.start_timeout);
    let mut iface = h.get();
    let tally = Tally::default();
    let label = status::stun_answers("start()", tally.clone());
    let started = status::wait(ctx, label, async move {
        let r = iface.start_stun_tallied(&config, timeout, &tally).await;
        Ok::<_, Box<EvalAltResult>>((iface, r))
    })?;
    let (iface, result) = started;
    // A failed start (no address to route from) leaves the interface as it was.
    result.map_err(iface_err)?;
    h.set(iface);
    Ok(h.clone())
}

fn load(
    ctx: &NativeCallContext,
    stun: &RwLock<StunConfig>,
    net: Option<Arc<NetIfaces>>,
    names: Option<Vec<String>>,
) -> Result<Array, Box<EvalAltResult>> {
    let config = stun.read().unwrap_or_else(|p| p.into_inner()).clone();
    let net = match net {
        Some(n) => n,
        None => Arc::new(NetIfaces::load().map_err(iface_err)?),
    };
    let tally = Tally::default();
    let label = status::stun_answers("load_interfaces()", tally.clone());
    let started = status::wait(ctx, label, async move {
        let timeout = config.start_timeout;
        let list = match names {
            Some(names) => {
                interface::external::start_all(&net, &names, &config, timeout, &tally).await
            }
            None => interface::load_interfaces(&net, &config, timeout, &tally).await,
        };
        Ok::<_, Box<EvalAltResult>>(list)
    })?;
    Ok(started
        .into_iter()
        .map(|i| Dynamic::from(InterfaceHandle::new(i)))
        .collect())
}

fn strings(items: impl IntoIterator<Item = String>) -> Array {
    items.into_iter().map(Dynamic::from).collect()
}

fn families(list: &[Family]) -> Array {
    list.iter()
        .map(|f| Dynamic::from(INT::from(f.number())))
        .collect()
}

fn route_of(h: &InterfaceHandle, af: Option<Family>) -> Result<Route, Box<EvalAltResult>> {
    h.read(|iface| {
        if !iface.resolved {
            return Err(error(
                "interface",
                format!(
                    "interface {} is not started: use `await i.start()` first",
                    quoted(&iface.name)
                ),
            ));
        }
        iface.route(af).map_err(|e| error("route", e))
    })
}

fn routes_of(h: &InterfaceHandle, af: Option<Family>) -> Array {
    let fams: Vec<Family> = match af {
        Some(f) => vec![f],
        None => Family::ALL.to_vec(),
    };
    h.read(|iface| {
        fams.iter()
            .flat_map(|f| iface.rp(*f).routes().iter().cloned())
            .map(Dynamic::from)
            .collect()
    })
}

const INIT: Help = Help::function(
    "interfaces",
    &["init_p2pd()"],
    "Snapshot of the machine's interfaces (netifaces-like: .interfaces(), .ifaddresses(name), .gateways()).",
    "let netifaces = await init_p2pd(); netifaces.interfaces()",
);
const IFACES: Help = Help::method(
    "interfaces",
    &["netifaces.interfaces()"],
    "Every interface name, loopback and virtual ones included.",
    "init_p2pd().interfaces()",
);
const IFADDRS: Help = Help::method(
    "interfaces",
    &["netifaces.ifaddresses(name)"],
    "Addresses of one interface keyed by family (\"2\", \"10\", \"17\" for the MAC), as netifaces gives them.",
    r#"init_p2pd().ifaddresses("lo")"#,
);
const GATEWAYS: Help = Help::method(
    "interfaces",
    &["netifaces.gateways()"],
    "Gateways per family and the default ones, as netifaces gives them.",
    "init_p2pd().gateways()",
);
const NEW: Help = Help::function(
    "interfaces",
    &[
        "Interface()",
        "Interface(\"eth0\")",
        "Interface(IP4)",
        "Interface(IP6)",
        "Interface(AF_ANY)",
    ],
    "An interface by name or the default one (for a family); call .start() to learn its routes.",
    r#"Interface("lo").name"#,
);
const LIST: Help = Help::method(
    "interfaces",
    &["Interface.list()"],
    "Every interface name of the machine.",
    "Interface.list()",
);
const FROM_DICT: Help = Help::method(
    "interfaces",
    &[
        "Interface.from_dict(map)",
        "Interface.from_dict(json_text)",
        "Interface.from_dict(repr(i))",
    ],
    "Rebuild a started interface from its dict, its JSON or the text repr(i) gave.",
    r#"Interface.from_dict(#{name: "eth9", rp: #{"2": [], "10": []}}).name"#,
);
const START: Help = Help::method(
    "interfaces",
    &["i.start()", "i.start(timeout)"],
    "Look up external addresses over the session's STUN servers and build routes; returns i.",
    r#"stun_servers(["127.0.0.1:9"]); let i = await Interface("lo").start(0.3); i.warnings.len() > 0"#,
);
const IFACE_START: Help = Help::function(
    "interfaces",
    &[
        "interface_start()",
        "interface_start(\"eth0\")",
        "interface_start(IP4)",
    ],
    "Interface(...).start() in one call.",
    r#"stun_servers(["127.0.0.1:9"]); let i = interface_start("lo"); i.supported()"#,
);
const LOAD: Help = Help::function(
    "interfaces",
    &[
        "load_interfaces()",
        "load_interfaces(netifaces)",
        "load_interfaces([\"eth0\", ...])",
    ],
    "Start every usable interface (Ethernet/Wi-Fi by name, else all) concurrently; returns the started ones.",
    r#"let s = stun_server("127.0.0.1:0"); stun_servers(s.addresses); let ifs = await load_interfaces(["lo"]); s.close(); ifs.len()"#,
);
const SUPPORTED: Help = Help::method(
    "interfaces",
    &["i.supported()"],
    "Families with at least one route, IPv4 first (e.g. [2, 10]).",
    r#"stun_servers(["127.0.0.1:9"]); Interface("lo").start(0.2).supported()[0] == IP4"#,
);
const ROUTE: Help = Help::method(
    "interfaces",
    &["i.route()", "i.route(af)", "route(i, af)"],
    "A copy of the first route of a family (default: supported()[0]); bind it before use.",
    r#"stun_servers(["127.0.0.1:9"]); let i = Interface("lo").start(0.2); i.route(IP4).nic()"#,
);
const ROUTES: Help = Help::method(
    "interfaces",
    &["i.routes()", "i.routes(af)"],
    "Every route of the interface (of one family), in P2PD's order.",
    r#"stun_servers(["127.0.0.1:9"]); let i = Interface("lo").start(0.2); i.routes().len()"#,
);
const IS_DEFAULT: Help = Help::method(
    "interfaces",
    &["i.is_default", "i.is_default(af)"],
    "Whether the interface carries the default route (of any family, or of af).",
    r#"Interface("lo").is_default(IP4)"#,
);
pub const NIC: Help = Help::method(
    "interfaces",
    &["i.nic(af)", "route.nic()"],
    "The first NIC address of the first route of af (of the route).",
    r#"stun_servers(["127.0.0.1:9"]); Interface("lo").start(0.2).nic(IP4)"#,
);
pub const TO_JSON: Help = Help::method(
    "interfaces",
    &["i.to_json()", "route.to_json()"],
    "P2PD's dict as JSON text (read back with Interface.from_dict).",
    r#"Interface.from_dict(Interface("lo").to_json()).name"#,
);
pub const TO_MAP: Help = Help::method(
    "interfaces",
    &["i.to_map()", "route.to_map()"],
    "P2PD's dict as a Rhai map (read back with Interface.from_dict).",
    r#"Interface("lo").to_map().name"#,
);

/// Registers constants, `init_p2pd`, `Interface` and the interface methods.
pub fn register(reg: &mut Registrar, ctx: &BindContext) {
    reg.constant("IP4", IP4, "AF_INET (2): IPv4")
        .constant("IP6", IP6, "AF_INET6 (10 on Linux): IPv6")
        .constant("AF_ANY", AF_ANY, "either family (P2PD's DUEL_STACK, 1337)")
        .constant("TCP", TCP, "SOCK_STREAM (1)")
        .constant("UDP", UDP, "SOCK_DGRAM (2)")
        .constant(
            "Interface",
            Dynamic::from(InterfaceClass),
            "the Interface class: Interface.list(), Interface.from_dict(...)",
        );
    reg.register_type::<InterfaceHandle>("Interface")
        .register_fn("to_string", |h: &mut InterfaceHandle| {
            h.read(|i| i.to_string())
        })
        .register_fn("to_debug", |h: &mut InterfaceHandle| {
            h.read(Interface::repr)
        })
        .register_get("name", |h: &mut InterfaceHandle| h.read(|i| i.name.clone()))
        .register_get("id", |h: &mut InterfaceHandle| h.read(|i| i.id.clone()))
        .register_get("mac", |h: &mut InterfaceHandle| h.read(|i| i.mac.clone()))
        .register_get("resolved", |h: &mut InterfaceHandle| h.read(|i| i.resolved))
        // After `load_nat` the full report (which prints as a table and still has
        // P2PD's `type`, `delta`... fields); before it, the dict as read or `()`.
        .register_get("nat", |h: &mut InterfaceHandle| {
            h.read(|iface| match &iface.nat_report {
                Some(report) => Dynamic::from(report.clone()),
                None => json_to_dynamic(&iface.nat),
            })
        })
        .register_get("warnings", |h: &mut InterfaceHandle| {
            h.read(|i| strings(i.warnings.clone()))
        })
        .register_get("warning_details", |h: &mut InterfaceHandle| {
            h.read(|i| strings(i.warning_details.clone()))
        })
        .register_get("is_default", |h: &mut InterfaceHandle| {
            h.read(|i| Family::ALL.iter().any(|f| i.is_default(*f)))
        })
        .register_get("netiface_index", |h: &mut InterfaceHandle| {
            h.read(|i| i.netiface_index)
                .map_or(Dynamic::UNIT, |n| Dynamic::from(n as INT))
        });
    reg.register_type::<NetIfacesHandle>("netifaces")
        .register_fn("to_string", netifaces_text)
        .register_fn("to_debug", netifaces_text);
    reg.register_type::<InterfaceClass>("InterfaceClass")
        .register_fn("to_string", |_: &mut InterfaceClass| "<class 'Interface'>")
        .register_fn("to_debug", |_: &mut InterfaceClass| "<class 'Interface'>");

    reg.func("init_p2pd", &INIT, || -> Result<_, Box<EvalAltResult>> {
        Ok(NetIfacesHandle(Arc::new(
            NetIfaces::load().map_err(iface_err)?,
        )))
    })
    .func("interfaces", &IFACES, |n: &mut NetIfacesHandle| {
        strings(n.0.interfaces())
    })
    .func(
        "ifaddresses",
        &IFADDRS,
        |n: &mut NetIfacesHandle, name: &str| -> Result<Dynamic, Box<EvalAltResult>> {
            let all = n.0.to_value();
            match all["ifaddresses"].get(name) {
                Some(v) => Ok(json_to_dynamic(v)),
                None => Err(iface_err(format!(
                    "interface {} not found; existing interfaces: {}",
                    quoted(name),
                    n.0.interfaces().join(", ")
                ))),
            }
        },
    )
    .func("gateways", &GATEWAYS, |n: &mut NetIfacesHandle| {
        json_to_dynamic(&n.0.to_value()["gateways"])
    });

    let w = ctx.world.clone();
    reg.func("Interface", &NEW, move || {
        pick(&w, None, None).map(InterfaceHandle::new)
    });
    let w = ctx.world.clone();
    reg.func("Interface", &NEW, move |name: &str| {
        pick(&w, Some(name), None).map(InterfaceHandle::new)
    });
    let w = ctx.world.clone();
    reg.func("Interface", &NEW, move |af: INT| {
        pick(&w, None, Some(af)).map(InterfaceHandle::new)
    })
    .func(
        "list",
        &LIST,
        |_: &mut InterfaceClass| -> Result<Array, Box<EvalAltResult>> {
            Ok(strings(Interface::list().map_err(iface_err)?))
        },
    )
    .func(
        "from_dict",
        &FROM_DICT,
        |_: &mut InterfaceClass, v: Dynamic| interface_from(&v).map(InterfaceHandle::new),
    );

    let stun = ctx.stun.clone();
    reg.func(
        "start",
        &START,
        move |ctx: NativeCallContext, h: &mut InterfaceHandle| start(&ctx, h, &stun, None),
    );
    let stun = ctx.stun.clone();
    reg.func(
        "start",
        &START,
        move |ctx: NativeCallContext, h: &mut InterfaceHandle, t: Dynamic| {
            start(&ctx, h, &stun, Some(seconds(&t, "start timeout")?))
        },
    );
    let (stun, w) = (ctx.stun.clone(), ctx.world.clone());
    reg.func(
        "interface_start",
        &IFACE_START,
        move |ctx: NativeCallContext| {
            start(
                &ctx,
                &InterfaceHandle::new(pick(&w, None, None)?),
                &stun,
                None,
            )
        },
    );
    let (stun, w) = (ctx.stun.clone(), ctx.world.clone());
    reg.func(
        "interface_start",
        &IFACE_START,
        move |ctx: NativeCallContext, name: &str| {
            start(
                &ctx,
                &InterfaceHandle::new(pick(&w, Some(name), None)?),
                &stun,
                None,
            )
        },
    );
    let (stun, w) = (ctx.stun.clone(), ctx.world.clone());
    reg.func(
        "interface_start",
        &IFACE_START,
        move |ctx: NativeCallContext, af: INT| {
            start(
                &ctx,
                &InterfaceHandle::new(pick(&w, None, Some(af))?),
                &stun,
                None,
            )
        },
    );
    let stun = ctx.stun.clone();
    reg.func("load_interfaces", &LOAD, move |ctx: NativeCallContext| {
        load(&ctx, &stun, None, None)
    });
    let stun = ctx.stun.clone();
    reg.func(
        "load_interfaces",
        &LOAD,
        move |ctx: NativeCallContext, n: NetIfacesHandle| load(&ctx, &stun, Some(n.0), None),
    );
    let stun = ctx.stun.clone();
    reg.func(
        "load_interfaces",
        &LOAD,
        move |ctx: NativeCallContext, names: Array| {
            let names = names
                .into_iter()
                .enumerate()
                .map(|(i, n)| {
                    let kind = type_name(&n);
                    n.into_string().map_err(|_| {
                        error(
                            "type",
                            format!("load_interfaces: names must be strings, item {i} is {kind}"),
                        )
                    })
                })
                .collect::<Result<Vec<String>, _>>()?;
            load(&ctx, &stun, None, Some(names))
        },
    );

    reg.func("supported", &SUPPORTED, |h: &mut InterfaceHandle| {
        families(&h.read(Interface::supported))
    })
    .func("route", &ROUTE, |h: &mut InterfaceHandle| route_of(h, None))
    .func("route", &ROUTE, |h: &mut InterfaceHandle, af: INT| {
        route_of(h, family_or_any(af)?)
    })
    .func("routes", &ROUTES, |h: &mut InterfaceHandle| {
        routes_of(h, None)
    })
    .func("routes", &ROUTES, |h: &mut InterfaceHandle, af: INT| {
        Ok::<_, Box<EvalAltResult>>(routes_of(h, family_or_any(af)?))
    })
    .func(
        "is_default",
        &IS_DEFAULT,
        |h: &mut InterfaceHandle, af: INT| {
            let family = family_arg(af)?;
            Ok::<_, Box<EvalAltResult>>(h.read(|i| i.is_default(family)))
        },
    )
    .func("nic", &NIC, |h: &mut InterfaceHandle, af: INT| {
        let ip = route_of(h, Some(family_arg(af)?))?.nic();
        Ok::<_, Box<EvalAltResult>>(crate::net::ip_range::ip_norm(&ip))
    })
    .func("to_json", &TO_JSON, |h: &mut InterfaceHandle| {
        h.read(|i| i.to_dict().to_string())
    })
    .func("to_map", &TO_MAP, |h: &mut InterfaceHandle| {
        h.read(|i| json_to_dynamic(&i.to_dict()))
    });
}

fn netifaces_text(n: &mut NetIfacesHandle) -> String {
    format!("<netifaces: {}>", n.0.interfaces().join(", "))
}
