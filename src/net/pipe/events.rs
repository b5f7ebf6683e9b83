//! Pipe events delivered over channels, never by calling user code on a runtime thread.
//!
//! P2PD runs `msg_cb`/`end_cb`/`up_cb` inline in its event loop (inventory §5.2). Here a
//! script layer must run callbacks on its own thread, so each observer gets a bounded channel
//! of [`PipeEvent`]s and forwards them however it likes. A TCP server's accepted clients share
//! the server's observers, as P2PD's client pipes share the server's callback lists.
//!
//! Back-pressure: a TCP reader waits for room in an observer's channel (the peer is slowed by
//! TCP flow control, nothing is lost); a UDP reader never waits and counts the events an
//! observer was too slow to take, as the network itself would drop datagrams.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::mpsc;

use super::Pipe;

/// Something that happened on a pipe.
#[derive(Debug, Clone)]
pub enum PipeEvent {
    /// A TCP connection came up: an accepted client (on a server) or an outgoing connection.
    Up(Pipe),
    /// Bytes arrived from `peer` on `pipe` (for a TCP server: on the accepted client's pipe,
    /// so `pipe.send` answers; for UDP: on the pipe itself, so `pipe.send_to(.., peer)` does).
    /// A TCP message is whatever one read returned: TCP has no message boundaries.
    Message {
        peer: SocketAddr,
        data: Vec<u8>,
        pipe: Pipe,
    },
    /// The pipe ended: closed here, or the peer closed or reset the connection.
    End(Pipe),
}

/// The observers of one pipe (or of one TCP server and all its clients).
pub(crate) struct Observers {
    senders: Mutex<Vec<mpsc::Sender<PipeEvent>>>,
    capacity: usize,
    dropped: AtomicU64,
}

impl Observers {
    pub(crate) fn new(capacity: usize) -> Self {
        Observers {
            senders: Mutex::new(Vec::new()),
            capacity: capacity.max(1),
            dropped: AtomicU64::new(0),
        }
    }

    pub(crate) fn add(&self) -> mpsc::Receiver<PipeEvent> {
        let (tx, rx) = mpsc::channel(self.capacity);
        self.lock().push(tx);
        rx
    }

    /// Drop every sender, so receivers see the end of the stream once drained.
    pub(crate) fn clear(&self) {
        self.lock().clear();
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Whether anyone observes, so a reader can skip building events nobody takes.
    pub(crate) fn is_watched(&self) -> bool {
        !self.lock().is_empty()
    }

    /// Hand `event` to every live observer; `wait` chooses back-pressure over dropping.
    /// The last observer gets `event` itself, the others a clone.
    pub(crate) async fn emit(&self, event: PipeEvent, wait: bool) {
        let senders: Vec<_> = {
            let mut senders = self.lock();
            senders.retain(|tx| !tx.is_closed());
            if senders.is_empty() {
                return;
            }
            senders.clone()
        };
        let Some((last, others)) = senders.split_last() else {
            return;
        };
        for tx in others {
            self.send(tx, event.clone(), wait).await;
        }
        self.send(last, event, wait).await;
    }

    async fn send(&self, tx: &mpsc::Sender<PipeEvent>, event: PipeEvent, wait: bool) {
        if wait {
            // A closed receiver is pruned at the next emit.
            let _ = tx.send(event).await;
        } else if let Err(mpsc::error::TrySendError::Full(_)) = tx.try_send(event) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<mpsc::Sender<PipeEvent>>> {
        // Nothing panics while holding this lock; recover the list if something ever did.
        self.senders.lock().unwrap_or_else(|e| e.into_inner())
    }
}
