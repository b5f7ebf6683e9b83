//! The write side of a TCP pipe, which combines back-to-back sends into one system call.
//!
//! Why: on a fast path (loopback, a LAN) a `send` system call costs more than the bytes it
//! carries, because the kernel runs the whole transmit path, and on loopback the peer's
//! receive path and wake-up, inside it. A program streaming small messages spends its time
//! there, one call per message. asyncio combines writes only once the kernel pushes back;
//! here a burst is combined from its second message on.
//!
//! The rule ([`Burst`]): a send that follows a wait for the peer (`recv` with a timeout),
//! or comes after a pause of [`BURST_GAP`], goes straight to the socket, so a
//! request or a ping-pong costs nothing extra. A send that follows another one closely is a
//! burst: it is appended to the outbox, and a flusher task on the pipe's runtime writes the
//! whole outbox as soon as it runs, with everything that piled up in the meantime. No timer
//! holds anything back (unlike Nagle's algorithm or `TCP_CORK`).
//!
//! Semantics kept: bytes go out in the order sent; `close` writes what is buffered before
//! the FIN; a sender waits (up to `send_timeout`) while [`HIGH_WATER`] bytes are queued. As
//! with the kernel's own buffer, a send only says the bytes were accepted: a write that
//! fails later (reset, timeout) is reported by the next `send`.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::{Error, Pipe, deadline_after, lock};

/// Sends closer together than this, with no wait for the peer between them, form a burst.
const BURST_GAP: Duration = Duration::from_micros(20);

/// Bytes buffered before a sender waits for the flusher (asyncio's default high water).
const HIGH_WATER: usize = 64 * 1024;

/// Whether a send starts a burst. Pure, so the rule is tested without sockets.
#[derive(Debug, Default)]
struct Burst {
    last_send: Option<Instant>,
}

impl Burst {
    /// Record a send at `now`; true if it starts a burst rather than continuing one.
    /// `answers` says the owner waited for the peer (`recv` with a timeout) since its last
    /// send.
    fn starts(&mut self, now: Instant, answers: bool) -> bool {
        let fresh = answers
            || self
                .last_send
                .is_none_or(|last| now.saturating_duration_since(last) >= BURST_GAP);
        self.last_send = Some(now);
        fresh
    }
}

/// Why buffered bytes could not be written; reported by the next send. A broken
/// connection stays broken; a stall is reported once and the flusher tries again later.
#[derive(Debug, Clone)]
enum Failure {
    Io(io::ErrorKind, String),
    TimedOut,
}

struct State {
    /// Shut down: sends fail.
    closed: bool,
    /// Bytes accepted by `send` and not yet written, oldest first.
    pending: Vec<u8>,
    /// The flusher has been kicked and not yet seen `pending` empty: only it writes.
    flushing: bool,
    failed: Option<Failure>,
    burst: Burst,
    /// The pipe is gone: the flusher writes what is left, closes and ends.
    orphaned: bool,
}

/// What a pipe's writer and its flusher task share.
struct Shared {
    state: Mutex<State>,
    /// Wakes the flusher.
    kick: Notify,
    /// Wakes senders waiting for the outbox to drain.
    room: Notify,
    /// The socket, held by whoever writes: a direct send (which only tries the lock), the
    /// flusher task or `shutdown`. Owned here alone, so dropping it in `close` closes it.
    writing: tokio::sync::Mutex<Out>,
    send_timeout: Duration,
}

/// What a writer holds while it writes.
struct Out {
    /// `None` once shut down.
    half: Option<OwnedWriteHalf>,
    /// A spare buffer the flusher swaps with `pending`; empty between flushes.
    batch: Vec<u8>,
}

/// The write half of a TCP connection and its outbox.
pub(super) struct Writer {
    shared: Arc<Shared>,
    /// The flusher task, until `shutdown` stops it.
    flusher: Mutex<Option<JoinHandle<()>>>,
    /// The owner waited for the peer since its last send. Apart from the state, so that
    /// every `recv` does not take its lock.
    waited: AtomicBool,
}

impl Writer {
    /// Take over `half` and start its flusher task. Must run inside the tokio runtime.
    pub(super) fn start(half: OwnedWriteHalf, send_timeout: Duration) -> Writer {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                closed: false,
                pending: Vec::new(),
                flushing: false,
                failed: None,
                burst: Burst::default(),
                orphaned: false,
            }),
            kick: Notify::new(),
            room: Notify::new(),
            writing: tokio::sync::Mutex::new(Out {
                half: Some(half),
                batch: Vec::new(),
            }),
            send_timeout,
        });
        let flusher = tokio::spawn(flusher(shared.clone()));
        Writer {
            shared,
            flusher: Mutex::new(Some(flusher)),
            waited: AtomicBool::new(false),
        }
    }

    /// The owner waits for the peer: its next send is an answer, not part of a burst.
    pub(super) fn waited(&self) {
        self.waited.store(true, Ordering::Relaxed);
    }

    pub(super) async fn write(&self, pipe: &Pipe, data: &[u8]) -> Result<(), Error> {
        let shared = &self.shared;
        if lock(&shared.state).pending.len() >= HIGH_WATER {
            shared.wait_for_room(pipe).await?;
        }
        let mut state = lock(&shared.state);
        match state.failed.clone() {
            // A stall is reported once; the flusher tries again with the next send.
            Some(Failure::TimedOut) => {
                state.failed = None;
                return Err(Failure::TimedOut.into_error(pipe));
            }
            Some(broken) => return Err(broken.into_error(pipe)),
            None => {}
        }
        if state.closed {
            return Err(pipe.closed_error());
        }
        let answers = self.waited.swap(false, Ordering::Relaxed);
        let fresh = state.burst.starts(Instant::now(), answers);
        let mut rest = data;
        let direct = fresh && state.pending.is_empty() && !state.flushing;
        // Only tried: if someone else is writing, this send joins the outbox.
        if direct
            && let Ok(out) = shared.writing.try_lock()
            && let Some(half) = &out.half
        {
            // Under the state lock, so no other sender's bytes can get in between.
            while !rest.is_empty() {
                match half.try_write(rest) {
                    Ok(0) => break,
                    Ok(n) => rest = rest.get(n..).unwrap_or_default(),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(Failure::from(e).into_error(pipe)),
                }
            }
            if rest.is_empty() {
                return Ok(());
            }
        }
        state.pending.extend_from_slice(rest);
        if !state.flushing {
            state.flushing = true;
            shared.kick.notify_one();
        }
        Ok(())
    }

    /// Write what is buffered (within `send_timeout`), then send FIN and drop the write
    /// half; the socket closes once the reader is gone too. When this returns, nothing
    /// else holds the write half.
    pub(super) async fn shutdown(&self) {
        let flusher = lock(&self.flusher).take();
        if let Some(flusher) = flusher {
            // Stopped at an await, where every unwritten byte is back in `pending`.
            flusher.abort();
            let _ = flusher.await;
        }
        self.shared.close().await;
    }
}

/// The flusher task: writes the outbox whenever a send kicks it. It holds only the shared
/// state, never the pipe, so a pipe dropped without `close` still gets its buffered bytes
/// written (within `send_timeout`) before the socket closes, as the kernel does with its
/// own buffer.
async fn flusher(shared: Arc<Shared>) {
    loop {
        shared.kick.notified().await;
        if lock(&shared.state).orphaned {
            shared.close().await;
            return;
        }
        let mut out = shared.writing.lock().await;
        shared.flush(&mut out).await;
    }
}

impl Shared {
    /// [`Writer::shutdown`], also run by the flusher once the pipe is gone.
    async fn close(&self) {
        let mut out = self.writing.lock().await;
        // Bounded as a whole: a peer that reads slowly but steadily keeps a flush going.
        let _ = tokio::time::timeout(self.send_timeout, self.flush(&mut out)).await;
        lock(&self.state).closed = true;
        // Dropping the half sends FIN; the socket closes with the read half.
        out.half = None;
        drop(out);
        self.room.notify_waiters();
    }

    /// Write `pending` until it is empty, the write fails or it stalls past `send_timeout`.
    /// Every unwritten byte is back in `pending` before any await, so a flush cut short
    /// (aborted, timed out) loses nothing.
    async fn flush(&self, out: &mut Out) {
        let Out { half, batch } = out;
        // Shut down already: `close` failed the senders and woke them.
        let Some(half) = half.as_ref() else { return };
        let mut stalled_since: Option<tokio::time::Instant> = None;
        loop {
            {
                let mut state = lock(&self.state);
                if state.pending.is_empty() || state.failed.is_some() {
                    state.flushing = false;
                    break;
                }
                // Senders go through the outbox while a batch is out.
                state.flushing = true;
                std::mem::swap(&mut state.pending, batch);
            }
            self.room.notify_waiters();
            let mut written = 0;
            let outcome = loop {
                match half.try_write(batch.get(written..).unwrap_or_default()) {
                    Ok(0) => break Err(io::ErrorKind::WriteZero.into()),
                    Ok(n) => {
                        written += n;
                        if written >= batch.len() {
                            break Ok(());
                        }
                    }
                    Err(e) => break Err(e),
                }
            };
            let unwritten = batch.get(written..).unwrap_or_default();
            match outcome {
                Ok(()) => stalled_since = None,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // Back in front of what was sent meanwhile.
                    lock(&self.state)
                        .pending
                        .splice(0..0, unwritten.iter().copied());
                    batch.clear();
                    let since = *stalled_since.get_or_insert_with(tokio::time::Instant::now);
                    let deadline = since + self.send_timeout;
                    if tokio::time::timeout_at(deadline, half.writable())
                        .await
                        .is_err()
                    {
                        lock(&self.state).failed = Some(Failure::TimedOut);
                    }
                    continue;
                }
                Err(e) => lock(&self.state).failed = Some(Failure::from(e)),
            }
            batch.clear();
        }
        self.room.notify_waiters();
    }

    /// Wait until the outbox is below [`HIGH_WATER`] (or has failed, or closed), within
    /// `send_timeout`.
    async fn wait_for_room(&self, pipe: &Pipe) -> Result<(), Error> {
        let deadline = deadline_after(self.send_timeout);
        loop {
            let room = self.room.notified();
            tokio::pin!(room);
            // Registered before looking, so a drain in between still wakes us.
            room.as_mut().enable();
            {
                let state = lock(&self.state);
                if state.pending.len() < HIGH_WATER || state.failed.is_some() || state.closed {
                    return Ok(());
                }
            }
            if tokio::time::timeout_at(deadline, room).await.is_err() {
                return Err(Failure::TimedOut.into_error(pipe));
            }
        }
    }
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        Failure::Io(e.kind(), e.to_string())
    }
}

impl Failure {
    fn into_error(self, pipe: &Pipe) -> Error {
        let addr = pipe.inner.dest.unwrap_or(pipe.inner.local);
        match self {
            Failure::TimedOut => Error::TimedOut {
                op: "send to",
                addr,
                timeout: pipe.inner.opts.send_timeout,
            },
            Failure::Io(kind, message) => {
                let source = io::Error::new(kind, message);
                if is_broken(kind) {
                    Error::Broken {
                        pipe: pipe.to_string(),
                        source,
                    }
                } else {
                    Error::Io {
                        op: "send to",
                        addr,
                        source,
                    }
                }
            }
        }
    }
}

impl Drop for Writer {
    /// Leaves the last flush and the close to the flusher, if it still runs.
    fn drop(&mut self) {
        lock(&self.shared.state).orphaned = true;
        self.shared.kick.notify_one();
    }
}

fn is_broken(kind: io::ErrorKind) -> bool {
    matches!(
        kind,
        io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::NotConnected
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_send_starts_a_burst() {
        assert!(Burst::default().starts(Instant::now(), false));
    }

    #[test]
    fn close_sends_continue_a_burst_and_a_pause_ends_it() {
        let mut burst = Burst::default();
        let t = Instant::now();
        assert!(burst.starts(t, false));
        assert!(!burst.starts(t + BURST_GAP / 4, false));
        assert!(!burst.starts(t + BURST_GAP / 2, false));
        // The gap counts from the last send, not from the burst's start.
        assert!(!burst.starts(t + BURST_GAP, false));
        assert!(burst.starts(t + BURST_GAP * 3, false));
    }

    #[test]
    fn an_answer_to_the_peer_starts_a_burst_however_close() {
        let mut burst = Burst::default();
        let t = Instant::now();
        assert!(burst.starts(t, false));
        assert!(burst.starts(t, true));
        assert!(!burst.starts(t, false));
    }

    #[test]
    fn a_clock_going_backwards_is_not_a_pause() {
        let mut burst = Burst::default();
        let t = Instant::now() + BURST_GAP;
        assert!(burst.starts(t, false));
        assert!(!burst.starts(t - BURST_GAP, false));
    }
}
