//! How a synchronous Rhai call awaits a tokio future without freezing the shell.
//!
//! Rhai runs on one plain thread (the script thread); the tokio runtime owns every
//! socket and timer on its own worker thread. A bound function that "awaits" hands its
//! future to [`wait`], the one call every awaitable binding makes:
//!
//! ```ignore
//! engine.register_fn("sleep", |ctx: NativeCallContext, secs: f64| {
//!     bridge::wait(&ctx, async move { tokio::time::sleep(..).await; Ok(()) })
//! });
//! ```
//!
//! The future is polled at once: what is ready (a send with room in the socket, a queued
//! message) returns without further cost. Otherwise, inside a task or a callback, the
//! fiber running it is suspended until the future's waker fires (see `sched`); in the
//! line being evaluated, the call drives the scheduler, running every fiber that becomes
//! ready, until its own future is done. Ctrl-C ends the wait with a termination error
//! that `try`/`catch` cannot swallow, and drops the future (which closes whatever it
//! owned): the line is abandoned but the shell and its scope live on.
//!
//! A new awaitable function needs nothing else. Build its future as `async move { .. }`,
//! so timers and sockets are made at the first poll, inside the runtime context the
//! session entered once for the whole evaluation; never enter the runtime or call
//! `block_on` from a binding (a fiber suspended with a context guard alive would break
//! tokio's guard order). Status output during a long wait can hook into
//! `sched::Scheduler::park`, the one place where the script thread sleeps.

use super::cancel::Cancel;
use super::error::error;
use super::sched::{self, fiber};
use super::task::Task;
#[allow(deprecated)] // NativeCallContextStore is marked volatile, not deprecated.
use rhai::NativeCallContextStore;
use rhai::{Dynamic, EvalAltResult, FnPtr, NativeCallContext, Position};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::runtime::Handle;
use tokio::sync::mpsc;

/// Receives a callback job's result: the closure's value or its error message.
pub type JobDone = Box<dyn FnOnce(Result<Dynamic, String>) + Send>;

/// Where a closure was handed over (`create_task`, `every`, `add_msg_cb`...): the
/// functions it can call by name are the ones visible there.
pub struct CallSite {
    #[allow(deprecated)]
    store: NativeCallContextStore,
}

impl CallSite {
    #[allow(deprecated)] // `store_data` is marked volatile, not deprecated.
    pub fn of(ctx: &NativeCallContext) -> Arc<Self> {
        let mut store = ctx.store_data();
        // The closure starts a call stack of its own: the nesting depth of the code that
        // handed it over must not count against it.
        store.global.level = 0;
        Arc::new(Self { store })
    }

    #[allow(deprecated)]
    pub fn context<'a>(&'a self, engine: &'a rhai::Engine) -> NativeCallContext<'a> {
        self.store.create_context(engine)
    }
}

/// What a job is for.
pub enum JobKind {
    /// `create_task`: the closure's outcome completes the task.
    Task(Task),
    /// A timer or pipe event: errors are reported, then `on_done` hears the result.
    Callback(Option<JobDone>),
}

/// A Rhai closure to run on the script thread, in a fiber of its own.
pub struct Job {
    pub callback: FnPtr,
    pub args: Vec<Dynamic>,
    pub site: Arc<CallSite>,
    pub kind: JobKind,
    /// Set by the owner (a timer handle, a pipe) when the call must no longer happen,
    /// even if the job is already queued.
    pub revoked: Option<Arc<AtomicBool>>,
    /// Jobs with the same key run one after another, in the order they were posted (the
    /// events of one connection); others run side by side.
    pub serial: Option<usize>,
    /// The evaluation that started it (0: none, a callback of the runtime): Ctrl-C
    /// during evaluation N cancels what N started.
    pub line: u64,
}

impl Job {
    /// A callback run with no result handler.
    pub fn callback(callback: FnPtr, args: Vec<Dynamic>, site: Arc<CallSite>) -> Self {
        Self {
            callback,
            args,
            site,
            kind: JobKind::Callback(None),
            revoked: None,
            serial: None,
            line: 0,
        }
    }

    pub fn is_revoked(&self) -> bool {
        self.revoked
            .as_ref()
            .is_some_and(|r| r.load(Ordering::SeqCst))
    }
}

/// Reports a callback's failure or a task error nobody awaited; the shell decides where
/// the text goes.
pub type Reporter = Arc<dyn Fn(&str) + Send + Sync>;

/// The script thread's connection to the runtime.
pub struct Bridge {
    handle: Handle,
    cancel: Cancel,
    jobs_tx: mpsc::UnboundedSender<Job>,
    report: Reporter,
}

impl Bridge {
    /// Returns the bridge and the receiving end of its job queue, for the scheduler.
    pub fn new(
        handle: Handle,
        cancel: Cancel,
        report: Reporter,
    ) -> (Arc<Self>, mpsc::UnboundedReceiver<Job>) {
        let (jobs_tx, jobs_rx) = mpsc::unbounded_channel();
        let bridge = Arc::new(Self {
            handle,
            cancel,
            jobs_tx,
            report,
        });
        (bridge, jobs_rx)
    }

    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    pub fn cancel(&self) -> &Cancel {
        &self.cancel
    }

    pub fn reporter(&self) -> &Reporter {
        &self.report
    }

    /// A sender the runtime side uses to post jobs to the script thread.
    pub fn jobs(&self) -> mpsc::UnboundedSender<Job> {
        self.jobs_tx.clone()
    }

    /// Queues a job; it starts the next time the script thread schedules.
    pub fn post(&self, job: Job) -> Result<(), Box<EvalAltResult>> {
        self.jobs_tx
            .send(job)
            .map_err(|_| error("shell", "the shell is shutting down"))
    }
}

/// The error an interrupted call fails with. `ErrorTerminated` is deliberate: a
/// script's `catch` cannot swallow it, so Ctrl-C always reaches the prompt.
pub fn interrupted(pos: Position) -> Box<EvalAltResult> {
    EvalAltResult::ErrorTerminated(INTERRUPT.into(), pos).into()
}

/// What a cancelled task's fiber ends with: uncatchable too, so the task really stops.
pub fn cancelled(pos: Position) -> Box<EvalAltResult> {
    EvalAltResult::ErrorTerminated(CANCELLED.into(), pos).into()
}

/// The termination tokens: Ctrl-C, and a cancelled task.
pub const INTERRUPT: &str = "KeyboardInterrupt";
pub const CANCELLED: &str = "cancelled";

/// Finds the bridge stored as the engine's tag (see `engine::build`).
pub fn bridge_of(ctx: &NativeCallContext) -> Result<Arc<Bridge>, Box<EvalAltResult>> {
    // Read in place: cloning the tag would box a copy of it on every awaiting call.
    ctx.tag()
        .and_then(|t| t.read_lock::<Arc<Bridge>>().map(|b| Arc::clone(&b)))
        .ok_or_else(|| "internal error: the async bridge is not installed".into())
}

/// Awaits `fut` from a bound function (see the module documentation).
pub fn wait<T, E>(
    ctx: &NativeCallContext,
    fut: impl Future<Output = Result<T, E>>,
) -> Result<T, Box<EvalAltResult>>
where
    E: Into<Box<EvalAltResult>>,
{
    if fiber::in_fiber() {
        return match fiber::wait(fut) {
            Some(Ok(result)) => result.map_err(Into::into),
            _ => Err(cancelled(ctx.call_position())),
        };
    }
    wait_at_root(ctx, fut)
}

/// The root's wait, out of line: a fiber's wait frame must not hold what driving the
/// scheduler needs, since a waiting task keeps every stack page it reached.
#[inline(never)]
fn wait_at_root<T, E>(
    ctx: &NativeCallContext,
    fut: impl Future<Output = Result<T, E>>,
) -> Result<T, Box<EvalAltResult>>
where
    E: Into<Box<EvalAltResult>>,
{
    match sched::wait_at_root(&*bridge_of(ctx)?, fut) {
        Some(result) => result.map_err(Into::into),
        None => Err(interrupted(ctx.call_position())),
    }
}
