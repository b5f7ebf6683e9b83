//! What happens to bytes that arrive on a pipe, in P2PD's order: (1) relayed to linked
//! pipes, (2) handed to event observers, (3) queued in every matching subscription; and the
//! reading side of the API (`subscribe`, `recv`) plus linking (`add_pipe`, `del_pipe`).

use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::reader::Pull;
use super::{Error, Inner, Io, Message, Pipe, PipeEvent, Proto, SubId, deadline_after, lock};

/// Messages a `recv` reads from the socket for other subscriptions before it looks at
/// the clock (and a poll gives up).
const PULL_BATCH: usize = 64;

/// What [`Pipe::take`] found.
enum Taken {
    Message(Message),
    /// Read a batch of messages, none for this subscription: more may be coming.
    Flood,
    /// Nothing for this subscription; how to wait for more.
    Nothing(Pull),
}

impl Pipe {
    /// Receive what matches `pattern` (a byte regex matched anywhere; `None` or `""` = all)
    /// from `peer` (`None` = anyone; port 0 = any port of that IP). Each matching
    /// subscription gets its own copy. Subscribing twice returns the same id.
    pub fn subscribe(
        &self,
        pattern: Option<&str>,
        peer: Option<SocketAddr>,
    ) -> Result<SubId, Error> {
        lock(&self.inner.subs)
            .subscribe(pattern, peer)
            .map_err(|e| Error::BadRegex {
                pattern: e.pattern,
                reason: e.reason,
            })
    }

    /// The existing subscription with this exact pattern and peer, if any.
    pub fn find_subscription(
        &self,
        pattern: Option<&str>,
        peer: Option<SocketAddr>,
    ) -> Option<SubId> {
        lock(&self.inner.subs).find(pattern, peer)
    }

    /// Drop a subscription and its queue; `false` if it did not exist.
    pub fn unsubscribe(&self, sub: SubId) -> bool {
        lock(&self.inner.subs).unsubscribe(sub)
    }

    /// The oldest message queued for `sub`, waiting up to `timeout` for one; a zero timeout
    /// only polls. `Ok(None)` on timeout. Once the pipe has ended (closed here, or a TCP
    /// peer's end) and the queue is empty, `Error::Closed`, as `send` says, at once: what
    /// was queued before the end is still read first. An unknown `sub` is an error (P2PD
    /// returned `None` for both).
    pub async fn recv(&self, sub: SubId, timeout: Duration) -> Result<Option<Message>, Error> {
        if !timeout.is_zero()
            && let Io::Stream(writer) = &self.inner.io
        {
            // Waiting for the peer: the next send answers it and goes out at once.
            writer.waited();
        }
        // Taken from the clock only once waiting starts: a message already there costs none.
        let mut deadline = None;
        let mut deadline = || *deadline.get_or_insert_with(|| deadline_after(timeout));
        let mut spin_until = None;
        loop {
            let pull = match self.take(sub)? {
                Taken::Message(message) => return Ok(Some(message)),
                Taken::Flood => {
                    if timeout.is_zero() || tokio::time::Instant::now() >= deadline() {
                        return Ok(None);
                    }
                    tokio::task::consume_budget().await;
                    continue;
                }
                // Poll the socket a little longer before sleeping: see `PipeOptions::recv_spin`.
                Taken::Nothing(Pull::Empty) if !timeout.is_zero() => {
                    let until = *spin_until.get_or_insert_with(|| {
                        deadline().min(deadline_after(self.inner.opts.recv_spin))
                    });
                    if tokio::time::Instant::now() < until {
                        tokio::task::yield_now().await;
                        continue;
                    }
                    Pull::Empty
                }
                Taken::Nothing(pull) => pull,
            };
            if !self.is_running() {
                // A reader that saw EOF queued what came before it, maybe since `take`.
                return match self.pop(sub)? {
                    Some(message) => Ok(Some(message)),
                    None => Err(self.closed_error()),
                };
            }
            if timeout.is_zero() {
                return Ok(None);
            }
            let notified = self.inner.arrived.notified();
            tokio::pin!(notified);
            // Registered before looking again, so a message queued in between wakes us.
            notified.as_mut().enable();
            if let Some(message) = self.pop(sub)? {
                return Ok(Some(message));
            }
            let arrival = async {
                match (pull, &self.inner.reader) {
                    (Pull::Empty, Some(reader)) => tokio::select! {
                        () = notified => {}
                        () = reader.wait_readable() => {}
                    },
                    _ => notified.await,
                }
            };
            if tokio::time::timeout_at(deadline(), arrival).await.is_err() {
                return Ok(None);
            }
        }
    }

    /// `recv` with a zero timeout, without a future: the oldest message queued for `sub`
    /// or one that is in the socket already; `Ok(None)` if there is none.
    pub fn try_recv(&self, sub: SubId) -> Result<Option<Message>, Error> {
        match self.take(sub)? {
            Taken::Message(message) => Ok(Some(message)),
            Taken::Flood | Taken::Nothing(_) => Ok(None),
        }
    }

    /// A message for `sub` from its queue or, if that is empty, from the socket, reading
    /// (and queueing for other subscriptions) at most [`PULL_BATCH`] messages.
    fn take(&self, sub: SubId) -> Result<Taken, Error> {
        for _ in 0..PULL_BATCH {
            if let Some(message) = self.pop(sub)? {
                return Ok(Taken::Message(message));
            }
            match self.pull() {
                Pull::Read => {}
                pull => return Ok(Taken::Nothing(pull)),
            }
        }
        Ok(match self.pop(sub)? {
            Some(message) => Taken::Message(message),
            None => Taken::Flood,
        })
    }

    fn pop(&self, sub: SubId) -> Result<Option<Message>, Error> {
        lock(&self.inner.subs)
            .pop(sub)
            .map_err(|_| Error::NoSuchSubscription {
                id: sub,
                pipe: self.to_string(),
            })
    }

    /// Relay everything that arrives here into `other` (with `other.send`). One-way: link
    /// both ways for a bridge. Relaying into a pipe without a destination fails silently.
    /// A link does not keep `other` alive.
    pub fn add_pipe(&self, other: &Pipe) {
        let mut links = lock(&self.inner.links);
        links.retain(|l| l.strong_count() > 0);
        if !links
            .iter()
            .any(|l| l.ptr_eq(&Arc::downgrade(&other.inner)))
        {
            links.push(Arc::downgrade(&other.inner));
        }
        drop(links);
        // A reader standing aside for `recv` callers must relay from now on.
        if let Some(reader) = &self.inner.reader {
            reader.wake();
        }
    }

    /// Stop relaying into `other`.
    pub fn del_pipe(&self, other: &Pipe) {
        let target = Arc::downgrade(&other.inner);
        lock(&self.inner.links).retain(|l| !l.ptr_eq(&target) && l.strong_count() > 0);
    }

    /// Bytes arrived from `peer`: relay, tell observers, queue. `data` is copied only when
    /// more than one of them keeps it.
    pub(super) async fn on_message(&self, peer: SocketAddr, mut data: Vec<u8>) {
        let inner = &self.inner;
        let server = inner.parent.upgrade();
        self.relay(&data, server.as_deref()).await;
        if inner.observers.is_watched() {
            let queued = has_subs(inner) || server.as_deref().is_some_and(has_subs);
            let event = PipeEvent::Message {
                peer,
                data: if queued {
                    data.clone()
                } else {
                    std::mem::take(&mut data)
                },
                pipe: self.clone(),
            };
            inner.observers.emit(event, inner.proto == Proto::Tcp).await;
            if !queued {
                return;
            }
        }
        queue_in(inner, server.as_deref(), peer, data);
    }

    /// Queue a message in every matching subscription of this pipe and, for an accepted
    /// client, of its server; wake `recv` callers if any took it.
    pub(super) fn queue(&self, peer: SocketAddr, data: Vec<u8>) {
        let server = self.inner.parent.upgrade();
        queue_in(&self.inner, server.as_deref(), peer, data);
    }

    /// Send `data` on into this pipe's links and, for an accepted client, its server's.
    async fn relay(&self, data: &[u8], server: Option<&Inner>) {
        let mut links: Vec<Pipe> = live_links(&self.inner);
        if let Some(server) = server {
            links.extend(live_links(server));
        }
        for link in links {
            // A failing relay must not stop this pipe; the linked pipe reports its own end.
            let _ = link.send(data).await;
        }
    }
}

fn live_links(inner: &Inner) -> Vec<Pipe> {
    lock(&inner.links)
        .iter()
        .filter_map(Weak::upgrade)
        .map(|inner| Pipe { inner })
        .collect()
}

/// [`Pipe::queue`] with the server already looked up.
fn queue_in(inner: &Inner, server: Option<&Inner>, peer: SocketAddr, data: Vec<u8>) {
    match server.filter(|s| has_subs(s)) {
        Some(server) => {
            deliver(inner, peer, data.clone());
            deliver(server, peer, data);
        }
        None => deliver(inner, peer, data),
    }
}

fn has_subs(inner: &Inner) -> bool {
    !lock(&inner.subs).is_empty()
}

fn deliver(inner: &Inner, peer: SocketAddr, data: Vec<u8>) {
    if lock(&inner.subs).deliver(peer, data) > 0 {
        inner.arrived.notify_waiters();
    }
}

/// The bytes a read just put in `buf`, as an owned message. A small read is copied out so
/// a queued message does not pin a whole read buffer; a large one takes the buffer itself
/// (no copy) and `buf` gets a fresh one with the same capacity.
pub(super) fn take_read(buf: &mut Vec<u8>) -> Vec<u8> {
    let capacity = buf.capacity();
    if buf.len() * 4 < capacity {
        let message = buf.clone();
        buf.clear();
        message
    } else {
        std::mem::replace(buf, Vec::with_capacity(capacity))
    }
}
