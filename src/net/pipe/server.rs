//! TCP servers: the accept loop and the accepted clients.
//!
//! Each accepted connection becomes its own [`Pipe`] (P2PD's TCP_CLIENT) that shares the
//! server's observers. Its messages also reach the server's own subscriptions and links, so a
//! TCP server can be read like a UDP one (`subscribe(None, Some(peer))`, `recv`) and answered
//! with `send_to(peer)`. Clients wait in arrival order for [`Pipe::accept`] (P2PD's
//! `await pipe`); that queue is bounded like the others, oldest first out, but a client
//! pushed out of it stays connected and listed in `clients()`.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Notify;

use super::events::{Observers, PipeEvent};
use super::{
    Error, Inner, Io, Kind, Pipe, PipeOptions, Proto, Spec, deadline_after, lock, reader, socket,
    tcp,
};

/// Pause after a failed accept (e.g. out of file descriptors) instead of spinning.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

pub(super) struct Clients {
    /// Connected clients, strong: the server keeps them alive until they end.
    all: Mutex<Vec<Pipe>>,
    /// Accepted but not yet handed out by `accept`.
    fresh: Mutex<VecDeque<Pipe>>,
    ready: Notify,
}

/// Listen on `local` and start accepting.
pub(super) fn listen(
    local: SocketAddr,
    opts: PipeOptions,
    observers: Arc<Observers>,
    clients_subscribe_all: bool,
) -> Result<Pipe, Error> {
    let listener = socket::tcp_listener(local)?;
    let bound = listener.local_addr().unwrap_or(local);
    let pipe = Pipe::build(Spec {
        proto: Proto::Tcp,
        kind: Kind::Server,
        local: bound,
        dest: None,
        opts,
        io: Io::Listener(Clients {
            all: Mutex::new(Vec::new()),
            fresh: Mutex::new(VecDeque::new()),
            ready: Notify::new(),
        }),
        reader: None,
        observers,
        parent: Weak::new(),
        subscribe_all: false,
        clients_subscribe_all,
    });
    let task = tokio::spawn(accept_loop(Arc::downgrade(&pipe.inner), listener));
    pipe.add_task(task);
    Ok(pipe)
}

async fn accept_loop(server: Weak<Inner>, listener: TcpListener) {
    loop {
        let accepted = listener.accept().await;
        let Some(inner) = server.upgrade() else {
            return;
        };
        let server = Pipe { inner };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(_) => {
                drop(server);
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let client = tcp::adopt(stream, peer, &server);
        if let Io::Listener(clients) = &server.inner.io {
            clients.push(client.clone(), server.inner.opts.queue_capacity);
        }
        server
            .inner
            .observers
            .emit(PipeEvent::Up(client.clone()), true)
            .await;
        // Only now: the client's first message must not overtake its `Up`.
        reader::spawn(&client);
    }
}

impl Clients {
    fn push(&self, client: Pipe, capacity: usize) {
        lock(&self.all).push(client.clone());
        let mut fresh = lock(&self.fresh);
        if fresh.len() >= capacity.max(1) {
            fresh.pop_front();
        }
        fresh.push_back(client);
        drop(fresh);
        self.ready.notify_waiters();
    }

    /// The next accepted client, waiting up to `timeout` (zero polls).
    pub(super) async fn next(&self, server: &Pipe, timeout: Duration) -> Option<Pipe> {
        let deadline = deadline_after(timeout);
        loop {
            let notified = self.ready.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(client) = lock(&self.fresh).pop_front() {
                return Some(client);
            }
            if timeout.is_zero() || !server.is_running() {
                return None;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return None;
            }
        }
    }

    /// The connected client whose remote address is `peer`.
    pub(super) fn find(&self, peer: SocketAddr) -> Option<Pipe> {
        lock(&self.all)
            .iter()
            .find(|c| c.inner.dest == Some(peer))
            .cloned()
    }

    pub(super) fn all(&self) -> Vec<Pipe> {
        lock(&self.all).clone()
    }

    /// Forget a client that ended.
    pub(super) fn remove(&self, client: &Pipe) {
        lock(&self.all).retain(|c| !c.same(client));
    }

    /// Every client, for closing them with the server.
    pub(super) fn take_all(&self) -> Vec<Pipe> {
        lock(&self.fresh).clear();
        std::mem::take(&mut *lock(&self.all))
    }

    /// Wake `accept` waiters, e.g. because the server closed.
    pub(super) fn wake(&self) {
        self.ready.notify_waiters();
    }
}
