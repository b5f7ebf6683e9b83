//! Who reads a pipe's socket: a background task, or the `recv` caller itself.
//!
//! The task is always there, so links, observers and queues see traffic nobody asks for.
//! But handing every message from that task to a caller on another thread costs a thread
//! wake-up per message, and on a small machine a third busy thread. So when the only
//! consumers are `recv` callers (no observer, no link), a caller whose queue is empty reads
//! the socket itself, as a plain tokio client would, and waits on the socket's readiness
//! rather than on the task. The task stands aside while callers are at it: while one waits,
//! or if one came by during the last [`STAND_ASIDE`]; after that it drains the socket again,
//! so queues fill and a peer's EOF ends the pipe even when nobody calls `recv`.
//!
//! Both read under one lock (`turn`) that is held until the message is queued, so messages
//! reach the queues in the order they arrived, whoever read them.

use std::cell::RefCell;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::{Mutex as AsyncMutex, Notify, RwLock};

use super::inbound::take_read;
use super::{Inner, Pipe};
use crate::net::icmp::is_transient;

/// How long the task keeps away after a `recv` caller read. Only delays queueing for a
/// pipe whose reader just went quiet; observers and links are never kept waiting.
const STAND_ASIDE: Duration = Duration::from_millis(2);

/// Messages the task reads before letting other tasks run, if more keep arriving.
const DRAIN_BATCH: usize = 64;

/// The receiving side of a socket.
pub(super) enum Source {
    /// A TCP connection's read half and its peer: every read is one message.
    Stream(OwnedReadHalf, SocketAddr),
    /// A UDP socket (shared with the sender): every datagram is one message.
    Datagram(Arc<AsyncFd<UdpSocket>>),
}

/// What one non-blocking read found.
enum Read {
    Message(SocketAddr, Vec<u8>),
    /// Nothing waiting in the socket.
    Empty,
    /// EOF or a fatal error: the pipe ends.
    Finished,
}

/// A TCP pipe's first read buffer. Ten thousand idle connections each holding a 64 KiB
/// buffer (or the pages of it a read touched) would be most of a process's memory; a
/// stream whose reads fill the buffer doubles it, read by read, up to the pipe's limit.
const FIRST_STREAM_READ: usize = 2 * 1024;

thread_local! {
    /// Where this thread reads datagrams, each then copied out at its exact size: one
    /// buffer per thread, not 64 KiB per UDP pipe.
    static DATAGRAM_SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

impl Source {
    /// A pipe's own read buffer, reads of at most `max` bytes: spare capacity that a TCP
    /// read fills in place (and may hand on, see `take_read`), starting small. Datagrams
    /// are read into the thread's scratch buffer instead.
    fn buffer(&self, max: usize) -> Vec<u8> {
        match self {
            Source::Stream(..) => Vec::with_capacity(FIRST_STREAM_READ.min(max)),
            Source::Datagram(_) => Vec::new(),
        }
    }

    async fn readable(&self) -> io::Result<()> {
        match self {
            Source::Stream(half, _) => half.readable().await,
            // The guard is dropped without clearing: reads clear readiness themselves.
            Source::Datagram(socket) => socket.readable().await.map(drop),
        }
    }

    /// One non-blocking read of at most `max` bytes (see [`Source::buffer`]); a TCP read
    /// that fills `buf` grows it for the next one, up to `max`.
    fn try_read(&self, buf: &mut Vec<u8>, max: usize) -> Read {
        match self {
            Source::Stream(half, peer) => {
                buf.clear();
                match half.try_read_buf(buf) {
                    Ok(0) => Read::Finished,
                    Ok(n) => {
                        let filled = n == buf.capacity();
                        let message = take_read(buf);
                        if filled && buf.capacity() < max {
                            buf.reserve_exact((2 * buf.capacity()).min(max) - buf.len());
                        }
                        Read::Message(*peer, message)
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => Read::Empty,
                    Err(_) => Read::Finished,
                }
            }
            Source::Datagram(socket) => loop {
                let got = socket.try_io(Interest::READABLE, |s| read_datagram(s, max));
                return match got {
                    Ok((peer, data)) => Read::Message(peer, data),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => Read::Empty,
                    Err(e) if is_transient(&e) => continue,
                    Err(_) => Read::Finished,
                };
            },
        }
    }
}

/// One datagram of at most `max` bytes, read into this thread's scratch buffer.
fn read_datagram(socket: &UdpSocket, max: usize) -> io::Result<(SocketAddr, Vec<u8>)> {
    DATAGRAM_SCRATCH.with_borrow_mut(|scratch| {
        if scratch.len() < max {
            scratch.resize(max, 0);
        }
        let room = scratch.get_mut(..max).unwrap_or_default();
        let (n, peer) = socket.recv_from(room)?;
        Ok((peer, room.get(..n).unwrap_or_default().to_vec()))
    })
}

/// What the reading side of a pipe shares between its task and `recv` callers.
pub(super) struct Reader {
    /// `None` once closed. Waiters hold a read guard only while waiting for readiness, so
    /// `close` (which takes the write side after waking them) knows the socket is released.
    source: RwLock<Option<Source>>,
    /// Held from reading a message until it is queued.
    turn: AsyncMutex<Turn>,
    /// Bumped by every `recv` that reads the socket itself.
    activity: AtomicU64,
    /// `recv` callers waiting on the socket's readiness.
    waiting: AtomicUsize,
    /// Cuts the task's standing aside short (an observer or link was added).
    wake: Notify,
    /// Tells everyone waiting on the socket to let go of it, because it is being closed.
    closing: Notify,
    closed: AtomicBool,
}

struct Turn {
    buf: Vec<u8>,
    /// The largest read `buf` may grow to.
    max_read: usize,
    /// EOF or a fatal error was seen; nobody reads any more.
    finished: bool,
}

impl Turn {
    fn read_from(&mut self, source: &Source) -> Read {
        source.try_read(&mut self.buf, self.max_read)
    }
}

/// What [`Pipe::pull`] did.
pub(super) enum Pull {
    /// Read one message and queued it (maybe not for the caller's subscription).
    Read,
    /// The socket is empty: wait for its readiness.
    Empty,
    /// Someone else is reading, or must (observers, links), or the pipe ended: wait for
    /// the arrival notice.
    Elsewhere,
}

impl Reader {
    pub(super) fn new(source: Source, buf_size: usize) -> Arc<Self> {
        Arc::new(Reader {
            turn: AsyncMutex::new(Turn {
                buf: source.buffer(buf_size),
                max_read: buf_size,
                finished: false,
            }),
            source: RwLock::new(Some(source)),
            activity: AtomicU64::new(0),
            waiting: AtomicUsize::new(0),
            wake: Notify::new(),
            closing: Notify::new(),
            closed: AtomicBool::new(false),
        })
    }

    /// Drop the socket, once everyone waiting on it has let go.
    pub(super) async fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.closing.notify_waiters();
        self.source.write().await.take();
    }

    /// Run `f` (a wait on the socket) unless the socket is being closed, which cuts it
    /// short. Returns `None` if closed (before or while waiting).
    async fn while_open<T>(&self, f: impl AsyncFnOnce(&Source) -> T) -> Option<T> {
        let closing = self.closing.notified();
        tokio::pin!(closing);
        // Registered before looking at the flag, so a `close` in between still wakes us.
        closing.as_mut().enable();
        if self.closed.load(Ordering::SeqCst) {
            return None;
        }
        let source = self.source.read().await;
        let source = source.as_ref()?;
        tokio::select! {
            v = f(source) => Some(v),
            () = closing => None,
        }
    }

    /// Make the task read again at once (an observer or a link now needs every message).
    pub(super) fn wake(&self) {
        self.wake.notify_one();
    }

    /// Wait until the socket may have something, as a `recv` caller. The task stands aside
    /// meanwhile. Returns at once if the socket is closed.
    pub(super) async fn wait_readable(&self) {
        self.while_open(async |source: &Source| {
            self.waiting.fetch_add(1, Ordering::SeqCst);
            let _waiting = Waiting(self);
            // An error (the socket is gone from the reactor) shows up again on the next read.
            let _ = source.readable().await;
        })
        .await;
    }
}

/// Counts a `recv` caller as waiting until it stops, even if its future is dropped.
struct Waiting<'a>(&'a Reader);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Pipe {
    /// Whether what arrives must go through the task's full path (links, observers).
    fn pushes(&self) -> bool {
        let inner = &self.inner;
        let links = |i: &Inner| !super::lock(&i.links).is_empty();
        inner.observers.is_watched()
            || links(inner)
            || inner.parent.upgrade().is_some_and(|server| links(&server))
    }

    /// For `recv` with an empty queue: read one message from the socket here, without
    /// waiting, if this pipe's only consumers are `recv` callers.
    pub(super) fn pull(&self) -> Pull {
        let Some(reader) = &self.inner.reader else {
            return Pull::Elsewhere;
        };
        if self.pushes() {
            return Pull::Elsewhere;
        }
        reader.activity.fetch_add(1, Ordering::SeqCst);
        let Ok(source) = reader.source.try_read() else {
            return Pull::Elsewhere;
        };
        let Some(source) = source.as_ref() else {
            return Pull::Elsewhere;
        };
        let Ok(mut turn) = reader.turn.try_lock() else {
            return Pull::Elsewhere;
        };
        if turn.finished {
            return Pull::Elsewhere;
        }
        match turn.read_from(source) {
            Read::Message(peer, data) => {
                self.queue(peer, data);
                Pull::Read
            }
            Read::Empty => Pull::Empty,
            Read::Finished => {
                turn.finished = true;
                self.clone().reader_finished();
                Pull::Elsewhere
            }
        }
    }
}

/// Start the background reader of `pipe`.
pub(super) fn spawn(pipe: &Pipe) {
    if let Some(reader) = &pipe.inner.reader {
        let task = tokio::spawn(run(Arc::downgrade(&pipe.inner), reader.clone()));
        pipe.add_task(task);
    }
}

/// The background reader. Holds the pipe only while handing messages over, so dropping
/// every handle stops it (and drops its socket).
async fn run(pipe: Weak<Inner>, reader: Arc<Reader>) {
    let mut seen = reader.activity.load(Ordering::SeqCst);
    loop {
        // Errors surface again, and are handled, on the read below.
        let readable = reader.while_open(async |src: &Source| {
            let _ = src.readable().await;
        });
        if readable.await.is_none() {
            return;
        }
        let Some(inner) = pipe.upgrade() else { return };
        let pipe = Pipe { inner };
        let now = reader.activity.load(Ordering::SeqCst);
        if !pipe.pushes() && (now != seen || reader.waiting.load(Ordering::SeqCst) > 0) {
            seen = now;
            drop(pipe);
            tokio::select! {
                () = tokio::time::sleep(STAND_ASIDE) => {}
                () = reader.wake.notified() => {}
            }
            continue;
        }
        let source = reader.source.read().await;
        let Some(src) = source.as_ref() else { return };
        let mut turn = reader.turn.lock().await;
        if turn.finished {
            return;
        }
        for _ in 0..DRAIN_BATCH {
            match turn.read_from(src) {
                Read::Message(peer, data) => pipe.on_message(peer, data).await,
                Read::Empty => break,
                Read::Finished => {
                    turn.finished = true;
                    drop((turn, source));
                    pipe.reader_finished();
                    return;
                }
            }
        }
        drop(turn);
        // Callers that found the turn taken wait for this, whether or not we queued
        // anything for them.
        pipe.inner.arrived.notify_waiters();
        drop((pipe, source));
        tokio::task::consume_budget().await;
    }
}
