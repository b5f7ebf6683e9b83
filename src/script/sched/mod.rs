//! The script thread's scheduler: every task and callback run is a fiber, and the root
//! (the line being evaluated, or the idle prompt) is the only thing that resumes them.
//!
//! Why fibers (stackful coroutines on the one script thread): Rhai's interpreter is
//! recursive, so a task suspended inside nested calls must keep its whole stack. The
//! alternative, one OS thread per task passing a baton, was prototyped next to it on the
//! same Rhai engine (only `sleep`, `create_task` and `await` bound; release build, 2
//! vCPUs): 10,000 tasks awaiting `sleep(0.2)` took 1.5-4.2 s and 190 MB with threads,
//! 0.42-0.45 s and 95 MB with one fresh `mmap`'d stack per fiber. The shell as built,
//! with the pooled stacks of [`stack`], takes 0.32 s and 103 MB (`benches/tasks.sh`;
//! asyncio: 0.30 s, 35 MB): a waiting fiber holds the 8-16 KiB of stack its Rhai call
//! touched (its futures are polled on a shared stack, see `fiber`). A switch between fibers is a few instructions; a baton hand-off is a futex
//! wake and a context switch.
//!
//! How it runs:
//! - A job (a `create_task` closure, a timer firing, a pipe event) arrives on the bridge's
//!   channel and becomes a fiber on a pooled stack. Fibers run in FIFO order of their
//!   wake-ups, always resumed from the root stack, never from inside one another.
//! - Inside a fiber, `bridge::wait` polls its future and suspends while it is pending
//!   (see [`fiber`]); the future's waker queues the fiber again ([`ready`]).
//! - At the root, `bridge::wait` ([`wait_at_root`]) polls its own future, runs whatever
//!   is ready, and sleeps in [`Scheduler::park`] when nothing is: the one place where
//!   the script thread blocks, on one `block_on` over Ctrl-C, the ready queue and jobs.
//! - The runtime context is entered once per evaluation or idle period by the session,
//!   never by a fiber: tokio requires context guards to be dropped in the order they
//!   were made, which fibers suspended at arbitrary points would break.
//!
//! Cancelling is cooperative: a cancelled fiber's next wait (or next Rhai operation, via
//! `on_progress`) ends with an uncatchable termination error, so the fiber unwinds
//! through Rhai's own error path and drops its futures and sockets on the way. Ctrl-C
//! cancels every fiber started by the interrupted line ([`Scheduler::cancel_line`]).

pub mod fiber;
pub mod ready;
pub mod stack;

use super::bridge::{Bridge, Job, JobKind, Reporter};
use super::error::ScriptError;
use super::status;
use super::task::Outcome;
use corosensei::stack::Stack;
use corosensei::{Coroutine, CoroutineResult};
use fiber::Suspend;
use ready::{FiberId, FiberState, ROOT, ReadyQueue};
use rhai::{Dynamic, Engine, EvalAltResult};
use stack::{PooledStack, StackPool};
use std::cell::{Cell, RefCell};
use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use tokio::sync::mpsc;

type Co = Coroutine<(), Suspend, (), PooledStack>;

/// Writable stack per fiber. `max_call_levels` (256) must fit with room to spare: a Rhai
/// call level takes about 6 KiB of stack in an optimised build and about 42 KiB in a
/// debug build; the on_progress guard (`fiber::must_stop`) ends a fiber cleanly well
/// before its guard page. Untouched pages cost address space only.
pub const STACK_SIZE: usize = if cfg!(debug_assertions) {
    16 << 20
} else {
    2 << 20
};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Task,
    Callback,
}

enum Body {
    /// Queued, not run yet: no stack taken.
    Unstarted(Option<Job>),
    Running(Co),
}

struct Fiber {
    body: Body,
    state: Arc<FiberState>,
    line: u64,
    kind: Kind,
    serial: Option<usize>,
}

pub struct Scheduler {
    /// The engine fibers run on, lent by the [`Driver`] while an evaluation or idle wait
    /// runs: between inputs with no fiber alive the session holds the only reference, so
    /// `limits(#{...})` can change it.
    engine: Option<Arc<Engine>>,
    bridge: Arc<Bridge>,
    jobs: mpsc::UnboundedReceiver<Job>,
    ready: Arc<ReadyQueue>,
    root: Arc<FiberState>,
    fibers: HashMap<FiberId, Fiber>,
    next_id: FiberId,
    /// Serial keys with a fiber running, and the jobs waiting behind it.
    serial: HashMap<usize, VecDeque<Job>>,
    stacks: StackPool,
    /// The line the root is evaluating (0 while idle).
    line: u64,
}

thread_local! {
    /// The scheduler driving this thread's root, while an evaluation or idle wait runs.
    static DRIVER: RefCell<Option<Rc<RefCell<Scheduler>>>> = const { RefCell::new(None) };
    /// The line of whatever runs now: the root's, or the running fiber's.
    static LINE: Cell<u64> = const { Cell::new(0) };
}

/// The line new tasks belong to (see [`Job::line`]).
pub fn current_line() -> u64 {
    LINE.with(Cell::get)
}

impl Scheduler {
    pub fn new(bridge: Arc<Bridge>, jobs: mpsc::UnboundedReceiver<Job>) -> Rc<RefCell<Self>> {
        let ready = Arc::new(ReadyQueue::default());
        let root = FiberState::new(ROOT, Arc::default(), ready.clone());
        Rc::new(RefCell::new(Self {
            engine: None,
            bridge,
            jobs,
            ready,
            root,
            fibers: HashMap::new(),
            next_id: ROOT + 1,
            serial: HashMap::new(),
            stacks: StackPool::new(STACK_SIZE),
            line: 0,
        }))
    }

    /// Fibers alive (running or suspended).
    pub fn fibers(&self) -> usize {
        self.fibers.len()
    }

    fn take_jobs(&mut self) {
        while let Ok(job) = self.jobs.try_recv() {
            self.start(job);
        }
    }

    fn start(&mut self, job: Job) {
        if job.is_revoked() {
            return;
        }
        if let JobKind::Task(task) = &job.kind
            && task.cancel_requested()
        {
            task.complete(Outcome::Cancelled);
            return;
        }
        if let Some(key) = job.serial {
            match self.serial.entry(key) {
                Entry::Occupied(mut waiting) => return waiting.get_mut().push_back(job),
                Entry::Vacant(free) => {
                    free.insert(VecDeque::new());
                }
            }
        }
        self.spawn(job);
    }

    /// Makes `job` a fiber, queued to run. Its stack is taken when it first runs: a
    /// burst of short tasks then reuses one stack instead of reserving one each.
    fn spawn(&mut self, job: Job) {
        let id = self.next_id;
        self.next_id += 1;
        let cancelled = match &job.kind {
            JobKind::Task(task) => task.cancel_flag(),
            JobKind::Callback(_) => Arc::default(),
        };
        let state = FiberState::new(id, cancelled, self.ready.clone());
        if let JobKind::Task(task) = &job.kind {
            task.attach(Waker::from(state.clone()));
        }
        let kind = match job.kind {
            JobKind::Task(_) => Kind::Task,
            JobKind::Callback(_) => Kind::Callback,
        };
        std::task::Wake::wake_by_ref(&state);
        self.fibers.insert(
            id,
            Fiber {
                line: job.line,
                serial: job.serial,
                body: Body::Unstarted(Some(job)),
                state,
                kind,
            },
        );
    }

    /// The coroutine for a fiber about to run for the first time, on a pooled stack.
    fn coroutine(&self, state: &Arc<FiberState>, stack: PooledStack, job: Job) -> Co {
        let floor = stack.base().get() - self.stacks.stack_size();
        // Fibers only start under a driver, which lends the engine.
        let engine = self.engine.clone();
        let (report, inside) = (self.bridge.reporter().clone(), state.clone());
        // Boxed: every frame down to the Rhai call would otherwise hold its own copy of
        // the job, and a waiting task keeps every stack page it touched.
        let mut job = Box::new(job);
        Co::with_stack(stack, move |yielder, ()| {
            fiber::enter(yielder, inside.clone(), floor, || match &engine {
                Some(engine) => run_job(engine, &report, &inside, &mut job),
                None => report("a task started outside an evaluation and was dropped"),
            });
        })
    }

    /// A job that could not get a stack (the system's map count or memory ran out).
    fn refuse(&mut self, job: Job, why: &std::io::Error) {
        let text = format!(
            "cannot start another task or callback ({} are running): {why}",
            self.fibers.len()
        );
        match job.kind {
            JobKind::Task(task) => {
                task.complete(Outcome::failed(text.clone(), text));
            }
            JobKind::Callback(done) => {
                (self.bridge.reporter())(&format!("callback error: {text}"));
                if let Some(done) = done {
                    done(Err(text));
                }
            }
        }
        if let Some(key) = job.serial {
            self.next_serial(key);
        }
    }

    fn resume(&mut self, id: FiberId) {
        let Some(f) = self.fibers.get_mut(&id) else {
            return; // a stale wake-up of a fiber that has finished
        };
        f.state.dequeued();
        if let Body::Unstarted(job) = &mut f.body {
            let job = job.take().expect("an unstarted fiber holds its job");
            if f.state.is_cancelled() {
                // Cancelled before it ever ran: no stack needed to say so.
                if let JobKind::Task(task) = &job.kind {
                    task.complete(Outcome::Cancelled);
                }
                return self.finished(id);
            }
            let state = f.state.clone();
            match self.stacks.take() {
                Ok(stack) => {
                    let co = self.coroutine(&state, stack, job);
                    if let Some(f) = self.fibers.get_mut(&id) {
                        f.body = Body::Running(co);
                    }
                }
                Err(e) => {
                    self.fibers.remove(&id);
                    return self.refuse(job, &e);
                }
            }
        }
        let Some(Fiber {
            body: Body::Running(co),
            line,
            state,
            ..
        }) = self.fibers.get_mut(&id)
        else {
            return;
        };
        LINE.with(|l| l.set(*line));
        let result = co.resume(());
        let state = state.clone();
        fiber::leave();
        LINE.with(|l| l.set(self.line));
        match result {
            CoroutineResult::Yield(Suspend::Wait) => {}
            CoroutineResult::Yield(Suspend::Yield) => {
                // Whatever arrived meanwhile goes first, then this fiber again.
                self.take_jobs();
                std::task::Wake::wake_by_ref(&state);
            }
            CoroutineResult::Return(()) => self.finished(id),
        }
    }

    fn finished(&mut self, id: FiberId) {
        if let Some(done) = self.fibers.remove(&id)
            && let Some(key) = done.serial
        {
            self.next_serial(key);
        }
    }

    fn next_serial(&mut self, key: usize) {
        let next = self.serial.get_mut(&key).and_then(VecDeque::pop_front);
        match next {
            Some(job) => self.spawn(job),
            None => {
                self.serial.remove(&key);
            }
        }
    }

    /// Runs ready fibers until the queue is empty (false) or the root is woken (true).
    /// With `stop_on_interrupt`, returns early once Ctrl-C is pressed so the root can act.
    fn run_ready(&mut self, stop_on_interrupt: bool) -> bool {
        loop {
            self.take_jobs();
            if stop_on_interrupt && self.bridge.cancel().is_tripped() {
                return false;
            }
            match self.ready.pop() {
                None => return false,
                Some(ROOT) => {
                    self.root.dequeued();
                    return true;
                }
                Some(id) => self.resume(id),
            }
        }
    }

    /// Sleeps until Ctrl-C, a wake-up, a job or `until` (the status line's next redraw):
    /// the only place the script thread blocks.
    fn park(&mut self, until: Option<std::time::Instant>) {
        if !self.ready.is_empty() || self.bridge.cancel().is_tripped() {
            return;
        }
        // Pages of idle stacks go back only once nothing runs: while fibers come and go
        // (10,000 tasks finishing one by one) the stacks they free are about to be reused.
        if self.fibers.is_empty() {
            self.stacks.trim();
        }
        let handle = self.bridge.handle().clone();
        let (cancel, ready, jobs) = (self.bridge.cancel().clone(), &self.ready, &mut self.jobs);
        let job = handle.block_on(async {
            let redraw = async {
                match until {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                _ = cancel.cancelled() => None,
                _ = ready.notify.notified() => None,
                job = jobs.recv() => job,
                () = redraw => None,
            }
        });
        if let Some(job) = job {
            self.start(job);
        }
    }

    /// Runs every fiber ready now once (and the jobs already posted), then returns: the
    /// root's `yield_now`.
    fn run_ready_once(&mut self) {
        self.take_jobs();
        let mut root_woken = false;
        for _ in 0..self.ready.len() {
            match self.ready.pop() {
                Some(ROOT) => {
                    self.root.dequeued();
                    root_woken = true;
                }
                Some(id) => self.resume(id),
                None => break,
            }
        }
        if root_woken {
            std::task::Wake::wake_by_ref(&self.root);
        }
    }

    /// Ctrl-C during line `line`: cancels every fiber it started and runs them to their
    /// end, so their sockets are closed before the prompt comes back.
    pub fn cancel_line(&mut self, line: u64) {
        self.cancel_where(|f| f.line == line && line != 0);
    }

    /// Ctrl-C at the prompt: stops the callback runs in progress. Tasks keep running.
    fn cancel_callbacks(&mut self) {
        self.cancel_where(|f| f.kind == Kind::Callback);
    }

    fn cancel_where(&mut self, doomed: impl Fn(&Fiber) -> bool) {
        self.bridge.cancel().reset();
        // Tasks created but not started yet belong to the line too.
        self.take_jobs();
        let states: Vec<Arc<FiberState>> = self
            .fibers
            .values()
            .filter(|f| doomed(f))
            .map(|f| f.state.clone())
            .collect();
        for s in &states {
            s.cancel();
        }
        // A cancelled fiber ends at its next wait or Rhai operation; a few rounds are
        // enough unless one is stuck in native code, which dropping it below undoes.
        for _ in 0..8 {
            if states.iter().all(|s| !self.fibers.contains_key(&s.id)) {
                return;
            }
            self.run_ready(false);
        }
        for s in &states {
            self.fibers.remove(&s.id);
        }
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        // Let every fiber end through its own error path (closing its sockets) before
        // the stacks go; the runtime context is needed to drop timers and sockets.
        let handle = self.bridge.handle().clone();
        let _runtime = handle.enter();
        self.cancel_where(|_| true);
        self.fibers.clear();
    }
}

/// Runs one job's closure on its fiber and delivers the result.
fn run_job(engine: &Engine, report: &Reporter, state: &FiberState, job: &mut Job) {
    let result = call_job(engine, state, job);
    deliver(report, job, result);
}

/// The closure's call, in a frame of its own: a waiting task keeps every stack page its
/// frames reach, and what [`deliver`] needs afterwards (an error's text) would otherwise
/// sit in the same frame below every Rhai call the closure makes.
#[inline(never)]
fn call_job(
    engine: &Engine,
    state: &FiberState,
    job: &mut Job,
) -> Result<Dynamic, Box<EvalAltResult>> {
    if state.is_cancelled() {
        return Err(super::bridge::cancelled(rhai::Position::NONE));
    }
    let ctx = job.site.context(engine);
    let args = std::mem::take(&mut job.args);
    job.callback.call_within_context::<Dynamic>(&ctx, args)
}

#[inline(never)]
fn deliver(report: &Reporter, job: &mut Job, result: Result<Dynamic, Box<EvalAltResult>>) {
    match std::mem::replace(&mut job.kind, JobKind::Callback(None)) {
        JobKind::Task(task) => {
            task.complete(Outcome::of(&result));
        }
        JobKind::Callback(done) => {
            if let Err(e) = &result {
                report_callback_error(report, e);
            }
            if let Some(done) = done {
                done(result.map_err(|e| e.to_string()));
            }
        }
    }
}

fn report_callback_error(report: &Reporter, e: &EvalAltResult) {
    let err = ScriptError::from_eval(e);
    let text = if err.interrupted {
        "callback interrupted".to_string()
    } else {
        format!("callback error: {}", err.render("<callback>", ""))
    };
    report(&text);
}

/// Installs a scheduler as this thread's root driver for as long as the guard lives.
pub struct Driver {
    previous: Option<Rc<RefCell<Scheduler>>>,
    /// The engine the scheduler had before (a driver installed around this one).
    previous_engine: Option<Arc<Engine>>,
}

impl Driver {
    /// `line` is the evaluation starting now (0 while idle); `engine` runs its fibers.
    pub fn install(sched: &Rc<RefCell<Scheduler>>, line: u64, engine: &Arc<Engine>) -> Self {
        let previous_engine = {
            let mut s = sched.borrow_mut();
            s.line = line;
            s.engine.replace(engine.clone())
        };
        LINE.with(|l| l.set(line));
        let previous = DRIVER.with(|d| d.borrow_mut().replace(sched.clone()));
        Self {
            previous,
            previous_engine,
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let previous = self.previous.take();
        if let Some(s) = DRIVER.with(|d| std::mem::replace(&mut *d.borrow_mut(), previous)) {
            let mut s = s.borrow_mut();
            s.line = 0;
            s.engine = self.previous_engine.take();
        }
        LINE.with(|l| l.set(0));
    }
}

fn driver() -> Option<Rc<RefCell<Scheduler>>> {
    DRIVER.with(|d| d.borrow().clone())
}

/// What the root does when Ctrl-C arrives while it waits.
#[derive(Clone, Copy, PartialEq, Eq)]
enum OnInterrupt {
    /// Give up the wait: the line is interrupted.
    Stop,
    /// Stop the callbacks in progress and keep waiting (the idle prompt).
    CancelCallbacks,
}

/// Awaits `fut` on the root stack, running fibers meanwhile. `None` means Ctrl-C.
pub fn wait_at_root<F: Future>(bridge: &Bridge, fut: F) -> Option<F::Output> {
    drive(bridge, fut, OnInterrupt::Stop)
}

/// Waits for `fut` (the REPL's next line) while tasks and callbacks run.
pub fn idle<F: Future>(bridge: &Bridge, fut: F) -> F::Output {
    drive(bridge, fut, OnInterrupt::CancelCallbacks).expect("the idle wait is not interrupted")
}

/// `yield_now()`: lets every runnable fiber (and posted callback) run once.
pub fn yield_now(bridge: &Bridge) -> Result<(), fiber::Cancelled> {
    if let Some(r) = fiber::yield_now() {
        return r;
    }
    if let Some(sched) = driver() {
        sched.borrow_mut().run_ready_once();
    }
    if bridge.cancel().is_tripped() {
        return Err(fiber::Cancelled);
    }
    Ok(())
}

fn drive<F: Future>(bridge: &Bridge, fut: F, on_interrupt: OnInterrupt) -> Option<F::Output> {
    let Some(sched) = driver() else {
        return block_alone(bridge, fut, on_interrupt);
    };
    let waker = Waker::from(sched.borrow().root.clone());
    let mut fut = pin!(fut);
    // The line's own waits show what they wait for (from the first time it is pending);
    // the idle prompt's never do.
    let mut meter: Option<status::Meter> = None;
    loop {
        if bridge.cancel().is_tripped() {
            match on_interrupt {
                OnInterrupt::Stop => return None,
                OnInterrupt::CancelCallbacks => sched.borrow_mut().cancel_callbacks(),
            }
        }
        if let Poll::Ready(v) = fut.as_mut().poll(&mut Context::from_waker(&waker)) {
            return Some(v);
        }
        if on_interrupt == OnInterrupt::Stop && meter.is_none() {
            meter = Some(status::Meter::start());
        }
        let mut s = sched.borrow_mut();
        while !s.run_ready(true) && !bridge.cancel().is_tripped() {
            s.park(meter.as_ref().and_then(status::Meter::next_draw));
            if let Some(m) = meter.as_mut() {
                m.draw();
            }
        }
    }
}

/// A wait with no scheduler installed (a call outside any evaluation): blocks the thread
/// on the future alone, still cancellable.
fn block_alone<F: Future>(bridge: &Bridge, fut: F, on_interrupt: OnInterrupt) -> Option<F::Output> {
    let _runtime = bridge.handle().enter();
    let mut fut = pin!(fut);
    loop {
        let got = bridge.handle().block_on(async {
            tokio::select! {
                biased;
                _ = bridge.cancel().cancelled() => None,
                v = &mut fut => Some(v),
            }
        });
        match (got, on_interrupt) {
            (Some(v), _) => return Some(v),
            (None, OnInterrupt::Stop) => return None,
            (None, OnInterrupt::CancelCallbacks) => bridge.cancel().reset(),
        }
    }
}
