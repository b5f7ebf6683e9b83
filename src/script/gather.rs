//! asyncio's companions for tasks: `gather`, `wait_for` and `as_completed`.
//!
//! Each takes tasks, closures (started as tasks of the current line, as asyncio wraps
//! coroutines) or plain values (already "done"). They are built on completion hooks
//! ([`Task::on_done`]), so waiting on 10,000 tasks costs one wake-up per task, not a scan
//! of all of them per wake-up.
//!
//! `as_completed(tasks)` returns an array of new tasks, one per input: the first
//! completes with whichever input finishes first, the second with the next, and so on.
//! `for t in as_completed(ts) { print(await t) }` reads as Python's
//! `for f in asyncio.as_completed(ts): print(await f)`.

use super::args::seconds;
use super::bridge;
use super::error::error;
use super::registry::{Help, Registrar};
use super::task::{self, Outcome, Task};
use rhai::{Array, Dynamic, EvalAltResult, NativeCallContext};
use std::sync::{Arc, Mutex};

type Res<T> = Result<T, Box<EvalAltResult>>;

/// The inputs as tasks; a plain value becomes a task already done with it.
fn tasks_of(ctx: &NativeCallContext, items: Array) -> Res<Vec<Task>> {
    items
        .into_iter()
        .map(|v| {
            Ok(task::task_of(ctx, v.clone())?.unwrap_or_else(|| {
                let done = Task::new(None);
                done.complete(Outcome::Value(v));
                done
            }))
        })
        .collect()
}

/// Results in input order; the first error (in time) is raised and the other tasks go
/// on, as with asyncio's default. Abandoning the wait (Ctrl-C) cancels them all.
fn gather(ctx: &NativeCallContext, items: Array) -> Res<Array> {
    let tasks = tasks_of(ctx, items)?;
    let all = Task::new(None);
    let slots = Arc::new(Mutex::new((vec![Dynamic::UNIT; tasks.len()], tasks.len())));
    if tasks.is_empty() {
        all.complete(Outcome::Value(Dynamic::from_array(Array::new())));
    }
    for (i, t) in tasks.iter().enumerate() {
        let (all, slots) = (all.clone(), slots.clone());
        t.on_done(move |o| match o {
            Outcome::Value(v) => {
                let mut s = slots.lock().unwrap_or_else(|p| p.into_inner());
                s.0[i] = v.clone();
                s.1 -= 1;
                if s.1 == 0 {
                    let values = std::mem::take(&mut s.0);
                    drop(s);
                    all.complete(Outcome::Value(Dynamic::from_array(values)));
                }
            }
            failed => {
                all.complete(failed.clone());
            }
        });
    }
    match task::await_task(ctx, &all) {
        Ok(v) => Ok(v.cast::<Array>()),
        Err(e) => {
            if is_termination(&e) {
                tasks.iter().for_each(|t| {
                    t.cancel();
                });
            }
            Err(e)
        }
    }
}

fn is_termination(e: &EvalAltResult) -> bool {
    matches!(e, EvalAltResult::ErrorTerminated(..))
}

/// The task's value, or a `timeout` error after `secs` (the task is cancelled then).
fn wait_for(ctx: &NativeCallContext, what: Dynamic, secs: &Dynamic) -> Res<Dynamic> {
    let limit = seconds(secs, "wait_for timeout")?;
    let Some(t) = task::task_of(ctx, what.clone())? else {
        return Ok(what);
    };
    let waited = bridge::wait(ctx, async {
        Ok::<_, Box<EvalAltResult>>(tokio::time::timeout(limit, t.finished()).await)
    });
    match waited {
        Ok(Ok(outcome)) => outcome.into_result(),
        Ok(Err(_elapsed)) => {
            t.cancel();
            Err(error(
                "timeout",
                format!(
                    "the task did not finish within {} s and was cancelled",
                    limit.as_secs_f64()
                ),
            ))
        }
        Err(e) => {
            t.cancel();
            Err(e)
        }
    }
}

/// One new task per input, completed in the order the inputs finish.
fn as_completed(ctx: &NativeCallContext, items: Array) -> Res<Array> {
    let tasks = tasks_of(ctx, items)?;
    let report = bridge::bridge_of(ctx)?.reporter().clone();
    let order: Arc<Vec<Task>> = Arc::new(
        (0..tasks.len())
            .map(|_| Task::new(Some(report.clone())))
            .collect(),
    );
    let next = Arc::new(Mutex::new(0usize));
    for t in &tasks {
        let (order, next) = (order.clone(), next.clone());
        t.on_done(move |o| {
            let k = {
                let mut n = next.lock().unwrap_or_else(|p| p.into_inner());
                *n += 1;
                *n - 1
            };
            order[k].complete(o.clone());
        });
    }
    Ok(order.iter().cloned().map(Dynamic::from).collect())
}

const GATHER: Help = Help::function(
    "tasks",
    &["gather([task_or_closure, ...])"],
    "Run tasks (closures are started as tasks) concurrently; their results in the same order, or the first error raised.",
    "gather([|| { sleep(0.2); 1 }, || { sleep(0.1); 2 }, 3])",
);
const WAIT_FOR: Help = Help::function(
    "tasks",
    &["wait_for(task_or_closure, secs)"],
    "Await a task for at most secs seconds; past that it is cancelled and a `timeout` error is raised.",
    "let t = create_task(|| { sleep(5); 1 }); try { wait_for(t, 0.1) } catch (e) { e.kind }",
);
const AS_COMPLETED: Help = Help::function(
    "tasks",
    &["as_completed([task_or_closure, ...])"],
    "One task per input, in finishing order: `for t in as_completed(ts) { print(await t) }`.",
    "let firsts = []; for t in as_completed([|| { sleep(0.2); \"slow\" }, || \"fast\"]) { firsts.push(await t) } firsts",
);

pub fn register(reg: &mut Registrar) {
    reg.func("gather", &GATHER, |ctx: NativeCallContext, items: Array| {
        gather(&ctx, items)
    })
    .func(
        "wait_for",
        &WAIT_FOR,
        |ctx: NativeCallContext, what: Dynamic, secs: Dynamic| wait_for(&ctx, what, &secs),
    )
    .func(
        "as_completed",
        &AS_COMPLETED,
        |ctx: NativeCallContext, items: Array| as_completed(&ctx, items),
    );
}
