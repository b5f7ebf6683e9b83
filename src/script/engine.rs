//! Builds the Rhai engine every front end uses: the REPL, script runs and tests.
//!
//! Besides registering each area's functions, it installs the three language
//! extensions the tutorial needs:
//! - `await EXPR`: custom syntax calling `__await` (see `task.rs`);
//! - `b"..."` byte literals: `lexer.rs` rewrites the `b` to a marker that a custom
//!   syntax turns into [`Bytes`](super::bytes::Bytes) (see [`compile`]);
//! - constants (`TCP`, `IP4`, `ARGS`...) resolved by `on_var`, because constants pushed
//!   into a scope are invisible inside `fn` bodies. The same hook lets `help(sleep)`
//!   work: an unknown variable that names a function becomes a function pointer.
//!
//! Ctrl-C reaches pure-Rhai loops through `on_progress`, which polls the same flag
//! the async bridge waits on; the memory limit is checked there too (`limits.rs`).

use super::bridge::{self, Bridge};
use super::bytes;
use super::limits::Requested;
use super::registry::{Constants, HelpIndex, Registrar};
use super::sched::fiber;
use super::sink::Sink;
use super::world::World;
use super::{gather, interface, nat, netcheck, pipe, portmap, route, shell, stun, task, timers};
use crate::net::config::StunConfig;
use crate::net::hosts::HostsTable;
use rhai::{AST, Dynamic, Engine, FnPtr, LexError, ParseError, ParseErrorType, Position, Scope};
use std::sync::{Arc, OnceLock, RwLock};

use super::session::SessionOptions;

/// An engine plus what the front ends need to know about it.
pub struct ShellEngine {
    /// Shared with the fibers that run tasks and callbacks.
    pub engine: Arc<Engine>,
    pub help: Arc<HelpIndex>,
    pub constants: Arc<Constants>,
    /// What `limits(#{...})` asked for.
    limits: Requested,
    /// Where the session's network is; the front ends switch it to the local world.
    pub world: Arc<World>,
}

impl ShellEngine {
    /// Puts limits asked for by `limits(#{...})` into force; the session calls it before
    /// each input (a running one cannot change its engine).
    /// Cheap, so it runs every time: another session on the same thread may have put its
    /// own limits into force for error messages meanwhile.
    /// While tasks are alive they share the engine, which then cannot change: the engine's
    /// own limits (sizes, call depth, operations) follow once they are done, the memory
    /// and stack checks at once.
    pub fn apply_limits(&mut self) {
        let wanted = *self.limits.lock().unwrap_or_else(|p| p.into_inner());
        match Arc::get_mut(&mut self.engine) {
            Some(engine) => wanted.apply(engine),
            None => wanted.put_in_force(),
        }
    }
}

/// What a binding area gets when it registers.
pub struct BindContext {
    pub sink: Arc<dyn Sink>,
    pub bridge: Arc<Bridge>,
    /// The session's STUN settings, shared by every binding that probes the network.
    pub stun: Arc<RwLock<StunConfig>>,
    /// The session's hosts table, asked before DNS by every binding that resolves names.
    pub hosts: Arc<RwLock<HostsTable>>,
    pub world: Arc<World>,
}

/// A binding area: one file under `script/`, one entry in [`AREAS`].
type Area = fn(&mut Registrar, &BindContext);

/// Every bound area, in the order `help()` lists them. Adding an area is one line here.
const AREAS: &[Area] = &[
    bytes_area,
    task_area,
    gather_area,
    timers_area,
    interface::register,
    route::register,
    stun::register,
    nat::register,
    netcheck::register,
    pipe::register, // addresses and pipes (one resolver shared)
    portmap::register,
];

fn bytes_area(reg: &mut Registrar, _: &BindContext) {
    bytes::register(reg);
}
fn task_area(reg: &mut Registrar, _: &BindContext) {
    task::register(reg);
}
fn gather_area(reg: &mut Registrar, _: &BindContext) {
    gather::register(reg);
}
fn timers_area(reg: &mut Registrar, _: &BindContext) {
    timers::register(reg);
}

pub fn build(bridge: Arc<Bridge>, sink: Arc<dyn Sink>, opts: SessionOptions) -> ShellEngine {
    let mut engine = Engine::new();
    engine.set_default_tag(Dynamic::from(bridge.clone()));
    // Deep recursion must error, not overflow the thread stack; a string doubling in a
    // loop must error, not abort the process on a failed allocation.
    opts.limits.apply(&mut engine);
    let limits: Requested = Arc::new(std::sync::Mutex::new(opts.limits));

    let cancel = bridge.cancel().clone();
    // Every Rhai operation also checks the running fiber: a cancelled task stops even in
    // a busy loop, and one about to overflow its stack stops with an error instead.
    engine.on_progress(move |_| {
        if cancel.is_tripped() {
            return Some(Dynamic::from(bridge::INTERRUPT));
        }
        if let Some(why) = fiber::must_stop() {
            return Some(Dynamic::from(why));
        }
        super::limits::check_progress().map(Dynamic::from)
    });
    let out = sink.clone();
    engine.on_print(move |s| out.out(s));
    let out = sink.clone();
    engine.on_debug(move |s, _, _| out.out(s));

    install_await(&mut engine);
    install_byte_literal(&mut engine);

    let help_slot: Arc<OnceLock<Arc<HelpIndex>>> = Arc::new(OnceLock::new());
    let stun = Arc::new(RwLock::new(opts.stun));
    let hosts = Arc::new(RwLock::new(HostsTable::default()));
    let world = Arc::new(World::new(
        bridge.handle().clone(),
        stun.clone(),
        hosts.clone(),
    ));
    let ctx = BindContext {
        sink: sink.clone(),
        bridge,
        stun,
        hosts,
        world: world.clone(),
    };
    let (help, constants) = {
        let mut reg = Registrar::new(&mut engine);
        shell::register(&mut reg, sink, help_slot.clone());
        super::limits::register(&mut reg, limits.clone());
        super::sized::register(&mut reg);
        super::world::register(&mut reg, world.clone());
        for area in AREAS {
            area(&mut reg, &ctx);
        }
        let argv: rhai::Array = opts.args.iter().map(|a| Dynamic::from(a.clone())).collect();
        reg.constant(
            "ARGS",
            argv,
            "the script's command-line arguments (array of strings)",
        );
        reg.finish()
    };
    let _ = help_slot.set(help.clone());
    install_names(&mut engine, help.clone(), constants.clone());

    ShellEngine {
        engine: Arc::new(engine),
        help,
        constants,
        limits,
        world,
    }
}

fn install_await(engine: &mut Engine) {
    engine
        .register_custom_syntax(["await", "$expr$"], false, |ctx, inputs| {
            let value = ctx.eval_expression_tree(&inputs[0])?;
            ctx.call_fn::<Dynamic>("__await", (value,))
        })
        .expect("the await syntax is valid");
}

fn install_byte_literal(engine: &mut Engine) {
    let marker = super::lexer::BYTES_MARKER.to_string();
    engine
        .register_custom_syntax([marker.as_str(), "$string$"], false, |_, inputs| {
            let text = inputs[0].get_string_value().unwrap_or_default();
            bytes::from_literal(text)
                .map(Dynamic::from)
                .map_err(|e| super::error::error("value", e))
        })
        .expect("the byte literal syntax is valid");
}

#[allow(deprecated)] // `on_var` is marked volatile, not deprecated.
fn install_names(engine: &mut Engine, help: Arc<HelpIndex>, constants: Arc<Constants>) {
    engine.on_var(move |name, index, ctx| {
        // Runs on every variable read. A non-zero index means the parser found the name in
        // the scope, and a script's own variable wins: nothing to look up.
        if index > 0 {
            return Ok(None);
        }
        let found = match constants.get(name) {
            Some(v) => v.clone(),
            None if help.get(name).is_some() => match FnPtr::new(name) {
                Ok(f) => Dynamic::from(f),
                Err(_) => return Ok(None),
            },
            None => return Ok(None),
        };
        // A script's own variable of the same name wins.
        if ctx.scope().contains(name) {
            return Ok(None);
        }
        Ok(Some(found))
    });
}

/// Compiles source the way every front end must: byte literals first (checked, then
/// rewritten for the custom syntax).
pub fn compile(engine: &Engine, scope: &Scope, src: &str) -> Result<AST, ParseError> {
    if let Err(e) = super::lexer::check_byte_literals(src) {
        let before = src.get(..e.offset).unwrap_or("");
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
        let at = |n: usize| u16::try_from(n).unwrap_or(u16::MAX);
        return Err(ParseError(
            Box::new(ParseErrorType::BadInput(LexError::ImproperSymbol(
                String::new(),
                e.message,
            ))),
            Position::new(at(line), at(column)),
        ));
    }
    let src = super::lexer::rewrite_byte_literals(src);
    engine.compile_with_scope(scope, src.as_ref())
}
