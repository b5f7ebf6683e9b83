//! `pipe_open` and the `Pipe` a script holds: the tutorial's
//! `pipe = await pipe_open(TCP, dest, route)` (inventory §5, baseline §4.6).
//!
//! A script pipe is a `net::pipe::Pipe` plus what only scripts need: the callback lists
//! (`callbacks.rs`), the route it was opened with, and the stamp that makes `await` mean
//! two things for a TCP server, as in P2PD:
//! - `server = await pipe_open(TCP, (), route)` gives the server: in Python the await
//!   belonged to the coroutine `pipe_open` returned, so the await that immediately wraps
//!   the call that opened the pipe returns the pipe itself;
//! - any later `await server` waits for its next client (`server.accept()` with no limit).
//!
//! "Immediately" is decided with Rhai's operation counter: `await f(...)` runs exactly one
//! operation between `f` returning and `__await` starting, while `let s = f(...); await s`
//! runs more. The stamp is one-shot, so at most the first await is read as the opening.
//!
//! Argument parsing lives in `args.rs`, the pipe methods in `ops.rs`.

pub(crate) mod args;
mod callbacks;
mod ops;
mod options;

use super::address::{self, Resolver, tup};
use super::bridge;
use super::engine::BindContext;
use super::registry::{Help, Registrar};
use super::status;
use crate::net::address::Family;
use crate::net::pipe::{Pipe, PipeOptions, Proto};
use crate::net::route::Route;
use args::{Dest, Omitted, pipe_error};
use callbacks::{Callbacks, Kind};
use options::OpenOptions;
use rhai::{Array, Dynamic, EvalAltResult, FnPtr, INT, NativeCallContext};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type Res<T> = Result<T, Box<EvalAltResult>>;

/// A pipe as scripts hold it. Clones share the pipe and its callbacks.
#[derive(Clone)]
pub struct ScriptPipe {
    pub pipe: Pipe,
    callbacks: Arc<Callbacks>,
    route: Option<Route>,
    /// Rhai's operation count and the time when `pipe_open` returned this pipe.
    opened: Arc<Mutex<Option<(u64, Instant)>>>,
}

/// What a callback forwarder needs to wrap the pipes events arrive on, without holding
/// the pipe itself (which would keep it open forever).
pub struct Template {
    callbacks: Arc<Callbacks>,
    route: Option<Route>,
}

impl Template {
    fn wrap(&self, pipe: Pipe) -> ScriptPipe {
        ScriptPipe {
            pipe,
            callbacks: self.callbacks.clone(),
            route: self.route.clone(),
            opened: Arc::default(),
        }
    }
}

impl ScriptPipe {
    fn opened(pipe: Pipe, route: Option<Route>, ctx: &NativeCallContext) -> Self {
        let route = route.map(|r| bound_to(r, pipe.local_addr()));
        let stamp = (ctx.global_runtime_state().num_operations(), Instant::now());
        Self {
            pipe,
            callbacks: Arc::default(),
            route,
            opened: Arc::new(Mutex::new(Some(stamp))),
        }
    }

    /// The route the pipe is bound on (port mapping asks that route's gateway).
    pub fn route(&self) -> Option<&Route> {
        self.route.as_ref()
    }

    fn callbacks(&self) -> &Arc<Callbacks> {
        &self.callbacks
    }

    fn template(&self) -> Template {
        Template {
            callbacks: self.callbacks.clone(),
            route: self.route.clone(),
        }
    }

    /// A client accepted by this server: same callbacks and route.
    fn child(&self, pipe: Pipe) -> Self {
        self.template().wrap(pipe)
    }

    fn is_tcp_server(&self) -> bool {
        self.pipe.proto() == Proto::Tcp && self.pipe.dest().is_none()
    }

    /// True once, if this await directly wraps the `pipe_open` call that made the pipe.
    fn awaited_at_open(&self, ctx: &NativeCallContext) -> bool {
        let stamp = self.opened.lock().unwrap_or_else(|p| p.into_inner()).take();
        let now = ctx.global_runtime_state().num_operations();
        stamp.is_some_and(|(ops, at)| now == ops + 1 && at.elapsed() < Duration::from_secs(1))
    }

    fn dropped(&self) -> INT {
        let n = self.pipe.dropped() + self.pipe.events_dropped() + self.callbacks.dropped();
        INT::try_from(n).unwrap_or(INT::MAX)
    }

    fn text(&self) -> String {
        let state = if self.pipe.is_running() {
            ""
        } else {
            ", closed"
        };
        format!("<Pipe {}{state}>", self.pipe)
    }
}

/// The route re-bound to where the pipe really is (P2PD sets `bind_port` the same way).
fn bound_to(route: Route, local: SocketAddr) -> Route {
    let ip = match local {
        SocketAddr::V6(v6) if v6.scope_id() != 0 => format!("{}%{}", v6.ip(), v6.scope_id()),
        other => other.ip().to_string(),
    };
    route.bind(local.port(), Some(&ip)).unwrap_or(route)
}

/// What `pipe_open` was given besides the protocol.
struct OpenArgs {
    dest: Dynamic,
    route: Dynamic,
    msg_cb: Dynamic,
    up_cb: Dynamic,
    opts: OpenOptions,
}

/// An optional argument of `pipe_open` that was not given.
const LEFT_OUT: Dynamic = Dynamic::UNIT;

impl OpenArgs {
    fn new(dest: Dynamic, route: Dynamic, msg_cb: Dynamic, up_cb: Dynamic) -> Self {
        Self {
            dest,
            route,
            msg_cb,
            up_cb,
            opts: OpenOptions::default(),
        }
    }

    /// The callback arguments as given, a trailing options map split off.
    fn with_trailing(
        dest: Dynamic,
        route: Dynamic,
        msg_cb: Dynamic,
        up_cb: Option<Dynamic>,
    ) -> Res<Self> {
        let (msg_cb, up_cb, opts) = options::trailing(msg_cb, up_cb)?;
        Ok(Self {
            opts,
            ..Self::new(dest, route, msg_cb, up_cb)
        })
    }
}

/// Opens a pipe: resolves `dest` for the route's family, binds where the route says (see
/// `args::local_bind`), and installs callbacks given here before the socket starts.
///
/// A task waiting here keeps every stack page this frame reaches, so the frame stays
/// small: the checks before the first wait and the work after the last run in frames of
/// their own ([`OpenPlan::of`], [`finish_open`]), and each wait boxes its pipe future
/// inside the async block, so the future's state is made when first polled, on the
/// shared poll stack. (This frame was 6 KiB, and the task's deepest wait 18 KiB down,
/// when the futures were built here; 1.2 KiB before the checks moved out.)
fn open(
    ctx: &NativeCallContext,
    resolver: &Resolver,
    proto: Dynamic,
    given: OpenArgs,
) -> Res<ScriptPipe> {
    let mut plan = OpenPlan::of(&proto, given)?;
    let dest = match plan.dest.take() {
        Some(d) => Some(look_up(ctx, resolver, d, plan.route_family)?),
        None => None,
    };
    open_at(ctx, plan, dest)
}

/// The rest of `pipe_open` once `dest` is known: binds, connects, installs callbacks.
#[inline(never)]
fn open_at(
    ctx: &NativeCallContext,
    plan: Box<OpenPlan>,
    dest: Option<SocketAddr>,
) -> Res<ScriptPipe> {
    let (local, bound) = plan.bind(dest)?;
    let opened = connect(ctx, &plan, dest, local)?;
    finish_open(ctx, plan, bound, opened)
}

/// `pipe_open`'s destination, resolved for the route's family.
#[inline(never)]
fn look_up(
    ctx: &NativeCallContext,
    resolver: &Resolver,
    dest: Dest,
    family: Option<Family>,
) -> Res<SocketAddr> {
    let resolver = resolver.clone();
    let label = format!("pipe_open: looking up {}", dest.host());
    status::wait(ctx, move || label.clone(), async move {
        Box::pin(dest.resolve(&resolver, family)).await
    })
}

type Opened = (
    Pipe,
    Option<tokio::sync::mpsc::Receiver<crate::net::pipe::PipeEvent>>,
);

/// Opens the socket; a pipe with callbacks also watches its events (nothing would read
/// them otherwise).
#[inline(never)]
fn connect(
    ctx: &NativeCallContext,
    plan: &OpenPlan,
    dest: Option<SocketAddr>,
    local: SocketAddr,
) -> Res<Opened> {
    let connecting = move || match dest {
        Some(d) => format!("pipe_open: connecting to {d}"),
        None => "pipe_open: opening".to_string(),
    };
    let (proto, observe) = (plan.proto, !plan.callbacks.is_empty());
    let subscribe_all = plan.subscribe_all();
    status::wait(ctx, connecting, async move {
        let opts = PipeOptions::default();
        if observe {
            Box::pin(Pipe::open_with_events(
                proto,
                dest,
                local,
                opts,
                subscribe_all,
            ))
            .await
            .map(|(pipe, events)| (pipe, Some(events)))
        } else {
            Box::pin(Pipe::open(proto, dest, local, opts))
                .await
                .map(|pipe| (pipe, None))
        }
        .map_err(pipe_error)
    })
}

/// What `pipe_open` was asked for, checked before anything waits; boxed, so the frame
/// that waits holds a pointer to it.
struct OpenPlan {
    proto: Proto,
    dest: Option<Dest>,
    route: Dynamic,
    route_family: Option<Family>,
    callbacks: Vec<(Kind, FnPtr)>,
    map: Option<super::portmap_pipe::MapRequest>,
}

impl OpenPlan {
    #[inline(never)]
    fn of(proto: &Dynamic, given: OpenArgs) -> Res<Box<Self>> {
        let proto = args::proto(proto)?;
        let msg_cb = args::callback(&given.msg_cb, "msg_cb")?;
        let up_cb = args::callback(&given.up_cb, "up_cb")?;
        let dest = if given.dest.is_unit() {
            None
        } else {
            Some(Dest::parse(&given.dest)?)
        };
        if given.opts.map.is_some() && dest.is_some() {
            return Err(super::error::error(
                "not_a_server",
                "pipe_open's map option is for servers (dest ()): a client's port takes only its destination's answers",
            ));
        }
        let route_family = args::pipe_family(&given.route)?;
        let callbacks = [(Kind::Msg, msg_cb), (Kind::Up, up_cb)]
            .into_iter()
            .filter_map(|(kind, f)| Some((kind, f?)))
            .collect();
        Ok(Box::new(Self {
            proto,
            dest,
            route: given.route,
            route_family,
            callbacks,
            map: given.opts.map,
        }))
    }

    /// P2PD: a client subscribes to everything unless a msg_cb takes its messages.
    fn subscribe_all(&self) -> bool {
        !self.callbacks.iter().any(|(kind, _)| *kind == Kind::Msg)
    }

    /// Where to bind, once the destination (if any) is resolved, and the route the pipe
    /// will show (boxed: a Route is 144 bytes, held across the connection's wait).
    #[inline(never)]
    fn bind(&self, dest: Option<SocketAddr>) -> Res<(SocketAddr, Box<Option<Route>>)> {
        let family = self
            .route_family
            .or(dest.map(|d| Family::of(&d.ip())))
            .unwrap_or(Family::V4);
        let target = if dest.is_some() { "dest" } else { "()" };
        let proto = self.proto;
        let suggest = |r: &str| format!("pipe_open({proto}, {target}, {r})");
        let omitted = Omitted {
            dest: dest.map(|d| d.ip()),
            suggest: &suggest,
        };
        let (local, bound) = args::local_bind(&self.route, family, &omitted)?;
        Ok((local, Box::new(bound)))
    }
}

/// Installs the callbacks given to `pipe_open` and asks for the port mapping, if any: a
/// server that asked for a mapping and got none is not left open.
#[inline(never)]
// Boxed by the caller, whose frame waits for the connection holding only pointers.
#[allow(clippy::boxed_local)]
fn finish_open(
    ctx: &NativeCallContext,
    plan: Box<OpenPlan>,
    bound: Box<Option<Route>>,
    (pipe, events): Opened,
) -> Res<ScriptPipe> {
    let pipe = ScriptPipe::opened(pipe, *bound, ctx);
    let OpenPlan { callbacks, map, .. } = *plan;
    if let Some(events) = events {
        callbacks::install(ctx, &pipe, callbacks, || events)?;
    }
    if let Some(request) = map
        && let Err(e) = super::portmap_pipe::map_server(ctx, &pipe, request)
    {
        let p = pipe.pipe.clone();
        let _ = bridge::wait(ctx, async move {
            Box::pin(p.close()).await;
            Ok::<_, Box<EvalAltResult>>(())
        });
        return Err(e);
    }
    Ok(pipe)
}

fn echo(ctx: &NativeCallContext, proto: Dynamic, route: Dynamic, port: INT) -> Res<ScriptPipe> {
    let proto = args::proto(&proto)?;
    let port = address::port(port, "echo_server port")?;
    let family = args::pipe_family(&route)?.unwrap_or(Family::V4);
    let suggest = |r: &str| format!("echo_server({proto}, {r}, {port})");
    let omitted = Omitted {
        dest: None,
        suggest: &suggest,
    };
    let (local, bound) = args::local_bind(&route, family, &omitted)?;
    let local = if port == 0 {
        local
    } else {
        SocketAddr::new(local.ip(), port)
    };
    let pipe = bridge::wait(ctx, async move {
        crate::net::pipe::echo_server(proto, local)
            .await
            .map_err(pipe_error)
    })?;
    Ok(ScriptPipe::opened(pipe, bound, ctx))
}

/// `await pipe`: the pipe itself, except a TCP server awaited after its opening, which
/// gives its next client (or `()` once it closes).
fn await_pipe(ctx: NativeCallContext, p: ScriptPipe) -> Res<Dynamic> {
    if !p.is_tcp_server() || p.awaited_at_open(&ctx) {
        return Ok(Dynamic::from(p));
    }
    ops::accept_for(&ctx, &p, ops::FOREVER)
}

const PIPE_OPEN: Help = Help::function(
    "pipes",
    &[
        "pipe_open(proto, dest)",
        "pipe_open(proto, dest, route)",
        "pipe_open(proto, (), route)",
        "pipe_open(proto, dest, route, msg_cb)",
        "pipe_open(proto, dest, route, msg_cb, up_cb)",
        "pipe_open(proto, (), route, #{map: true})",
        "pipe_open(proto, (), route, msg_cb, up_cb, #{map: 600})",
    ],
    "Open a TCP/UDP client to dest (Address, [host, port] or \"host:port\") or, with dest (), a server. The route (Route, Interface, IP, IP4/IP6 wildcard) decides family and bind address; left out or () it is loopback towards a loopback dest, else the default interface's first route from its NIC addresses (no STUN), an error if there is none. msg_cb/up_cb (|msg, client, pipe| or ()) are installed before the socket starts; with a msg_cb a client makes no automatic subscription. A last argument that is a map holds options: map (true, a lifetime, or #{lifetime, gateway}) maps a server's port on the gateway, as server.map() does.",
    "let s = pipe_open(TCP, (), \"127.0.0.1\", |m, c, p| p.send(m)); let p = pipe_open(TCP, s.local); p.send(b\"hi\"); p.recv(2)",
);
const ECHO_SERVER: Help = Help::function(
    "pipes",
    &["echo_server(proto, route, port)"],
    "Start a TCP or UDP server that sends every message back to its sender (port 0 = any); close it to stop. A route () binds the default IPv4 interface's NIC address, as pipe_open does.",
    "let s = echo_server(UDP, \"127.0.0.1\", 0); s.local",
);

/// Registers addresses and pipes: pipes resolve names with the session's resolver.
pub fn register(reg: &mut Registrar, ctx: &BindContext) {
    let resolver = address::register(reg, ctx.hosts.clone());
    reg.register_type::<ScriptPipe>("Pipe")
        .register_fn("to_string", |p: &mut ScriptPipe| p.text())
        .register_fn("to_debug", |p: &mut ScriptPipe| p.text())
        .register_fn("==", |a: ScriptPipe, b: ScriptPipe| a.pipe.same(&b.pipe))
        .register_fn("!=", |a: ScriptPipe, b: ScriptPipe| !a.pipe.same(&b.pipe))
        .register_fn("__await", await_pipe)
        .register_get("proto", |p: &mut ScriptPipe| {
            args::proto_number(p.pipe.proto())
        })
        .register_get("local", |p: &mut ScriptPipe| tup(p.pipe.local_addr()))
        .register_get("dest", |p: &mut ScriptPipe| {
            p.pipe
                .dest()
                .map_or(Dynamic::UNIT, |d| Dynamic::from(tup(d)))
        })
        .register_get("is_running", |p: &mut ScriptPipe| p.pipe.is_running())
        .register_get("route", |p: &mut ScriptPipe| {
            p.route.clone().map_or(Dynamic::UNIT, Dynamic::from)
        })
        .register_get("dropped", |p: &mut ScriptPipe| p.dropped())
        .register_get("clients", |p: &mut ScriptPipe| -> Array {
            p.pipe
                .clients()
                .into_iter()
                .map(|c| Dynamic::from(p.child(c)))
                .collect()
        });

    let r = resolver.clone();
    reg.func(
        "pipe_open",
        &PIPE_OPEN,
        move |ctx: NativeCallContext, proto: Dynamic, dest: Dynamic| {
            open(
                &ctx,
                &r,
                proto,
                OpenArgs::new(dest, LEFT_OUT, LEFT_OUT, LEFT_OUT),
            )
        },
    );
    let r = resolver.clone();
    reg.func(
        "pipe_open",
        &PIPE_OPEN,
        move |ctx: NativeCallContext, proto: Dynamic, dest: Dynamic, route: Dynamic| {
            open(
                &ctx,
                &r,
                proto,
                OpenArgs::new(dest, route, LEFT_OUT, LEFT_OUT),
            )
        },
    );
    let r = resolver.clone();
    reg.func(
        "pipe_open",
        &PIPE_OPEN,
        move |ctx: NativeCallContext,
              proto: Dynamic,
              dest: Dynamic,
              route: Dynamic,
              msg_cb: Dynamic| {
            let given = OpenArgs::with_trailing(dest, route, msg_cb, None)?;
            open(&ctx, &r, proto, given)
        },
    );
    let r = resolver.clone();
    reg.func(
        "pipe_open",
        &PIPE_OPEN,
        move |ctx: NativeCallContext,
              proto: Dynamic,
              dest: Dynamic,
              route: Dynamic,
              msg_cb: Dynamic,
              up_cb: Dynamic| {
            let given = OpenArgs::with_trailing(dest, route, msg_cb, Some(up_cb))?;
            open(&ctx, &r, proto, given)
        },
    );
    let r = resolver;
    reg.func(
        "pipe_open",
        &PIPE_OPEN,
        move |ctx: NativeCallContext,
              proto: Dynamic,
              dest: Dynamic,
              route: Dynamic,
              msg_cb: Dynamic,
              up_cb: Dynamic,
              opts: Dynamic| {
            let given = OpenArgs {
                opts: OpenOptions::parse(&opts)?,
                ..OpenArgs::new(dest, route, msg_cb, up_cb)
            };
            open(&ctx, &r, proto, given)
        },
    );
    reg.func(
        "echo_server",
        &ECHO_SERVER,
        |ctx: NativeCallContext, proto: Dynamic, route: Dynamic, port: INT| {
            echo(&ctx, proto, route, port)
        },
    );
    ops::register(reg);
}
