//! The inside of a fiber: how code running on a fiber's own stack waits.
//!
//! A fiber is a stackful coroutine running one Rhai call (a task's closure, one callback
//! run). Rhai's interpreter is recursive, so a call that waits deep inside nested
//! functions can only be set aside whole, stack and all: [`wait`] polls its future once
//! and, while it is pending, switches back to the scheduler, which resumes the fiber when
//! the future's waker fires. Nothing of another fiber sits on this stack, so each fiber
//! resumes as soon as its own wait ends, in any order.
//!
//! The running fiber is found through a thread-local pointer to a [`Running`] record that
//! lives on the fiber's stack; the scheduler clears it whenever control is back on the
//! root stack, so [`wait`] outside a fiber knows to drive the scheduler instead.

use super::ready::FiberState;
use corosensei::stack::{DefaultStack, Stack, StackPointer};
use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

/// Why a fiber hands control back.
pub enum Suspend {
    /// Waiting for its waker.
    Wait,
    /// Runnable, but letting everything already queued go first (`yield_now`).
    Yield,
}

pub type Yielder = corosensei::Yielder<(), Suspend>;

/// Why a wait ended without its future's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cancelled;

/// What the running fiber keeps on its own stack while it runs.
pub struct Running {
    yielder: *const Yielder,
    waker: Waker,
    state: Arc<FiberState>,
    /// Lowest usable address of the stack (just above its guard page).
    stack_floor: usize,
}

thread_local! {
    static CURRENT: Cell<*const Running> = const { Cell::new(std::ptr::null()) };
    static DEEPEST_WAIT: Cell<usize> = const { Cell::new(0) };
    /// Where fibers poll their futures (see `poll_aside`); made on first use.
    static POLL_STACK: DefaultStack = DefaultStack::new(POLL_STACK_SIZE).expect("a stack to poll futures on");
}

/// Polling a pipe opening or a close runs deeper than the Rhai call that waits for it.
const POLL_STACK_SIZE: usize = if cfg!(debug_assertions) {
    8 << 20
} else {
    1 << 20
};

/// Keeps this much stack free below any Rhai operation: native calls and the futures they
/// poll between two operations must fit in it.
pub const STACK_RESERVE: usize = if cfg!(debug_assertions) {
    512 * 1024
} else {
    128 * 1024
};

/// Runs `body` as the fiber's code: called first thing on the fiber's stack.
pub fn enter(yielder: &Yielder, state: Arc<FiberState>, stack_floor: usize, body: impl FnOnce()) {
    let running = Running {
        yielder,
        waker: Waker::from(state.clone()),
        state,
        stack_floor,
    };
    CURRENT.with(|c| c.set(&running));
    body();
    CURRENT.with(|c| c.set(std::ptr::null()));
}

/// Marks that control is back on the root stack.
pub fn leave() {
    CURRENT.with(|c| c.set(std::ptr::null()));
}

fn current() -> Option<&'static Running> {
    let ptr = CURRENT.with(Cell::get);
    // SAFETY: the pointer is set by `enter` to a value on the running fiber's stack and
    // cleared whenever that fiber is not running (`leave`, and again after each suspend
    // returns), so while it is non-null it points to a live `Running` of this thread.
    unsafe { ptr.as_ref() }
}

/// How deep into its stack a fiber of this thread has been when it suspended to wait, at
/// the most, in bytes, since the last call (which starts the count again). A waiting task
/// keeps every stack page it touched, so this is most of what one costs: for tests and
/// measurements (`tests/tasks.rs` holds the pipe and sleep paths to a bound).
pub fn take_deepest_wait() -> usize {
    DEEPEST_WAIT.with(|d| d.replace(0))
}

pub fn in_fiber() -> bool {
    current().is_some()
}

/// Why the running fiber must stop at its next Rhai operation, if it must: its task was
/// cancelled, or it is about to run out of stack.
pub fn must_stop() -> Option<&'static str> {
    let running = current()?;
    if running.state.is_cancelled() {
        return Some("cancelled");
    }
    let here = stack_pointer();
    (here.saturating_sub(running.stack_floor) < STACK_RESERVE).then_some(
        "stack overflow: calls in this task nest too deeply for its stack; \
         recurse less or move the work out of the task",
    )
}

fn stack_pointer() -> usize {
    let marker = 0u8;
    std::hint::black_box(&marker) as *const u8 as usize
}

/// Waits for `fut` inside the running fiber: polls it now, and suspends the fiber while
/// it is pending. `None` if no fiber is running (the caller drives the scheduler itself).
///
/// A waiting task keeps every stack page it touched, so what stays live on its stack
/// while it waits is kept small: the future goes to the heap (one allocation per wait,
/// as asyncio makes a coroutine frame per call), and the loop that polls and suspends is
/// one function for every future type ([`wait_erased`]). The caller still built the
/// future in its own frame: a binding whose future is large boxes it inside its async
/// block instead, so the state is made when first polled, on the poll stack (as
/// `script::pipe`'s bindings do), and keeps what it needs before and after the wait in
/// frames of their own.
#[inline(always)]
pub fn wait<F: Future>(fut: F) -> Option<Result<F::Output, Cancelled>> {
    let running = current()?;
    Some(wait_pinned(running, Box::pin(fut).as_mut()))
}

#[inline(always)]
fn wait_pinned<F: Future + ?Sized>(
    running: &Running,
    mut fut: Pin<&mut F>,
) -> Result<F::Output, Cancelled> {
    let mut out = None;
    let mut poll = |cx: &mut Context<'_>| match fut.as_mut().poll(cx) {
        Poll::Ready(v) => {
            out = Some(v);
            true
        }
        Poll::Pending => false,
    };
    wait_erased(running, &mut poll)?;
    Ok(out.expect("a future that reported ready left its value"))
}

/// Polls (on the poll stack) until `poll` says ready, suspending the fiber in between.
#[inline(never)]
fn wait_erased(
    running: &Running,
    poll: &mut dyn FnMut(&mut Context<'_>) -> bool,
) -> Result<(), Cancelled> {
    loop {
        if running.state.is_cancelled() {
            return Err(Cancelled);
        }
        if poll_aside(poll, &running.waker) {
            return Ok(());
        }
        let depth = (running.stack_floor + super::STACK_SIZE).saturating_sub(stack_pointer());
        DEEPEST_WAIT.with(|d| d.set(d.get().max(depth)));
        suspend(running, Suspend::Wait);
    }
}

/// Polls on the thread's one poll stack instead of the fiber's own: a fiber keeps every
/// stack page it ever touched for as long as it lives, and the deepest moment of a
/// waiting task is usually a poll (connecting, closing), not its Rhai frames. Polls never
/// suspend and no Rhai code runs inside one, so one stack serves every fiber in turn.
fn poll_aside(poll: &mut dyn FnMut(&mut Context<'_>) -> bool, waker: &Waker) -> bool {
    POLL_STACK.with(|stack| {
        corosensei::on_stack(Borrowed(stack), || poll(&mut Context::from_waker(waker)))
    })
}

/// The poll stack, lent for one call.
struct Borrowed<'a>(&'a DefaultStack);

// SAFETY: the stack it lends is a `DefaultStack` (guard page included) that outlives the
// call, and nothing else runs on it meanwhile: polls do not nest (no Rhai code, hence no
// `wait`, runs inside a poll) and the script thread runs one poll at a time.
unsafe impl Stack for Borrowed<'_> {
    fn base(&self) -> StackPointer {
        self.0.base()
    }

    fn limit(&self) -> StackPointer {
        self.0.limit()
    }
}

/// Lets every fiber already runnable go first. `None` outside a fiber.
pub fn yield_now() -> Option<Result<(), Cancelled>> {
    let running = current()?;
    suspend(running, Suspend::Yield);
    Some(if running.state.is_cancelled() {
        Err(Cancelled)
    } else {
        Ok(())
    })
}

fn suspend(running: &Running, why: Suspend) {
    // SAFETY: `yielder` was handed to this fiber's body by corosensei and lives on this
    // fiber's stack until the body returns; we are on that stack now.
    unsafe { &*running.yielder }.suspend(why);
    // Other fibers ran meanwhile and pointed CURRENT at themselves.
    CURRENT.with(|c| c.set(running));
}
