//! Progress while waiting: one line saying what a long await waits for, on the terminal.
//!
//! A binding that waits says what for with [`wait`] (`recv: waiting up to 3 s`; a label
//! is a closure, so figures the net layer updates, such as STUN answers so far, are read
//! when the line is drawn). The scheduler, while the line being evaluated waits, asks a
//! [`Meter`] when to wake next and lets it draw: nothing in the first [`DELAY`], then the
//! label and the time so far, redrawn every [`EVERY`], erased when the wait ends. A wait
//! that said nothing (a task awaited, `gather`) shows as `waiting`.
//!
//! Only the line's own waits count: a task or callback waiting in its fiber meanwhile
//! pushes no label (fibers end in any order, and the line is what a person watches).
//! Only the REPL on a terminal installs somewhere to draw ([`install`]); scripts, pipes
//! and `NO_COLOR` never do, so for them the whole module costs a thread-local read.
//! Everything is per script thread: the thread that evaluates is the one that waits.

use super::bridge;
use super::sched::fiber;
use crate::net::progress::Tally;
use rhai::{EvalAltResult, NativeCallContext};
use std::cell::RefCell;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a wait goes unremarked.
pub const DELAY: Duration = Duration::from_millis(300);
/// How often the line is redrawn after that.
pub const EVERY: Duration = Duration::from_millis(100);
/// Longer lines are cut, so the line never wraps (an erase only clears one row).
pub const WIDTH: usize = 72;

/// What a wait is for, computed when the line is drawn.
pub type Label = Arc<dyn Fn() -> String + Send + Sync>;

/// Where the line goes: `Some(text)` draws or redraws it, `None` erases it.
pub trait StatusOut: Send + Sync {
    fn status(&self, line: Option<&str>);
}

thread_local! {
    /// The labels of the waits in progress on this thread, innermost last.
    static LABELS: RefCell<Vec<Label>> = const { RefCell::new(Vec::new()) };
    static OUT: RefCell<Option<Arc<dyn StatusOut>>> = const { RefCell::new(None) };
}

/// Shows this thread's waits on `out` from now on (the REPL, on a terminal only).
pub fn install(out: Arc<dyn StatusOut>) {
    OUT.with(|o| *o.borrow_mut() = Some(out));
}

/// Awaits like `bridge::wait`, saying what for while it lasts.
#[inline(always)] // the future is not copied into one more frame that stays while it waits
pub fn wait<T, E>(
    ctx: &NativeCallContext,
    label: impl Fn() -> String + Send + Sync + 'static,
    fut: impl Future<Output = Result<T, E>>,
) -> Result<T, Box<EvalAltResult>>
where
    E: Into<Box<EvalAltResult>>,
{
    let _label = Labelled::push(label);
    bridge::wait(ctx, fut)
}

/// Pops its label when the wait ends, however it ends. It holds none inside a fiber or
/// where nothing draws the line.
struct Labelled(bool);

impl Labelled {
    fn push(label: impl Fn() -> String + Send + Sync + 'static) -> Self {
        if fiber::in_fiber() || OUT.with(|o| o.borrow().is_none()) {
            return Labelled(false);
        }
        LABELS.with(|l| l.borrow_mut().push(Arc::new(label)));
        Labelled(true)
    }
}

impl Drop for Labelled {
    fn drop(&mut self) {
        if self.0 {
            LABELS.with(|l| l.borrow_mut().pop());
        }
    }
}

/// What the line waits for now.
fn current_text() -> String {
    LABELS
        .with(|l| l.borrow().last().cloned())
        .map_or_else(|| "waiting".to_string(), |label| label())
}

/// `start(): 3 of 8 STUN requests answered` (one request per server and card address),
/// read from `tally` when drawn.
pub fn stun_answers(what: &'static str, tally: Tally) -> impl Fn() -> String + Send + Sync {
    move || {
        let (answered, asked) = tally.counts();
        format!("{what}: {answered} of {asked} STUN requests answered")
    }
}

/// A duration as a label says it: `3 s`, `0.5 s`; anything past a day is no limit.
pub fn seconds(d: Duration) -> Option<String> {
    let s = d.as_secs_f64();
    if s > 86_400.0 {
        return None;
    }
    Some(if s.fract() == 0.0 {
        format!("{s:.0} s")
    } else {
        format!("{s:.1} s")
    })
}

/// `recv: waiting up to 3 s`, or `recv: waiting` without a limit worth saying.
pub fn up_to(what: &str, timeout: Duration) -> String {
    match seconds(timeout) {
        Some(s) => format!("{what}: waiting up to {s}"),
        None => format!("{what}: waiting"),
    }
}

/// The line for a label after `elapsed`, cut to [`WIDTH`].
pub fn line(label: &str, elapsed: Duration) -> String {
    let full = format!("{label}, {:.1} s", elapsed.as_secs_f64());
    if full.chars().count() <= WIDTH {
        return full;
    }
    let cut: String = full.chars().take(WIDTH - 3).collect();
    format!("{cut}...")
}

/// One wait of the line being evaluated, as the scheduler sees it.
pub struct Meter {
    started: Instant,
    /// When the line was last drawn.
    drawn: Option<Instant>,
    out: Option<Arc<dyn StatusOut>>,
}

impl Meter {
    /// A wait starting now; inert where nothing was installed.
    pub fn start() -> Meter {
        Meter {
            started: Instant::now(),
            drawn: None,
            out: OUT.with(|o| o.borrow().clone()),
        }
    }

    /// When the scheduler should wake to redraw, or `None` when there is nowhere to draw.
    pub fn next_draw(&self) -> Option<Instant> {
        self.out.as_ref()?;
        Some(match self.drawn {
            None => self.started + DELAY,
            Some(at) => at + EVERY,
        })
    }

    /// Draws the line when it is due; call it whenever the waiting thread wakes (it may
    /// wake far more often than the line changes).
    pub fn draw(&mut self) {
        let Some(out) = &self.out else {
            return;
        };
        let now = Instant::now();
        if self.next_draw().is_some_and(|due| now < due) {
            return;
        }
        out.status(Some(&line(&current_text(), now - self.started)));
        self.drawn = Some(now);
    }
}

impl Drop for Meter {
    fn drop(&mut self) {
        if self.drawn.is_some()
            && let Some(out) = &self.out
        {
            out.status(None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Screen(Mutex<Vec<Option<String>>>);

    impl StatusOut for Screen {
        fn status(&self, line: Option<&str>) {
            self.0.lock().unwrap().push(line.map(str::to_string));
        }
    }

    #[test]
    fn labels_say_limits_and_counts() {
        assert_eq!(
            up_to("recv", Duration::from_secs(3)),
            "recv: waiting up to 3 s"
        );
        assert_eq!(
            up_to("recv", Duration::from_millis(500)),
            "recv: waiting up to 0.5 s"
        );
        assert_eq!(
            up_to("accept", Duration::from_secs(3_000_000_000)),
            "accept: waiting"
        );
        let tally = Tally::default();
        let label = stun_answers("start()", tally.clone());
        tally.expect(8);
        tally.answered();
        assert_eq!(label(), "start(): 1 of 8 STUN requests answered");
    }

    #[test]
    fn lines_carry_the_time_and_never_wrap() {
        assert_eq!(
            line("recv: waiting up to 3 s", Duration::from_millis(1234)),
            "recv: waiting up to 3 s, 1.2 s"
        );
        let long = line(&"x".repeat(200), Duration::ZERO);
        assert_eq!(long.chars().count(), WIDTH);
        assert!(long.ends_with("..."));
    }

    #[test]
    fn a_meter_draws_after_the_delay_then_every_tick_and_erases_at_the_end() {
        // Nothing installed (a script): no label kept, nothing to wake for, nothing drawn.
        let unseen = Labelled::push(|| "recv: waiting up to 3 s".to_string());
        assert!(!unseen.0, "a label kept where nothing draws it");
        let mut m = Meter::start();
        assert_eq!(m.next_draw(), None);
        m.started -= DELAY * 2;
        m.draw();
        drop((m, unseen));

        let screen = Arc::new(Screen::default());
        install(screen.clone());
        let _label = Labelled::push(|| "recv: waiting up to 3 s".to_string());
        let mut m = Meter::start();
        assert_eq!(m.next_draw(), Some(m.started + DELAY));
        m.draw();
        assert!(screen.0.lock().unwrap().is_empty(), "too early to draw");
        m.started -= DELAY + Duration::from_millis(220);
        m.draw();
        // Woken again at once: not due yet, nothing drawn.
        m.draw();
        let next = m.next_draw().unwrap();
        assert_eq!(next, m.drawn.unwrap() + EVERY);
        drop(m);
        let drawn = screen.0.lock().unwrap().clone();
        assert_eq!(drawn.len(), 2, "{drawn:?}");
        assert!(
            drawn[0]
                .as_deref()
                .unwrap()
                .starts_with("recv: waiting up to 3 s, 0.5"),
            "{drawn:?}"
        );
        assert_eq!(drawn[1], None);

        // A wait that said nothing shows as waiting; one never drawn erases nothing.
        drop(_label);
        let mut m = Meter::start();
        m.started -= DELAY;
        m.draw();
        drop(m);
        drop(Meter::start());
        let drawn = screen.0.lock().unwrap().clone();
        assert!(drawn[2].as_deref().unwrap().starts_with("waiting, 0."));
        assert_eq!(drawn[3..], [None], "{drawn:?}");
        OUT.with(|o| *o.borrow_mut() = None);
    }
}
