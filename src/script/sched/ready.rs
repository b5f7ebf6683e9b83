//! The ready queue: which fibers a wake-up made runnable, in the order they woke.
//!
//! Wakers are called from anywhere (the runtime's worker thread when a socket or timer
//! is ready, another fiber completing a task); the scheduler drains the queue on the
//! script thread. Each fiber is queued at most once until it runs, however often it is
//! woken meanwhile.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Wake;
use tokio::sync::Notify;

/// Fibers are numbered from 1; 0 is the root (the evaluation or idle loop that drives them).
pub type FiberId = u64;
pub const ROOT: FiberId = 0;

#[derive(Default)]
pub struct ReadyQueue {
    queue: Mutex<VecDeque<FiberId>>,
    /// Wakes the scheduler when it sleeps with nothing to run.
    pub notify: Notify,
}

impl ReadyQueue {
    fn push(&self, id: FiberId) {
        self.queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back(id);
        self.notify.notify_one();
    }

    pub fn pop(&self) -> Option<FiberId> {
        self.queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop_front()
    }

    pub fn len(&self) -> usize {
        self.queue.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
    }
}

/// One fiber's wake-up handle and cancel flag.
pub struct FiberState {
    pub id: FiberId,
    /// Shared with the fiber's task, if it runs one: `task.cancel()` raises it.
    pub cancelled: Arc<AtomicBool>,
    queued: AtomicBool,
    ready: Arc<ReadyQueue>,
}

impl FiberState {
    pub fn new(id: FiberId, cancelled: Arc<AtomicBool>, ready: Arc<ReadyQueue>) -> Arc<Self> {
        Arc::new(Self {
            id,
            cancelled,
            queued: AtomicBool::new(false),
            ready,
        })
    }

    /// Called just before the fiber runs: a wake-up from now on queues it again.
    pub fn dequeued(&self) {
        self.queued.store(false, Ordering::Release);
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }

    /// Raises the cancel flag and makes sure the fiber runs soon to notice it.
    pub fn cancel(self: &Arc<Self>) {
        self.cancelled.store(true, Ordering::Release);
        self.wake_by_ref();
    }
}

impl Wake for FiberState {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.queued.swap(true, Ordering::AcqRel) {
            self.ready.push(self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Waker;

    #[test]
    fn a_fiber_is_queued_once_until_it_runs() {
        let ready = Arc::new(ReadyQueue::default());
        let a = FiberState::new(1, Arc::default(), ready.clone());
        let b = FiberState::new(2, Arc::default(), ready.clone());
        let (wa, wb) = (Waker::from(a.clone()), Waker::from(b.clone()));
        wa.wake_by_ref();
        wb.wake_by_ref();
        wa.wake_by_ref();
        assert_eq!(ready.pop(), Some(1));
        a.dequeued();
        wa.wake_by_ref();
        assert_eq!(ready.pop(), Some(2));
        assert_eq!(ready.pop(), Some(1));
        assert_eq!(ready.pop(), None);
    }
}
