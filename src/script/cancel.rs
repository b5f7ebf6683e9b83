//! The interrupt signal shared by the terminal, the runtime and the script thread.
//!
//! Ctrl-C must stop two very different things: a Rust future the script thread is
//! blocked on (an awaited network call) and a busy Rhai loop that never awaits. The
//! first listens on [`Cancel::cancelled`]; the second is stopped by the engine's
//! `on_progress` hook reading [`Cancel::is_tripped`]. One flag serves both so that a
//! single key press can never stop one and miss the other.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use tokio::sync::Notify;

/// A resettable, cloneable interrupt flag with an async wake-up.
#[derive(Clone, Default)]
pub struct Cancel {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    tripped: AtomicBool,
    /// Interrupts seen since the last reset: script mode forces an exit on the second.
    count: AtomicU32,
    notify: Notify,
}

impl Cancel {
    pub fn new() -> Self {
        Self::default()
    }

    /// Raises the flag and wakes every waiter. Returns how many interrupts arrived
    /// since the last [`reset`](Self::reset), this one included.
    pub fn trip(&self) -> u32 {
        self.inner.tripped.store(true, Ordering::SeqCst);
        self.inner.notify.notify_waiters();
        self.inner.count.fetch_add(1, Ordering::SeqCst) + 1
    }

    pub fn is_tripped(&self) -> bool {
        self.inner.tripped.load(Ordering::SeqCst)
    }

    /// Lowers the flag before the next piece of user code runs.
    pub fn reset(&self) {
        self.inner.tripped.store(false, Ordering::SeqCst);
        self.inner.count.store(0, Ordering::SeqCst);
    }

    /// Completes once the flag is raised (at once if it already is).
    pub async fn cancelled(&self) {
        loop {
            let notified = self.inner.notify.notified();
            tokio::pin!(notified);
            // Register interest before reading the flag, so a trip between the read
            // and the await cannot be lost.
            notified.as_mut().enable();
            if self.is_tripped() {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn trip_wakes_a_waiter_and_counts() {
        let c = Cancel::new();
        let waiter = tokio::spawn({
            let c = c.clone();
            async move { c.cancelled().await }
        });
        tokio::task::yield_now().await;
        assert_eq!(c.trip(), 1);
        assert_eq!(c.trip(), 2);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("waiter woke")
            .unwrap();
        c.reset();
        assert!(!c.is_tripped());
        assert_eq!(c.trip(), 1);
    }
}
