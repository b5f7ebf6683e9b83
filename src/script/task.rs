//! Tasks and `await`.
//!
//! Python's tutorial lines read `x = await f()`. Here `await EXPR` is a prefix keyword
//! (custom syntax) that hands the value to the `__await` function: a plain value comes
//! back unchanged, a [`Task`] is waited for. Other types that should be awaitable (an
//! unresolved address, a server waiting for a client) add their own `__await` overload.
//!
//! `create_task(|| ...)` makes a task from a closure, like `asyncio.create_task`: the
//! closure starts on a fiber of its own (see `sched`) the next time the script thread
//! schedules, after what is already runnable, and from then on runs whenever the line,
//! or another task, waits. Tasks interleave only at waits (`sleep`, `recv`, `await`...):
//! between two waits a task runs alone, as a coroutine does between two awaits.
//!
//! As in asyncio: a task's error is raised where it is awaited, and reported once if the
//! task is dropped with nobody having looked at its result; awaiting a cancelled task
//! raises a `cancelled` error. The companions (`gather`, `wait_for`, `as_completed`) are
//! in `gather.rs`.

use super::bridge::{self, CallSite, Job, JobKind, Reporter};
use super::capture;
use super::error::{ScriptError, error, message_of};
use super::registry::{Help, Registrar};
use super::sched;
use rhai::{Dynamic, EvalAltResult, FnPtr, Map, NativeCallContext};
use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Poll, Waker};

type Res<T> = Result<T, Box<EvalAltResult>>;

/// How a task ended.
#[derive(Clone)]
pub enum Outcome {
    Value(Dynamic),
    Failed(Arc<Failure>),
    Cancelled,
}

/// A task's error: the message raised at `await`, and the located text reported if
/// nobody ever awaits it.
pub struct Failure {
    message: String,
    shown: String,
}

impl Outcome {
    /// The outcome of a closure's call. A termination (Ctrl-C, `cancel()`) or an awaited
    /// task's `cancelled` error cancels this task too, as `CancelledError` does in asyncio.
    pub fn of(result: &Res<Dynamic>) -> Self {
        match result {
            Ok(v) => Self::Value(v.clone()),
            Err(e) if is_cancellation(e) => Self::Cancelled,
            Err(e) => {
                let err = ScriptError::from_eval(e);
                Self::failed(message_of(e), err.render("<task>", ""))
            }
        }
    }

    pub fn failed(message: String, shown: String) -> Self {
        Self::Failed(Arc::new(Failure { message, shown }))
    }

    /// What `await` gives: the value, or the task's error raised again.
    pub fn into_result(self) -> Res<Dynamic> {
        match self {
            Self::Value(v) => Ok(v),
            Self::Failed(f) => Err(error("task", &f.message)),
            Self::Cancelled => Err(error(CANCELLED_KIND, "the task was cancelled")),
        }
    }
}

const CANCELLED_KIND: &str = "cancelled";

fn is_cancellation(e: &EvalAltResult) -> bool {
    match e {
        EvalAltResult::ErrorTerminated(..) => ScriptError::from_eval(e).interrupted,
        EvalAltResult::ErrorRuntime(v, _) => v
            .read_lock::<Map>()
            .and_then(|m| m.get("kind").map(|k| k.to_string() == CANCELLED_KIND))
            .unwrap_or(false),
        EvalAltResult::ErrorInFunctionCall(_, _, inner, _) => is_cancellation(inner),
        _ => false,
    }
}

/// The eventual result of some work; cloning shares it.
#[derive(Clone)]
pub struct Task {
    inner: Arc<TaskInner>,
}

struct TaskInner {
    state: Mutex<State>,
    /// Raised by `cancel()`; the fiber running the task reads it at every wait.
    cancel: Arc<AtomicBool>,
    /// Hears the error of a task dropped without anyone retrieving it.
    report: Option<Reporter>,
}

type Hook = Box<dyn FnOnce(&Outcome) + Send>;

#[derive(Default)]
struct State {
    outcome: Option<Outcome>,
    /// Someone awaited the task or asked for its result.
    retrieved: bool,
    waiters: Vec<Waker>,
    hooks: Vec<Hook>,
    /// The fiber running the task, woken to make it see a cancel.
    fiber: Option<Waker>,
}

impl Task {
    /// A pending task; `report` hears its error if it is never retrieved.
    pub fn new(report: Option<Reporter>) -> Self {
        Self {
            inner: Arc::new(TaskInner {
                state: Mutex::default(),
                cancel: Arc::default(),
                report,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stores the outcome (the first one wins), wakes every waiter and runs the hooks.
    pub fn complete(&self, outcome: Outcome) -> bool {
        let (waiters, hooks) = {
            let mut s = self.lock();
            if s.outcome.is_some() {
                return false;
            }
            s.outcome = Some(outcome.clone());
            s.fiber = None;
            if !s.hooks.is_empty() {
                s.retrieved = true;
            }
            (std::mem::take(&mut s.waiters), std::mem::take(&mut s.hooks))
        };
        waiters.into_iter().for_each(Waker::wake);
        for hook in hooks {
            hook(&outcome);
        }
        true
    }

    /// Asks the task to stop: false if it had already finished. A task that has not
    /// started yet is cancelled at once; a running one stops at its next wait.
    pub fn cancel(&self) -> bool {
        let fiber = {
            let s = self.lock();
            if s.outcome.is_some() {
                return false;
            }
            self.inner.cancel.store(true, Ordering::Release);
            s.fiber.clone()
        };
        match fiber {
            Some(w) => w.wake(),
            None => {
                self.complete(Outcome::Cancelled);
            }
        }
        true
    }

    pub fn cancel_requested(&self) -> bool {
        self.inner.cancel.load(Ordering::Acquire) || self.is_done()
    }

    /// The flag the task's fiber watches.
    pub fn cancel_flag(&self) -> Arc<AtomicBool> {
        self.inner.cancel.clone()
    }

    /// Records the fiber now running the task.
    pub fn attach(&self, fiber: Waker) {
        self.lock().fiber = Some(fiber);
    }

    pub fn is_done(&self) -> bool {
        self.lock().outcome.is_some()
    }

    pub fn is_cancelled(&self) -> bool {
        matches!(self.lock().outcome, Some(Outcome::Cancelled))
    }

    /// The outcome, if there is one yet, counting as retrieved.
    fn take_peek(&self) -> Option<Outcome> {
        let mut s = self.lock();
        let o = s.outcome.clone();
        if o.is_some() {
            s.retrieved = true;
        }
        o
    }

    /// Calls `hook` with the outcome when there is one (now, if there already is).
    pub fn on_done(&self, hook: impl FnOnce(&Outcome) + Send + 'static) {
        let done = {
            let mut s = self.lock();
            s.retrieved = true;
            match &s.outcome {
                Some(o) => o.clone(),
                None => return s.hooks.push(Box::new(hook)),
            }
        };
        hook(&done);
    }

    /// Waits for the outcome.
    pub async fn finished(&self) -> Outcome {
        poll_fn(|cx| {
            let mut s = self.lock();
            match s.outcome.clone() {
                Some(o) => {
                    s.retrieved = true;
                    Poll::Ready(o)
                }
                None => {
                    if !s.waiters.iter().any(|w| w.will_wake(cx.waker())) {
                        s.waiters.push(cx.waker().clone());
                    }
                    Poll::Pending
                }
            }
        })
        .await
    }

    fn text(&self) -> String {
        match &self.lock().outcome {
            None => "<Task pending>".to_string(),
            Some(Outcome::Value(v)) => format!("<Task done: {v}>"),
            Some(Outcome::Failed(f)) => format!("<Task failed: {}>", f.message),
            Some(Outcome::Cancelled) => "<Task cancelled>".to_string(),
        }
    }
}

impl Drop for TaskInner {
    fn drop(&mut self) {
        let s = self.state.get_mut().unwrap_or_else(|p| p.into_inner());
        if let (Some(Outcome::Failed(f)), false, Some(report)) =
            (&s.outcome, s.retrieved, &self.report)
        {
            report(&format!("task error (never awaited): {}", f.shown));
        }
    }
}

/// Starts `f` as a task of the current line.
pub fn spawn(ctx: &NativeCallContext, f: FnPtr) -> Res<Task> {
    let bridge = bridge::bridge_of(ctx)?;
    let task = Task::new(Some(bridge.reporter().clone()));
    bridge.post(Job {
        kind: JobKind::Task(task.clone()),
        line: sched::current_line(),
        ..Job::callback(capture::detach(f), Vec::new(), CallSite::of(ctx))
    })?;
    Ok(task)
}

/// A task for an awaitable argument: a task as it is, a closure started as one.
pub fn task_of(ctx: &NativeCallContext, v: Dynamic) -> Res<Option<Task>> {
    if let Some(t) = v.read_lock::<Task>() {
        return Ok(Some(t.clone()));
    }
    if v.is_fnptr() {
        return spawn(ctx, v.cast::<FnPtr>()).map(Some);
    }
    Ok(None)
}

/// Awaits a task from a bound function; if the wait itself is interrupted or cancelled
/// the task is cancelled too, as asyncio cancels what an abandoned await was awaiting.
pub fn await_task(ctx: &NativeCallContext, t: &Task) -> Res<Dynamic> {
    let outcome = bridge::wait(ctx, async {
        Ok::<_, Box<EvalAltResult>>(t.finished().await)
    });
    match outcome {
        Ok(o) => o.into_result(),
        Err(e) => {
            t.cancel();
            Err(e)
        }
    }
}

const SPAWN: Help = Help::function(
    "tasks",
    &["create_task(|| ...)"],
    "Run a closure as a task (a coroutine with its own stack); `await task` gives its result or raises its error.",
    "let t = create_task(|| { sleep(0.1); 42 }); await t",
);
const IS_DONE: Help = Help::method(
    "tasks",
    &["task.is_done()", "task.done()"],
    "True once a task has finished (with a value, an error or cancelled).",
    "let t = create_task(|| 1); sleep(0); t.done()",
);
/// Shared by `task.cancel()` and `timer.cancel()`: one name, one help entry.
pub const CANCEL: Help = Help::method(
    "tasks",
    &["task.cancel()", "timer.cancel()"],
    "Stop a task at its next wait (awaiting it then raises a `cancelled` error; false if it had finished), or stop a timer; safe to call twice.",
    "let t = create_task(|| sleep(10)); t.cancel(); t.cancelled()",
);
const CANCELLED: Help = Help::method(
    "tasks",
    &["task.cancelled()"],
    "True if the task ended by being cancelled (cancel(), wait_for's timeout, Ctrl-C).",
    "let t = create_task(|| sleep(10)); t.cancel(); t.cancelled()",
);
const RESULT: Help = Help::method(
    "tasks",
    &["task.result()"],
    "A finished task's value (raises its error); raises a `pending` error if it has not finished.",
    "let t = create_task(|| 6 * 7); sleep(0); t.result()",
);

pub fn register(reg: &mut Registrar) {
    reg.engine()
        .register_type_with_name::<Task>("Task")
        .register_fn("to_string", |t: &mut Task| t.text())
        .register_fn("to_debug", |t: &mut Task| t.text())
        .register_fn("__await", |v: Dynamic| v)
        .register_fn("__await", |ctx: NativeCallContext, t: Task| {
            await_task(&ctx, &t)
        });
    reg.func("create_task", &SPAWN, |ctx: NativeCallContext, f: FnPtr| {
        spawn(&ctx, f)
    })
    .func("is_done", &IS_DONE, |t: &mut Task| t.is_done())
    .func("done", &IS_DONE, |t: &mut Task| t.is_done())
    .func("cancel", &CANCEL, |t: &mut Task| t.cancel())
    .func("cancelled", &CANCELLED, |t: &mut Task| t.is_cancelled())
    .func("result", &RESULT, |t: &mut Task| -> Res<Dynamic> {
        match t.take_peek() {
            Some(o) => o.into_result(),
            None => Err(error("pending", "the task has not finished yet: await it")),
        }
    });
}
