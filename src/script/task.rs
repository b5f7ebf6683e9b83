//! Pending tasks and `await`.
//!
//! Python's tutorial lines read `x = await f()`. Here `await EXPR` is a prefix keyword
//! (custom syntax) that hands the value to the `__await` function: a plain value comes
//! back unchanged, a [`Task`] is waited for. Other types that should be awaitable (an
//! unresolved address, a server waiting for a client) add their own `__await` overload.
//!
//! `create_task(|| ...)` makes a task from a closure, like `asyncio.create_task`: the closure
//! runs on the script thread the next time the shell waits (in an await, or idle at
//! the prompt), so tasks interleave at awaits exactly as coroutines do.

use super::bridge::{self, Job};
use super::error::error;
use super::registry::{Help, Registrar};
use rhai::{Dynamic, EvalAltResult, FnPtr, NativeCallContext};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// The eventual result of some work; cloning shares it.
#[derive(Clone, Default)]
pub struct Task {
    inner: Arc<TaskInner>,
}

#[derive(Default)]
struct TaskInner {
    result: Mutex<Option<Result<Dynamic, String>>>,
    done: Notify,
}

impl Task {
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores the result (the first one wins) and wakes every waiter.
    pub fn complete(&self, result: Result<Dynamic, String>) {
        let mut slot = self.inner.result.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(result);
            self.inner.done.notify_waiters();
        }
    }

    pub fn is_done(&self) -> bool {
        self.peek().is_some()
    }

    fn peek(&self) -> Option<Result<Dynamic, String>> {
        self.inner
            .result
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Waits for the result.
    pub async fn finished(&self) -> Result<Dynamic, String> {
        loop {
            let notified = self.inner.done.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(r) = self.peek() {
                return r;
            }
            notified.await;
        }
    }
}

const SPAWN: Help = Help::function(
    "shell",
    &["create_task(|| ...)"],
    "Run a closure as a task on the script thread; `await task` gives its result.",
    "let t = create_task(|| { sleep(0.1); 42 }); await t",
);
const IS_DONE: Help = Help::method(
    "shell",
    &["task.is_done()"],
    "True once a task has finished (successfully or not).",
    "let t = create_task(|| 1); sleep(0); t.is_done()",
);

pub fn register(reg: &mut Registrar) {
    reg.engine()
        .register_type_with_name::<Task>("Task")
        .register_fn("to_string", |t: &mut Task| task_text(t))
        .register_fn("to_debug", |t: &mut Task| task_text(t))
        .register_fn("__await", |v: Dynamic| v)
        .register_fn(
            "__await",
            |ctx: NativeCallContext, t: Task| -> Result<Dynamic, Box<EvalAltResult>> {
                bridge::wait(&ctx, async move {
                    t.finished().await.map_err(|e| error("task", e))
                })
            },
        );
    reg.func(
        "create_task",
        &SPAWN,
        |ctx: NativeCallContext, f: FnPtr| -> Result<Task, Box<EvalAltResult>> {
            let task = Task::new();
            let done = task.clone();
            let job = Job {
                on_done: Some(Box::new(move |r| done.complete(r))),
                ..Job::call(f, Vec::new())
            };
            bridge::bridge_of(&ctx)?
                .jobs()
                .send(job)
                .map_err(|_| error("shell", "the shell is shutting down"))?;
            Ok(task)
        },
    )
    .func("is_done", &IS_DONE, |t: &mut Task| t.is_done());
}

fn task_text(t: &Task) -> String {
    match t.peek() {
        None => "<Task pending>".to_string(),
        Some(Ok(v)) => format!("<Task done: {v}>"),
        Some(Err(e)) => format!("<Task failed: {e}>"),
    }
}
