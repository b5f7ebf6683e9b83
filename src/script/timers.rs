//! `call_later` and `every`: the user-facing proof that the runtime can call back into
//! the script thread, at any time, including while the REPL waits for input.
//!
//! The timer lives on the runtime; when it fires it posts a [`Job`] and the script
//! thread runs the closure on a fiber of its own, so a closure that awaits suspends
//! without holding anything else up. A timer's runs never overlap: a tick that comes
//! while the previous run is still going (`every(0.001, || sleep(0.5))`) is skipped, as
//! tokio's `MissedTickBehavior::Skip` does. Cancelling both aborts the timer task and
//! revokes jobs already queued, so a cancelled timer never runs its closure again.

use super::args::seconds;
use super::bridge::{self, CallSite, Job, JobKind};
use super::capture;
use super::registry::{Help, Registrar};
use rhai::{Dynamic, EvalAltResult, FnPtr, NativeCallContext};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::task::AbortHandle;

/// A handle on a scheduled callback.
#[derive(Clone)]
pub struct Timer {
    revoked: Arc<AtomicBool>,
    abort: AbortHandle,
    every: Option<Duration>,
}

impl Timer {
    pub fn cancel(&self) {
        self.revoked.store(true, Ordering::SeqCst);
        self.abort.abort();
    }

    pub fn is_cancelled(&self) -> bool {
        self.revoked.load(Ordering::SeqCst)
    }
}

/// The shortest `every` period: a smaller one would flood the script thread.
const MIN_PERIOD: Duration = Duration::from_millis(1);

fn schedule(
    ctx: &NativeCallContext,
    delay: Duration,
    every: Option<Duration>,
    f: FnPtr,
) -> Result<Timer, Box<EvalAltResult>> {
    let bridge = bridge::bridge_of(ctx)?;
    let jobs = bridge.jobs();
    let revoked = Arc::new(AtomicBool::new(false));
    let flag = revoked.clone();
    let (f, site) = (capture::detach(f), CallSite::of(ctx));
    let running = Arc::new(AtomicBool::new(false));
    let handle = bridge.handle().spawn(async move {
        let post = |f: &FnPtr| {
            if running.swap(true, Ordering::AcqRel) {
                return true; // the previous run is still going: skip this tick
            }
            let done = running.clone();
            jobs.send(Job {
                revoked: Some(flag.clone()),
                kind: JobKind::Callback(Some(Box::new(move |_| {
                    done.store(false, Ordering::Release)
                }))),
                ..Job::callback(f.clone(), Vec::new(), site.clone())
            })
            .is_ok()
        };
        tokio::time::sleep(delay).await;
        if !post(&f) {
            return;
        }
        if let Some(period) = every {
            let mut ticks = tokio::time::interval(period);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                if !post(&f) {
                    return;
                }
            }
        }
    });
    Ok(Timer {
        revoked,
        abort: handle.abort_handle(),
        every,
    })
}

const CALL_LATER: Help = Help::function(
    "shell",
    &["call_later(secs, || ...)"],
    "Run a closure once after secs seconds, even while the prompt waits; returns a timer with .cancel().",
    r#"let t = call_later(1, || print("one second later"));"#,
);
const EVERY: Help = Help::function(
    "shell",
    &["every(secs, || ...)"],
    "Run a closure every secs seconds until its timer is cancelled; a tick is skipped while the previous run still goes.",
    r#"let tick = every(2, || print("tick")); call_later(5, || tick.cancel());"#,
);

pub fn register(reg: &mut Registrar) {
    reg.engine()
        .register_type_with_name::<Timer>("Timer")
        .register_get("cancelled", |t: &mut Timer| t.is_cancelled())
        .register_fn("to_string", timer_text)
        .register_fn("to_debug", timer_text);
    reg.func(
        "call_later",
        &CALL_LATER,
        |ctx: NativeCallContext, secs: Dynamic, f: FnPtr| {
            schedule(&ctx, seconds(&secs, "call_later delay")?, None, f)
        },
    )
    .func(
        "every",
        &EVERY,
        |ctx: NativeCallContext, secs: Dynamic, f: FnPtr| {
            let period = seconds(&secs, "every period")?.max(MIN_PERIOD);
            schedule(&ctx, period, Some(period), f)
        },
    )
    .func("cancel", &super::task::CANCEL, |t: &mut Timer| t.cancel());
}

fn timer_text(t: &mut Timer) -> String {
    let state = if t.is_cancelled() {
        "cancelled"
    } else {
        "active"
    };
    match t.every {
        Some(p) => format!("<Timer every {:.3} s, {state}>", p.as_secs_f64()),
        None => format!("<Timer once, {state}>"),
    }
}
