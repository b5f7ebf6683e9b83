//! Figures an operation updates while it runs, for whoever shows its progress (the shell's
//! status line: `start(): 3 of 8 STUN requests answered`). Counting costs two atomic adds;
//! nobody has to read them.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// How many of the requests sent so far were answered. Clones count together.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    counts: Arc<[AtomicUsize; 2]>,
}

impl Tally {
    /// `n` more requests are on their way.
    pub fn expect(&self, n: usize) {
        self.counts[1].fetch_add(n, Ordering::Relaxed);
    }

    /// One of them was answered.
    pub fn answered(&self) {
        self.counts[0].fetch_add(1, Ordering::Relaxed);
    }

    /// (answered, expected) so far.
    pub fn counts(&self) -> (usize, usize) {
        (
            self.counts[0].load(Ordering::Relaxed),
            self.counts[1].load(Ordering::Relaxed),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_count_together() {
        let t = Tally::default();
        let c = t.clone();
        t.expect(8);
        c.answered();
        c.answered();
        t.expect(2);
        assert_eq!(t.counts(), (2, 10));
    }
}
