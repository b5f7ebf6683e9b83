//! How a pipe ends: `close()` from the owner, EOF or reset noticed by a reader, or the last
//! handle dropped. Whichever comes first emits `End` once and wakes every waiter; `close`
//! also waits until the socket is really closed, so its port can be bound again at once,
//! and until a server's port mapping is deleted on the gateway (dropping deletes it in
//! the background).

use std::sync::atomic::Ordering;

use super::{Inner, Io, Pipe, PipeEvent, lock};

impl Pipe {
    /// Delete a server's port mapping, close the socket (a server also closes its
    /// accepted clients), end `recv` waits and emit `End`. Safe to call twice. When it
    /// returns the port can be bound again.
    pub async fn close(&self) {
        let inner = &self.inner;
        if inner.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        // First, so that nothing more is forwarded to a port about to close; bounded by
        // the gateway request's timeout.
        self.unmap().await;
        let tasks = std::mem::take(&mut *lock(&inner.tasks));
        for task in &tasks {
            task.abort();
        }
        for task in tasks {
            // Awaiting an aborted task returns once its future, and the socket half it
            // owns, is dropped. Never await the calling task itself.
            if tokio::task::try_id() != Some(task.id()) {
                let _ = task.await;
            }
        }
        // Released here as well as in `end`: a reader may have started `end` and been
        // aborted above before releasing anything.
        release_reader(inner).await;
        match &inner.io {
            Io::Stream(writer) => writer.shutdown().await,
            Io::Datagram(sender) => sender.close(),
            Io::Listener(clients) => {
                for client in clients.take_all() {
                    Box::pin(client.close()).await;
                }
            }
        }
        lock(&inner.links).clear();
        self.end().await;
        if inner.owns_observers {
            inner.observers.clear();
        }
    }

    /// A reader saw EOF or a fatal error. `end` runs in a task of its own, because `close`
    /// aborts the reader tasks and must not cancel an `End` half emitted.
    pub(super) fn reader_finished(self) {
        // On the pipe's own runtime: a reader may be a `try_recv` on a plain thread.
        let runtime = self.inner.runtime.clone();
        runtime.spawn(async move { self.end().await });
    }

    /// The end of a pipe, whoever noticed it first (reader at EOF, or `close`). Emits `End`
    /// once.
    pub(super) async fn end(&self) {
        let inner = &self.inner;
        if inner.ended.swap(true, Ordering::SeqCst) {
            return;
        }
        if let Io::Stream(writer) = &inner.io {
            writer.shutdown().await;
        }
        if let Some(server) = inner.parent.upgrade()
            && let Io::Listener(clients) = &server.io
        {
            clients.remove(self);
        }
        release_reader(inner).await;
        if let Io::Listener(clients) = &inner.io {
            clients.wake();
        }
        // Bounded, so a stalled observer cannot make `close` hang.
        let _ = tokio::time::timeout(
            inner.opts.send_timeout,
            inner.observers.emit(PipeEvent::End(self.clone()), true),
        )
        .await;
    }
}

/// Wake `recv` callers (so they let go of the socket they wait on), then drop the read
/// side.
async fn release_reader(inner: &Inner) {
    inner.arrived.notify_waiters();
    if let Some(reader) = &inner.reader {
        reader.close().await;
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        for task in lock(&self.tasks).drain(..) {
            task.abort();
        }
        self.mapping.release(&self.runtime);
    }
}
