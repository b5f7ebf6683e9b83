//! Subscription queues: which received messages a reader wants, kept until it asks.
//!
//! P2PD semantics (inventory §5.2, baseline §4.6), kept: a subscription is a byte regex that
//! matches *anywhere* (anchor with `^…$`) plus an optional peer, where port 0 means "any port
//! from that IP"; every matching subscription gets its own copy; a message matching none is
//! dropped; subscribing twice to the same key returns the same subscription.
//! Fixed: queues are bounded (default 1024, oldest dropped, drops counted) instead of growing
//! without limit, and asking for an unknown subscription is an error instead of `None`.
//!
//! Pure data structure: no sockets, no clock, no waiting. `Pipe::recv` adds the waiting.

use std::collections::VecDeque;
use std::fmt;
use std::net::{IpAddr, SocketAddr};

use regex::bytes::{Regex, RegexBuilder};

/// Longest pattern `subscribe` compiles. Compiling runs under the subscription lock the
/// reader needs too, and a 10 MB pattern takes seconds: far longer than any filter needs.
pub const MAX_PATTERN_LEN: usize = 4096;
/// Bound on a compiled pattern's size (the regex crate's default is 10 MB), so that a short
/// pattern such as `(a{1000}){1000}` fails fast instead of building a huge automaton.
const MAX_COMPILED_LEN: usize = 1 << 20;

/// Names one subscription of one pipe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubId(pub u64);

impl fmt::Display for SubId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// One received message: who sent it and the bytes.
pub type Message = (SocketAddr, Vec<u8>);

/// A regex that does not compile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRegex {
    pub pattern: String,
    pub reason: String,
}

/// The subscription asked for does not exist (never made, or unsubscribed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoSuchSub;

struct Subscription {
    id: SubId,
    /// Kept as text so re-subscribing with the same pattern finds this entry.
    pattern: String,
    /// `None` for an empty pattern: matches everything without running a regex.
    regex: Option<Regex>,
    peer: Option<SocketAddr>,
    queue: VecDeque<Message>,
}

impl Subscription {
    fn matches(&self, peer: SocketAddr, data: &[u8]) -> bool {
        let peer_ok = self.peer.is_none_or(|want| peer_matches(want, peer));
        peer_ok && self.regex.as_ref().is_none_or(|re| re.is_match(data))
    }

    /// Queue `message`, first dropping the oldest if full; returns how many were dropped.
    fn push(&mut self, message: Message, capacity: usize) -> u64 {
        let full = self.queue.len() >= capacity;
        if full {
            self.queue.pop_front();
        }
        self.queue.push_back(message);
        u64::from(full)
    }
}

/// IPv4-mapped IPv6 senders compare equal to their IPv4 form; zones and flow labels are
/// ignored; a wanted port of 0 accepts any port.
fn peer_matches(want: SocketAddr, got: SocketAddr) -> bool {
    canonical(want.ip()) == canonical(got.ip()) && (want.port() == 0 || want.port() == got.port())
}

fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

/// All subscriptions of one pipe.
pub struct Subscriptions {
    subs: Vec<Subscription>,
    next_id: u64,
    capacity: usize,
    dropped: u64,
}

impl Subscriptions {
    /// `capacity` is per subscription; 0 is taken as 1 so a queue can always hold the latest.
    pub fn new(capacity: usize) -> Self {
        Subscriptions {
            subs: Vec::new(),
            next_id: 1,
            capacity: capacity.max(1),
            dropped: 0,
        }
    }

    /// Add a subscription, or return the existing one with the same pattern and peer.
    /// `None` and `""` both match every message.
    pub fn subscribe(
        &mut self,
        pattern: Option<&str>,
        peer: Option<SocketAddr>,
    ) -> Result<SubId, BadRegex> {
        let pattern = pattern.unwrap_or("");
        if let Some(id) = self.find(Some(pattern), peer) {
            return Ok(id);
        }
        let bad = |reason: String| BadRegex {
            pattern: pattern.to_owned(),
            reason,
        };
        if pattern.len() > MAX_PATTERN_LEN {
            return Err(bad(format!(
                "{} bytes is longer than the {MAX_PATTERN_LEN} a subscription pattern may have",
                pattern.len()
            )));
        }
        let regex = if pattern.is_empty() {
            None
        } else {
            let compiled = RegexBuilder::new(pattern)
                .size_limit(MAX_COMPILED_LEN)
                .build()
                .map_err(|e| bad(e.to_string()))?;
            Some(compiled)
        };
        let id = SubId(self.next_id);
        self.next_id += 1;
        self.subs.push(Subscription {
            id,
            pattern: pattern.to_owned(),
            regex,
            peer,
            queue: VecDeque::new(),
        });
        Ok(id)
    }

    /// The subscription with exactly this pattern and peer, if any.
    pub fn find(&self, pattern: Option<&str>, peer: Option<SocketAddr>) -> Option<SubId> {
        let pattern = pattern.unwrap_or("");
        self.subs
            .iter()
            .find(|s| s.pattern == pattern && s.peer == peer)
            .map(|s| s.id)
    }

    /// Remove a subscription and its queued messages. `false` if it did not exist.
    pub fn unsubscribe(&mut self, id: SubId) -> bool {
        let before = self.subs.len();
        self.subs.retain(|s| s.id != id);
        self.subs.len() != before
    }

    pub fn contains(&self, id: SubId) -> bool {
        self.subs.iter().any(|s| s.id == id)
    }

    pub fn is_empty(&self) -> bool {
        self.subs.is_empty()
    }

    /// Queue the message in every matching subscription, dropping the oldest message of a
    /// full queue. The last matching subscription takes `data` itself, the others a copy, so
    /// the usual single match-all subscription costs no copy. Returns how many took it.
    pub fn deliver(&mut self, peer: SocketAddr, data: impl Into<Vec<u8>>) -> usize {
        let data = data.into();
        let Some(last) = self.subs.iter().rposition(|s| s.matches(peer, &data)) else {
            return 0;
        };
        let (before, rest) = self.subs.split_at_mut(last);
        let mut taken = 0;
        for sub in before.iter_mut().filter(|s| s.matches(peer, &data)) {
            self.dropped += sub.push((peer, data.clone()), self.capacity);
            taken += 1;
        }
        if let Some(sub) = rest.first_mut() {
            self.dropped += sub.push((peer, data), self.capacity);
            taken += 1;
        }
        taken
    }

    /// The oldest queued message of `id`, `Ok(None)` if its queue is empty.
    pub fn pop(&mut self, id: SubId) -> Result<Option<Message>, NoSuchSub> {
        let sub = self.subs.iter_mut().find(|s| s.id == id).ok_or(NoSuchSub)?;
        Ok(sub.queue.pop_front())
    }

    /// Messages dropped because a queue was full, over the life of the pipe.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn every_matching_subscription_gets_a_copy() {
        let mut subs = Subscriptions::new(8);
        let all = subs.subscribe(None, None).unwrap();
        let hello = subs.subscribe(Some("HELLO"), None).unwrap();
        let other = subs.subscribe(Some("^NOPE$"), None).unwrap();
        assert_eq!(subs.deliver(addr("127.0.0.1:5"), b"say HELLO 1"), 2);
        assert_eq!(subs.pop(all).unwrap().unwrap().1, b"say HELLO 1");
        assert_eq!(subs.pop(hello).unwrap().unwrap().1, b"say HELLO 1");
        assert_eq!(subs.pop(other).unwrap(), None);
    }

    #[test]
    fn subscribing_twice_returns_the_same_id() {
        let mut subs = Subscriptions::new(8);
        let a = subs.subscribe(Some("x"), None).unwrap();
        assert_eq!(subs.subscribe(Some("x"), None).unwrap(), a);
        assert_eq!(
            subs.subscribe(None, None).unwrap(),
            subs.subscribe(Some(""), None).unwrap()
        );
        assert_ne!(
            subs.subscribe(Some("x"), Some(addr("1.2.3.4:0"))).unwrap(),
            a
        );
    }

    #[test]
    fn port_zero_means_any_port_from_that_ip() {
        let mut subs = Subscriptions::new(8);
        let any_port = subs.subscribe(None, Some(addr("127.0.0.1:0"))).unwrap();
        let one_port = subs.subscribe(None, Some(addr("127.0.0.1:7"))).unwrap();
        subs.deliver(addr("127.0.0.1:9"), b"a");
        subs.deliver(addr("127.0.0.2:7"), b"b");
        subs.deliver(addr("127.0.0.1:7"), b"c");
        assert_eq!(subs.pop(any_port).unwrap().unwrap().1, b"a");
        assert_eq!(subs.pop(any_port).unwrap().unwrap().1, b"c");
        assert_eq!(subs.pop(one_port).unwrap().unwrap().1, b"c");
        assert_eq!(subs.pop(one_port).unwrap(), None);
    }

    #[test]
    fn mapped_ipv6_sender_matches_ipv4_filter() {
        let mut subs = Subscriptions::new(8);
        let id = subs.subscribe(None, Some(addr("127.0.0.1:0"))).unwrap();
        subs.deliver(addr("[::ffff:127.0.0.1]:9"), b"m");
        assert!(subs.pop(id).unwrap().is_some());
    }

    #[test]
    fn full_queue_drops_the_oldest_and_counts_it() {
        let mut subs = Subscriptions::new(2);
        let id = subs.subscribe(None, None).unwrap();
        for byte in [b"1", b"2", b"3"] {
            subs.deliver(addr("127.0.0.1:1"), byte);
        }
        assert_eq!(subs.dropped(), 1);
        assert_eq!(subs.pop(id).unwrap().unwrap().1, b"2");
    }

    #[test]
    fn unknown_subscription_and_bad_regex_are_errors() {
        let mut subs = Subscriptions::new(2);
        assert!(subs.pop(SubId(42)).is_err());
        let e = subs.subscribe(Some("("), None).unwrap_err();
        assert_eq!(e.pattern, "(");
        let id = subs.subscribe(None, None).unwrap();
        assert!(subs.unsubscribe(id));
        assert!(!subs.unsubscribe(id));
        assert!(subs.pop(id).is_err());
    }

    #[test]
    fn regex_matches_arbitrary_bytes() {
        let mut subs = Subscriptions::new(2);
        let id = subs.subscribe(Some(r"(?-u)\xff\x00"), None).unwrap();
        assert_eq!(subs.deliver(addr("127.0.0.1:1"), [1, 0xff, 0, 2]), 1);
        assert!(subs.pop(id).unwrap().is_some());
    }
}
