//! Pipes: TCP/UDP clients and servers with subscription queues (P2PD's `pipe_open`,
//! inventory §5, baseline §4.6).
//!
//! A [`Pipe`] is a cheap handle (an `Arc`) to one socket and the tasks that read it. What
//! arrives goes, in P2PD's order, (1) to linked pipes ([`Pipe::add_pipe`]), (2) to event
//! observers ([`Pipe::events`], channels, so a script thread can run its callbacks), (3) into
//! every matching subscription queue ([`Pipe::subscribe`], [`Pipe::recv`]).
//!
//! Kept from P2PD: client pipes opened with [`Pipe::open`] subscribe to everything at once;
//! a TCP server's accepted clients are pipes of their own sharing the server's observers;
//! UDP pipes can `send_to` anyone. TCP is a byte stream: each read (up to 64 KiB) is one
//! message, with no framing.
//! Fixed: errors are returned, not swallowed (§9 item 8); `recv` with a zero timeout polls;
//! queues are bounded; `close` frees the port before it returns.
//!
//! Files: `subscription.rs` (pure queues), `inbound.rs` (the path of arriving bytes, `recv`,
//! links), `events.rs` (observer channels), `lifecycle.rs` (close, end, drop), `socket.rs`
//! (socket2 binding), `tcp.rs` / `udp.rs` (readers and writers), `outbox.rs` (TCP writes,
//! combined in bursts), `server.rs` (accepting),
//! `reader.rs` (who reads the socket: a task, or the `recv` caller), `daemon.rs` (echo
//! server), `mapped.rs` (a server's port mapping, owned by the pipe), `error.rs`.

mod daemon;
mod error;
mod events;
mod inbound;
mod lifecycle;
mod mapped;
mod outbox;
mod reader;
mod server;
mod socket;
pub mod subscription;
mod tcp;
mod udp;

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

pub use daemon::echo_server;
pub use error::Error;
pub use events::PipeEvent;
pub use mapped::MapError;
pub use subscription::{Message, SubId};

use events::Observers;
use reader::Reader;
use subscription::Subscriptions;

/// Transport of a pipe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Proto {
    Tcp,
    Udp,
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "TCP",
            Proto::Udp => "UDP",
        })
    }
}

/// Tunables of [`Pipe::open`]. Defaults follow P2PD's `NET_CONF` where it has one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PipeOptions {
    /// TCP connect limit (P2PD `con_timeout`, 2 s).
    pub connect_timeout: Duration,
    /// Limit for one `send`, so a peer that stops reading cannot hang the caller.
    pub send_timeout: Duration,
    /// Messages kept per subscription (oldest dropped), events per observer channel, and
    /// accepted clients waiting for `accept`. Counts messages, not bytes.
    pub queue_capacity: usize,
    /// How long a `recv` that finds the socket empty keeps polling it (yielding to other
    /// tasks in between) before it sleeps until the socket is readable. Waking a sleeping
    /// thread can cost more than a whole loopback round trip (on the 2-vCPU VMs measured,
    /// polling for 50 µs doubled UDP ping-pong rates), so a reply arriving within this
    /// window is taken at once. Zero sleeps at once; the CPU spent is at most this per wait.
    pub recv_spin: Duration,
}

impl Default for PipeOptions {
    fn default() -> Self {
        PipeOptions {
            connect_timeout: Duration::from_secs(2),
            send_timeout: Duration::from_secs(5),
            queue_capacity: 1024,
            recv_spin: Duration::from_micros(50),
        }
    }
}

/// What the pipe is, which decides how `send` and `accept` behave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Opened with a destination.
    Client,
    /// Opened without one: a TCP listener or an unconnected UDP socket.
    Server,
    /// A connection accepted by a TCP server.
    Accepted,
}

/// Everything a transport file decides when it makes a pipe.
struct Spec {
    proto: Proto,
    kind: Kind,
    local: SocketAddr,
    dest: Option<SocketAddr>,
    opts: PipeOptions,
    io: Io,
    /// The receiving side of a connection or UDP socket; `None` for a TCP listener.
    reader: Option<Arc<Reader>>,
    observers: Arc<Observers>,
    parent: Weak<Inner>,
    /// Subscribe this pipe to every message at once.
    subscribe_all: bool,
    /// For a TCP server: whether its accepted clients do.
    clients_subscribe_all: bool,
}

enum Io {
    Stream(outbox::Writer),
    Datagram(udp::Sender),
    Listener(server::Clients),
}

/// A TCP or UDP socket with its queues and observers. Clone freely: all clones are one pipe.
/// Dropping the last clone (and every event holding one) closes the socket.
#[derive(Clone)]
pub struct Pipe {
    inner: Arc<Inner>,
}

struct Inner {
    proto: Proto,
    kind: Kind,
    local: SocketAddr,
    dest: Option<SocketAddr>,
    opts: PipeOptions,
    subs: Mutex<Subscriptions>,
    /// Woken whenever a message is queued or the pipe ends, for `recv` waiters.
    arrived: Notify,
    observers: Arc<Observers>,
    /// A TCP server and its accepted clients share observers; only the server clears them.
    owns_observers: bool,
    /// Whether accepted clients subscribe to everything (no observer was asked for at open).
    clients_subscribe_all: bool,
    /// Weak so that two pipes linked both ways do not keep each other alive.
    links: Mutex<Vec<Weak<Inner>>>,
    /// For an accepted client: its server, whose queues and links also see its messages.
    parent: Weak<Inner>,
    closed: AtomicBool,
    ended: AtomicBool,
    io: Io,
    reader: Option<Arc<Reader>>,
    /// The runtime the pipe was opened in, where its tasks run.
    runtime: tokio::runtime::Handle,
    /// Reader or accept tasks. They hold only a `Weak` to this, so dropping it stops them
    /// (and with them the sockets they hold).
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// A server's port mapping on the gateway, if it asked for one.
    mapping: mapped::Slot,
}

/// Lock a std mutex, recovering from poisoning: no code panics while holding these locks,
/// and the data (queues, lists) stays consistent at every step.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Pipe {
    /// Open a pipe bound to `local` (port 0 = any free port).
    ///
    /// With `dest`: a TCP client (connects within `opts.connect_timeout`) or a UDP client
    /// (`dest` is only the default target of `send`). Clients subscribe to every message.
    /// Without `dest`: a TCP server (see [`Pipe::accept`]) or a UDP server.
    pub async fn open(
        proto: Proto,
        dest: Option<SocketAddr>,
        local: SocketAddr,
        opts: PipeOptions,
    ) -> Result<Pipe, Error> {
        let (pipe, _) = Self::open_inner(proto, dest, local, opts, false, true).await?;
        Ok(pipe)
    }

    /// Like [`Pipe::open`], with an event observer attached before the first byte is read,
    /// so no event is missed (P2PD's `msg_cb`/`up_cb` arguments). `subscribe` says whether a
    /// client (and a TCP server's accepted clients) still gets its catch-all subscription:
    /// P2PD makes none when a `msg_cb` is given, but does for an `up_cb` alone.
    pub async fn open_with_events(
        proto: Proto,
        dest: Option<SocketAddr>,
        local: SocketAddr,
        opts: PipeOptions,
        subscribe: bool,
    ) -> Result<(Pipe, mpsc::Receiver<PipeEvent>), Error> {
        let (pipe, events) = Self::open_inner(proto, dest, local, opts, true, subscribe).await?;
        match events {
            Some(events) => Ok((pipe, events)),
            // open_inner always attaches an observer when asked to.
            None => Ok((pipe.clone(), pipe.events())),
        }
    }

    async fn open_inner(
        proto: Proto,
        dest: Option<SocketAddr>,
        local: SocketAddr,
        opts: PipeOptions,
        observe: bool,
        subscribe: bool,
    ) -> Result<(Pipe, Option<mpsc::Receiver<PipeEvent>>), Error> {
        if let Some(dest) = dest
            && dest.is_ipv4() != local.is_ipv4()
        {
            return Err(Error::FamilyMismatch { local, dest });
        }
        let observers = Arc::new(Observers::new(opts.queue_capacity));
        let events = observe.then(|| observers.add());
        let pipe = match (proto, dest) {
            (Proto::Tcp, Some(dest)) => {
                let pipe = tcp::connect(local, dest, opts, observers, subscribe).await?;
                pipe.inner
                    .observers
                    .emit(PipeEvent::Up(pipe.clone()), true)
                    .await;
                // Only now: the first message must not overtake `Up`.
                reader::spawn(&pipe);
                pipe
            }
            (Proto::Udp, dest) => {
                udp::open(local, dest, opts, observers, dest.is_some() && subscribe)?
            }
            (Proto::Tcp, None) => server::listen(local, opts, observers, subscribe)?,
        };
        Ok((pipe, events))
    }

    fn build(spec: Spec) -> Pipe {
        let subs = Subscriptions::new(spec.opts.queue_capacity);
        let pipe = Pipe {
            inner: Arc::new(Inner {
                proto: spec.proto,
                kind: spec.kind,
                local: spec.local,
                dest: spec.dest,
                subs: Mutex::new(subs),
                arrived: Notify::new(),
                observers: spec.observers,
                owns_observers: spec.kind != Kind::Accepted,
                clients_subscribe_all: spec.clients_subscribe_all,
                links: Mutex::new(Vec::new()),
                parent: spec.parent,
                closed: AtomicBool::new(false),
                ended: AtomicBool::new(false),
                io: spec.io,
                reader: spec.reader,
                runtime: tokio::runtime::Handle::current(),
                tasks: Mutex::new(Vec::new()),
                mapping: mapped::Slot::default(),
                opts: spec.opts,
            }),
        };
        if spec.subscribe_all {
            // An empty pattern always compiles.
            let _ = lock(&pipe.inner.subs).subscribe(None, None);
        }
        pipe
    }

    fn add_task(&self, task: JoinHandle<()>) {
        lock(&self.inner.tasks).push(task);
    }

    /// Send to the pipe's destination: the TCP peer, or a UDP client's `dest`. A server has
    /// no destination (use [`Pipe::send_to`]).
    pub async fn send(&self, data: &[u8]) -> Result<(), Error> {
        match (&self.inner.io, self.inner.dest) {
            (Io::Stream(writer), _) => writer.write(self, data).await,
            (Io::Datagram(sender), Some(dest)) => sender.send_to(self, data, dest).await,
            (Io::Datagram(_) | Io::Listener(_), _) => Err(Error::NoDestination {
                pipe: self.to_string(),
            }),
        }
    }

    /// Send to `peer`: any address for UDP; for a TCP server, the accepted client connected
    /// from `peer`; for a TCP connection, only its own peer.
    pub async fn send_to(&self, data: &[u8], peer: SocketAddr) -> Result<(), Error> {
        let unknown = || Error::UnknownPeer {
            pipe: self.to_string(),
            peer,
        };
        match &self.inner.io {
            Io::Datagram(sender) => sender.send_to(self, data, peer).await,
            Io::Stream(writer) if self.inner.dest == Some(peer) => writer.write(self, data).await,
            Io::Stream(_) => Err(unknown()),
            Io::Listener(clients) => match clients.find(peer) {
                Some(client) => Box::pin(client.send(data)).await,
                None if self.is_running() => Err(unknown()),
                None => Err(self.closed_error()),
            },
        }
    }

    /// For a TCP server: the next accepted client, in arrival order, waiting up to `timeout`
    /// (zero polls). `Ok(None)` on timeout or once the server is closed.
    pub async fn accept(&self, timeout: Duration) -> Result<Option<Pipe>, Error> {
        match &self.inner.io {
            Io::Listener(clients) => Ok(clients.next(self, timeout).await),
            _ => Err(Error::NotAServer {
                pipe: self.to_string(),
            }),
        }
    }

    /// A TCP server's connected clients (P2PD `tcp_clients`); empty for other pipes.
    pub fn clients(&self) -> Vec<Pipe> {
        match &self.inner.io {
            Io::Listener(clients) => clients.all(),
            _ => Vec::new(),
        }
    }

    /// A new observer of this pipe's events. On a TCP server or one of its accepted clients
    /// it sees the events of the server and of all its clients.
    pub fn events(&self) -> mpsc::Receiver<PipeEvent> {
        let events = self.inner.observers.add();
        // A reader standing aside for `recv` callers must pass events on from now on.
        if let Some(reader) = &self.inner.reader {
            reader.wake();
        }
        events
    }

    fn closed_error(&self) -> Error {
        Error::Closed {
            pipe: self.to_string(),
        }
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local
    }

    /// The peer of a TCP connection, the default target of a UDP client; `None` for servers.
    pub fn dest(&self) -> Option<SocketAddr> {
        self.inner.dest
    }

    pub fn proto(&self) -> Proto {
        self.inner.proto
    }

    /// True until the pipe is closed here or (TCP) by the peer.
    pub fn is_running(&self) -> bool {
        !self.inner.ended.load(Ordering::SeqCst) && !self.inner.closed.load(Ordering::SeqCst)
    }

    /// Messages dropped because a subscription queue was full.
    pub fn dropped(&self) -> u64 {
        lock(&self.inner.subs).dropped()
    }

    /// UDP events dropped because an observer's channel was full (shared by a TCP server
    /// and its clients, like the observers themselves).
    pub fn events_dropped(&self) -> u64 {
        self.inner.observers.dropped()
    }

    /// Whether two handles are the same pipe.
    /// A number that tells this pipe from every other one alive (handles of one pipe
    /// share it).
    pub fn key(&self) -> usize {
        Arc::as_ptr(&self.inner) as usize
    }

    pub fn same(&self, other: &Pipe) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

/// `now + timeout`, saturating at a far future for "forever"-like timeouts.
fn deadline_after(timeout: Duration) -> tokio::time::Instant {
    let now = tokio::time::Instant::now();
    now.checked_add(timeout)
        .unwrap_or_else(|| now + Duration::from_secs(365 * 24 * 3600))
}

impl fmt::Display for Pipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.inner;
        match (inner.kind, inner.dest) {
            (Kind::Server, _) | (_, None) => write!(f, "{} server {}", inner.proto, inner.local),
            (Kind::Client | Kind::Accepted, Some(dest)) => {
                write!(f, "{} {} -> {}", inner.proto, inner.local, dest)
            }
        }
    }
}

impl fmt::Debug for Pipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pipe({self})")
    }
}
