//! A scripting session: one engine, one scope and the functions defined so far.
//!
//! Both front ends drive it: the REPL feeds it one input at a time, a script run
//! feeds it a whole file. An input is a transaction: it runs against a copy of the
//! scope, and only when it succeeds do its variables and `fn` definitions become part
//! of the session, so a failing line (or one stopped with Ctrl-C) leaves every
//! variable exactly as it was. Objects shared by handle (an open pipe) are not copied:
//! they stay open and usable.
//!
//! Tasks outlive the input that created them and keep running between inputs, as in
//! asyncio's REPL, except when that input is interrupted: Ctrl-C cancels everything the
//! input started (see `sched`).

use super::bridge::Bridge;
use super::cancel::Cancel;
use super::engine::{self, ShellEngine};
use super::error::ScriptError;
use super::limits::Limits;
use super::sched::{self, Driver, Scheduler};
use super::sink::Sink;
use crate::net::config::StunConfig;
use rhai::{AST, Dynamic, Scope};
use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;
use tokio::runtime::Handle;

/// What a session is started with.
#[derive(Clone, Debug, Default)]
pub struct SessionOptions {
    /// The script's `ARGS`.
    pub args: Vec<String>,
    /// STUN servers and timeouts (from `--stun`, `P2PD_STUN` or the defaults);
    /// `stun_servers([...])` changes them for the rest of the session.
    pub stun: StunConfig,
    /// The engine's limits (from `--limit`); `limits(#{...})` changes them.
    pub limits: Limits,
}

pub struct Session {
    shell: ShellEngine,
    scope: Scope<'static>,
    /// Every `fn` defined by earlier inputs, with no statements left to run.
    functions: AST,
    /// `fn __echo(v)`: computes what the REPL shows for a value.
    echo: AST,
    bridge: Arc<Bridge>,
    sched: Rc<RefCell<Scheduler>>,
    /// Inputs evaluated so far: the number of the current one while it runs.
    line: u64,
}

impl Session {
    pub fn new(handle: Handle, cancel: Cancel, sink: Arc<dyn Sink>, opts: SessionOptions) -> Self {
        let report = sink.clone();
        let (bridge, jobs) = Bridge::new(handle, cancel, Arc::new(move |text| report.err(text)));
        let shell = engine::build(bridge.clone(), sink, opts);
        let sched = Scheduler::new(bridge.clone(), jobs);
        let echo = shell
            .engine
            .compile("fn __echo(v) { repr(v) }")
            .expect("the echo helper compiles");
        Self {
            shell,
            scope: Scope::new(),
            functions: AST::empty(),
            echo,
            bridge,
            sched,
            line: 0,
        }
    }

    pub fn engine(&self) -> &ShellEngine {
        &self.shell
    }

    pub fn cancel(&self) -> &Cancel {
        self.bridge.cancel()
    }

    /// Runs one input; returns what the REPL should echo (nothing for unit).
    pub fn eval_line(&mut self, src: &str) -> Result<Option<String>, ScriptError> {
        let value = self.eval(src)?;
        if value.is_unit() {
            return Ok(None);
        }
        Ok(Some(self.repr(value)))
    }

    /// Runs `src` as a transaction and returns its value.
    pub fn eval(&mut self, src: &str) -> Result<Dynamic, ScriptError> {
        self.bridge.cancel().reset();
        self.shell.apply_limits();
        let ast = engine::compile(&self.shell.engine, &self.scope, src)
            .map_err(|e| ScriptError::from_parse(&e))?;
        let mut merged = self.functions.merge(&ast);
        let mut scope = self.scope.clone();
        self.line += 1;
        // One runtime context for the whole evaluation, fibers included (see `sched`).
        let _runtime = self.bridge.handle().enter();
        let driver = Driver::install(&self.sched, self.line, &self.shell.engine);
        let result = self
            .shell
            .engine
            .eval_ast_with_scope::<Dynamic>(&mut scope, &merged);
        drop(driver);
        let value = result.map_err(|e| {
            let err = ScriptError::from_eval(&e);
            if err.interrupted {
                self.sched.borrow_mut().cancel_line(self.line);
            }
            err
        })?;
        merged.clear_statements();
        self.functions = merged;
        self.scope = scope;
        Ok(value)
    }

    /// The REPL's text for a value.
    pub fn repr(&self, value: Dynamic) -> String {
        let fallback = value.to_string();
        self.shell
            .engine
            .call_fn::<String>(&mut Scope::new(), &self.echo, "__echo", (value,))
            .unwrap_or(fallback)
    }

    /// Waits for `next` (the REPL's next line) while tasks and callbacks run.
    pub fn idle<T>(&mut self, next: impl Future<Output = T>) -> T {
        // Callbacks that run meanwhile obey the limits set by the last input.
        self.shell.apply_limits();
        let _runtime = self.bridge.handle().enter();
        let _driver = Driver::install(&self.sched, 0, &self.shell.engine);
        sched::idle(&self.bridge, next)
    }

    /// Tasks and callback runs alive (running or waiting).
    pub fn fibers(&self) -> usize {
        self.sched.borrow().fibers()
    }

    /// Whether `name` is one of the session's variables (the REPL's `x = ...` makes new ones).
    pub fn has_variable(&self, name: &str) -> bool {
        self.scope.contains(name)
    }

    /// Names the REPL can complete: variables, script functions, constants, builtins.
    pub fn completion_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.scope.iter().map(|(n, _, _)| n.to_string()).collect();
        names.extend(self.functions.iter_functions().map(|f| f.name.to_string()));
        names.extend(self.shell.constants.keys().cloned());
        names
    }
}
