//! How a synchronous Rhai call awaits a tokio future without freezing the shell.
//!
//! Rhai runs on one plain thread (the script thread); the tokio runtime owns every
//! socket and timer on its own worker threads. A bound function that "awaits" hands
//! its future to [`wait`], which blocks the script thread until one of three things
//! happens:
//! - the future completes: its value is the call's result;
//! - Ctrl-C trips the [`Cancel`] flag: the future is dropped (which closes whatever it
//!   owned) and the call fails with a termination error that `try`/`catch` cannot
//!   swallow, so the line is abandoned but the shell and its scope live on;
//! - the runtime posts a [`Job`] (a timer firing, a pipe callback): the job runs on
//!   this thread, *between* polls of the future, and the wait resumes.
//!
//! Running jobs outside `block_on` matters: a job may itself await, and tokio forbids
//! a `block_on` nested inside another.

use super::cancel::Cancel;
use rhai::{Dynamic, EvalAltResult, FnPtr, NativeCallContext, Position};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::runtime::Handle;
use tokio::sync::mpsc;

/// Receives a job's result: the closure's value or its error message.
pub type JobDone = Box<dyn FnOnce(Result<Dynamic, String>) + Send>;

/// A Rhai closure the runtime wants called on the script thread.
pub struct Job {
    pub callback: FnPtr,
    pub args: Vec<Dynamic>,
    /// Set by the owner (a timer handle, a pipe) when the call must no longer happen,
    /// even if the job is already queued.
    pub revoked: Option<Arc<AtomicBool>>,
    /// Where to deliver the callback's result (used by `spawn` tasks).
    pub on_done: Option<JobDone>,
}

impl Job {
    pub fn call(callback: FnPtr, args: Vec<Dynamic>) -> Self {
        Self {
            callback,
            args,
            revoked: None,
            on_done: None,
        }
    }

    pub fn is_revoked(&self) -> bool {
        self.revoked
            .as_ref()
            .is_some_and(|r| r.load(Ordering::SeqCst))
    }
}

/// Reports a job's failure; the shell decides where the text goes.
pub type JobErrorSink = Arc<dyn Fn(&EvalAltResult) + Send + Sync>;

/// The script thread's connection to the runtime.
pub struct Bridge {
    handle: Handle,
    cancel: Cancel,
    jobs_tx: mpsc::UnboundedSender<Job>,
    /// Only the script thread receives; the mutex just makes `Bridge` shareable.
    jobs_rx: Mutex<mpsc::UnboundedReceiver<Job>>,
    job_error: JobErrorSink,
}

/// What woke the script thread.
enum Wake<T> {
    Done(T),
    Job(Job),
    Cancelled,
}

impl Bridge {
    /// `job_error` hears every callback that fails.
    pub fn new(handle: Handle, cancel: Cancel, job_error: JobErrorSink) -> Arc<Self> {
        let (jobs_tx, jobs_rx) = mpsc::unbounded_channel();
        Arc::new(Self {
            handle,
            cancel,
            jobs_tx,
            jobs_rx: Mutex::new(jobs_rx),
            job_error,
        })
    }

    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    pub fn cancel(&self) -> &Cancel {
        &self.cancel
    }

    /// A sender the runtime side uses to post jobs to the script thread.
    pub fn jobs(&self) -> mpsc::UnboundedSender<Job> {
        self.jobs_tx.clone()
    }

    /// Blocks on `fut`, running posted jobs through `run_job` while it is pending.
    /// `None` means Ctrl-C interrupted the wait.
    pub fn block<T>(
        &self,
        fut: impl Future<Output = T>,
        mut run_job: impl FnMut(Job),
    ) -> Option<T> {
        let mut fut = std::pin::pin!(fut);
        loop {
            let wake = {
                let mut jobs = self.jobs_rx.lock().unwrap_or_else(|p| p.into_inner());
                self.handle.block_on(async {
                    tokio::select! {
                        biased;
                        _ = self.cancel.cancelled() => Wake::Cancelled,
                        v = &mut fut => Wake::Done(v),
                        Some(job) = jobs.recv() => Wake::Job(job),
                    }
                })
            };
            match wake {
                Wake::Done(v) => return Some(v),
                Wake::Cancelled => return None,
                Wake::Job(job) => run_job(job),
            }
        }
    }

    /// Waits for the next job or an interrupt, whichever comes first, together with
    /// another event source (the REPL's next line). Used while the shell is idle.
    pub fn idle<T>(&self, next: impl Future<Output = T>) -> IdleWake<T> {
        let mut jobs = self.jobs_rx.lock().unwrap_or_else(|p| p.into_inner());
        self.handle.block_on(async {
            tokio::select! {
                biased;
                v = next => IdleWake::Input(v),
                Some(job) = jobs.recv() => IdleWake::Job(job),
            }
        })
    }

    /// Runs a job with a native call context (inside an awaited call), reporting a
    /// failure instead of propagating it: a broken callback must not break the call
    /// that happened to be waiting when it fired.
    pub fn run_job_in(&self, ctx: &NativeCallContext, mut job: Job) {
        if job.is_revoked() {
            return;
        }
        let args = std::mem::take(&mut job.args);
        let result = job.callback.call_within_context::<Dynamic>(ctx, args);
        self.finish_job(job, result);
    }

    /// Delivers a job's result to whoever asked for it and reports errors.
    pub fn finish_job(&self, job: Job, result: Result<Dynamic, Box<EvalAltResult>>) {
        if let Err(e) = &result {
            (self.job_error)(e);
        }
        if let Some(done) = job.on_done {
            done(result.map_err(|e| e.to_string()));
        }
    }
}

pub enum IdleWake<T> {
    Input(T),
    Job(Job),
}

/// The error an interrupted call fails with. `ErrorTerminated` is deliberate: a
/// script's `catch` cannot swallow it, so Ctrl-C always reaches the prompt.
pub fn interrupted(pos: Position) -> Box<EvalAltResult> {
    EvalAltResult::ErrorTerminated("KeyboardInterrupt".into(), pos).into()
}

/// Finds the bridge stored as the engine's tag (see `engine::build`).
pub fn bridge_of(ctx: &NativeCallContext) -> Result<Arc<Bridge>, Box<EvalAltResult>> {
    // Read in place: cloning the tag would box a copy of it on every awaiting call.
    ctx.tag()
        .and_then(|t| t.read_lock::<Arc<Bridge>>().map(|b| Arc::clone(&b)))
        .ok_or_else(|| "internal error: the async bridge is not installed".into())
}

/// Awaits `fut` from a bound function: the one call every awaitable binding makes.
///
/// ```ignore
/// engine.register_fn("sleep", |ctx: NativeCallContext, secs: f64| {
///     bridge::wait(&ctx, async move { tokio::time::sleep(..).await; Ok(()) })
/// });
/// ```
pub fn wait<T, E>(
    ctx: &NativeCallContext,
    fut: impl Future<Output = Result<T, E>>,
) -> Result<T, Box<EvalAltResult>>
where
    E: Into<Box<EvalAltResult>>,
{
    let bridge = bridge_of(ctx)?;
    // Enter the runtime so futures that build timers or sockets eagerly (before
    // their first poll) find a reactor.
    let _guard = bridge.handle().enter();
    match bridge.block(fut, |job| bridge.run_job_in(ctx, job)) {
        Some(result) => result.map_err(Into::into),
        None => Err(interrupted(ctx.call_position())),
    }
}
