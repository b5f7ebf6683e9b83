//! Which TCP connections the STUN server keeps when too many are open: a cap, and the one
//! idle longest goes first. Pure (time is a parameter, the value is whatever closes a
//! connection when dropped); `tcp_server.rs` holds one table for all its listeners.
//!
//! "Idle" is measured from the last whole request answered (or from the accept): a peer
//! that sends half a header and stalls, or nothing at all, is the first to make room, and a
//! client asking again and again keeps its place.

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

/// A connection's handle in the table.
pub type ConnectionId = u64;

/// Open connections, oldest activity first.
#[derive(Debug)]
pub struct Connections<V> {
    cap: usize,
    next_id: ConnectionId,
    entries: HashMap<ConnectionId, (Instant, V)>,
    /// (last activity, id): the first element is the one to close. The id breaks ties
    /// between connections active at the same instant, oldest accept first.
    by_activity: BTreeSet<(Instant, ConnectionId)>,
}

impl<V> Connections<V> {
    /// A table that keeps at most `cap` connections (at least one).
    pub fn new(cap: usize) -> Self {
        Connections {
            cap: cap.max(1),
            next_id: 0,
            entries: HashMap::new(),
            by_activity: BTreeSet::new(),
        }
    }

    /// Adds a connection accepted at `now`. When that goes past the cap, the connection
    /// idle longest is taken out and returned, so the caller can close it.
    pub fn admit(&mut self, now: Instant, value: V) -> (ConnectionId, Option<V>) {
        let id = self.next_id;
        self.next_id += 1;
        self.entries.insert(id, (now, value));
        self.by_activity.insert((now, id));
        let evicted = if self.entries.len() > self.cap {
            self.by_activity
                .first()
                .map(|&(_, oldest)| oldest)
                .and_then(|oldest| self.remove(oldest))
        } else {
            None
        };
        (id, evicted)
    }

    /// Records activity on `id` (a request answered). Unknown ids are ignored: the
    /// connection may have been evicted meanwhile.
    pub fn touch(&mut self, id: ConnectionId, now: Instant) {
        if let Some((last, _)) = self.entries.get_mut(&id) {
            self.by_activity.remove(&(*last, id));
            *last = now;
            self.by_activity.insert((now, id));
        }
    }

    /// Takes `id` out (its connection ended); `None` if it was not there.
    pub fn remove(&mut self, id: ConnectionId) -> Option<V> {
        let (last, value) = self.entries.remove(&id)?;
        self.by_activity.remove(&(last, id));
        Some(value)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    #[test]
    fn the_cap_evicts_the_longest_idle_first() {
        let t0 = Instant::now();
        let mut table = Connections::new(3);
        let (a, none) = table.admit(at(t0, 0), "a");
        assert!(none.is_none());
        let (b, _) = table.admit(at(t0, 1), "b");
        let (_c, _) = table.admit(at(t0, 2), "c");
        // `a` answers a request: `b` is now the longest idle.
        table.touch(a, at(t0, 3));
        let (_d, evicted) = table.admit(at(t0, 4), "d");
        assert_eq!(evicted, Some("b"));
        assert_eq!(table.len(), 3);
        // `b` ended twice over (evicted, then its task's own cleanup): harmless.
        assert_eq!(table.remove(b), None);
        table.touch(b, at(t0, 5));
        assert_eq!(table.len(), 3);
        let (_e, evicted) = table.admit(at(t0, 6), "e");
        assert_eq!(evicted, Some("c"));
    }

    #[test]
    fn ties_go_to_the_oldest_accept_and_removal_frees_a_place() {
        let now = Instant::now();
        let mut table = Connections::new(2);
        let (first, _) = table.admit(now, 1);
        let (second, _) = table.admit(now, 2);
        assert_eq!(table.admit(now, 3).1, Some(1));
        assert_eq!(table.remove(second), Some(2));
        assert_eq!(table.admit(now, 4).1, None);
        assert_eq!(table.remove(first), None);
        assert_eq!(table.len(), 2);
    }

    #[test]
    fn a_cap_of_zero_still_keeps_the_newest() {
        let now = Instant::now();
        let mut table = Connections::new(0);
        table.admit(now, 'x');
        assert_eq!(table.admit(now, 'y').1, Some('x'));
        assert_eq!(table.len(), 1);
    }
}
