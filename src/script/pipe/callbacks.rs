//! `add_msg_cb`, `add_end_cb`, `add_up_cb`: Rhai closures called for pipe events, on the
//! script thread.
//!
//! The pipe reports events on a channel (`Pipe::events`, see `net::pipe::events`; or the
//! channel `Pipe::open_with_events` attached when callbacks come with `pipe_open`). The
//! first callback added starts one forwarding task on the runtime that turns each event
//! into a [`Job`] per matching callback; the script thread runs each on a fiber of its own
//! whenever it waits (an `await`, `sleep`) or sits idle at the prompt. The calls for one
//! connection run one after another, in the order of its events (a callback that awaits,
//! say a `send` that waits for room, holds back that connection's next call, so echoes
//! cannot overtake each other); different connections run side by side. Like P2PD (inventory §5.2), a TCP server
//! and its accepted clients share one callback list, and every callback is called as
//! `f(msg, client_tup, pipe)`: `pipe` is the pipe the event happened on (an accepted client
//! for a TCP server, so `pipe.send(msg)` answers), `msg` is `()` for up and end events.
//!
//! Jobs are bounded: at most [`MAX_PENDING`] callback calls wait for the script thread.
//! Beyond that a TCP pipe stops reading (TCP flow control slows the peer, nothing is lost)
//! and a UDP pipe drops the message for its callbacks and counts it in `pipe.dropped`.
//! Removing a callback revokes its calls already queued.

use super::super::address::tup;
use super::super::bridge::{self, CallSite, Job, JobKind};
use super::super::bytes::Bytes;
use super::super::capture;
use super::ScriptPipe;
use crate::net::pipe::{PipeEvent, Proto};
use rhai::{Dynamic, EvalAltResult, FnPtr, NativeCallContext};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{Semaphore, mpsc};

/// Callback calls that may wait for the script thread at once, per pipe.
pub const MAX_PENDING: usize = 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Msg,
    End,
    Up,
}

struct Entry {
    kind: Kind,
    f: FnPtr,
    revoked: Arc<AtomicBool>,
    /// Where it was added: a closure is found through the functions visible there.
    site: Arc<CallSite>,
}

/// The callback lists of one pipe (or of a TCP server and its clients).
pub struct Callbacks {
    entries: Mutex<Vec<Entry>>,
    forwarding: AtomicBool,
    dropped: AtomicU64,
    pending: Arc<Semaphore>,
}

impl Default for Callbacks {
    fn default() -> Self {
        Self {
            entries: Mutex::new(Vec::new()),
            forwarding: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
            pending: Arc::new(Semaphore::new(MAX_PENDING)),
        }
    }
}

impl Callbacks {
    /// Messages a UDP pipe could not hand to its callbacks because too many calls waited.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Calls for one event: the callbacks of its kind, each with its revocation flag.
    fn matching(&self, kind: Kind) -> Vec<(FnPtr, Arc<AtomicBool>, Arc<CallSite>)> {
        self.lock()
            .iter()
            .filter(|e| e.kind == kind)
            .map(|e| (e.f.clone(), e.revoked.clone(), e.site.clone()))
            .collect()
    }

    /// Removes every callback of `kind` with the same function as `f`; false if none was there.
    pub fn remove(&self, kind: Kind, f: &FnPtr) -> bool {
        let mut entries = self.lock();
        let before = entries.len();
        entries.retain(|e| {
            let same = e.kind == kind && e.f.fn_name() == f.fn_name();
            if same {
                e.revoked.store(true, Ordering::SeqCst);
            }
            !same
        });
        entries.len() != before
    }
}

/// Adds `f` to `pipe`'s callbacks and starts forwarding its events if nothing does yet.
pub fn add(
    ctx: &NativeCallContext,
    pipe: &ScriptPipe,
    kind: Kind,
    f: FnPtr,
) -> Result<(), Box<EvalAltResult>> {
    install(ctx, pipe, [(kind, f)], || pipe.pipe.events())
}

/// Adds callbacks and, if nothing forwards `pipe`'s events yet, starts forwarding the
/// receiver `events` gives: a new observer for `add`, or the one `pipe_open` attached
/// before the socket started (then no event is missed).
pub fn install(
    ctx: &NativeCallContext,
    pipe: &ScriptPipe,
    given: impl IntoIterator<Item = (Kind, FnPtr)>,
    events: impl FnOnce() -> mpsc::Receiver<PipeEvent>,
) -> Result<(), Box<EvalAltResult>> {
    let bridge = bridge::bridge_of(ctx)?;
    let cbs = pipe.callbacks();
    let site = CallSite::of(ctx);
    cbs.lock().extend(given.into_iter().map(|(kind, f)| Entry {
        kind,
        f: capture::detach(f),
        revoked: Arc::new(AtomicBool::new(false)),
        site: site.clone(),
    }));
    if !cbs.forwarding.swap(true, Ordering::SeqCst) {
        let events = events();
        let template = pipe.template();
        bridge
            .handle()
            .spawn(forward(events, bridge.jobs(), template));
    }
    Ok(())
}

/// Runs on the runtime until the pipe's events end (it closed, or every handle is gone).
/// Holds no handle on the pipe itself, only what each event carries.
async fn forward(
    mut events: mpsc::Receiver<PipeEvent>,
    jobs: mpsc::UnboundedSender<Job>,
    template: super::Template,
) {
    let cbs = template.callbacks.clone();
    while let Some(event) = events.recv().await {
        let (kind, args, pipe) = match event {
            PipeEvent::Message { peer, data, pipe } => (
                Kind::Msg,
                [Dynamic::from(Bytes(data)), Dynamic::from(tup(peer))],
                pipe,
            ),
            PipeEvent::Up(pipe) => (Kind::Up, [Dynamic::UNIT, Dynamic::UNIT], pipe),
            PipeEvent::End(pipe) => {
                let peer = pipe.dest().map_or(Dynamic::UNIT, |d| Dynamic::from(tup(d)));
                (Kind::End, [Dynamic::UNIT, peer], pipe)
            }
        };
        let may_drop = kind == Kind::Msg && pipe.proto() == Proto::Udp;
        let serial = pipe.key();
        let script_pipe = Dynamic::from(template.wrap(pipe));
        for (f, revoked, site) in cbs.matching(kind) {
            let permit = if may_drop {
                match cbs.pending.clone().try_acquire_owned() {
                    Ok(p) => p,
                    Err(_) => {
                        cbs.dropped.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                }
            } else {
                match cbs.pending.clone().acquire_owned().await {
                    Ok(p) => p,
                    Err(_) => return,
                }
            };
            let mut call_args = args.to_vec();
            call_args.push(script_pipe.clone());
            let job = Job {
                revoked: Some(revoked),
                // The permit goes back when the call is done, or when a revoked job is dropped.
                kind: JobKind::Callback(Some(Box::new(move |_| drop(permit)))),
                serial: Some(serial),
                ..Job::callback(f, call_args, site)
            };
            if jobs.send(job).is_err() {
                return;
            }
        }
    }
}
