//! A scripting session for tests: the same `Session` the REPL drives, with output
//! captured in memory. Shared by the integration tests that talk to it in Rhai.

// Each test binary uses its own subset of these helpers.
#![allow(dead_code, unused_macros)]

/// Runs each `async fn(v6: bool)` case once per family, on a multi-threaded runtime as the
/// REPL uses (readers and callers on different threads). Needs `#[macro_use] mod common;`.
macro_rules! both_families_async {
    ($($case:ident),* $(,)?) => {
        mod v4 { $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() { super::$case(false).await }
        )* }
        mod v6 { $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() { super::$case(true).await }
        )* }
    };
}

pub mod expected;
pub mod natlab;
pub mod netns;
pub mod pmp_gateway;
pub mod portmap_lab;

use p2pd::script::{Cancel, MemorySink, Session, SessionOptions, Sink};
use std::sync::Arc;

/// A session, the sink its output goes to, and the runtime it runs on.
pub struct Shell<S = MemorySink> {
    pub session: Session,
    pub sink: Arc<S>,
    _rt: tokio::runtime::Runtime,
}

/// A session with output kept in memory, on one runtime worker.
pub fn shell() -> Shell {
    Shell::new(
        Arc::new(MemorySink::default()),
        1,
        SessionOptions::default(),
    )
}

impl<S: Sink + 'static> Shell<S> {
    /// A session printing into `sink`, on a runtime with `workers` worker threads.
    pub fn new(sink: Arc<S>, workers: usize, opts: SessionOptions) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
            .unwrap();
        let session = Session::new(rt.handle().clone(), Cancel::new(), sink.clone(), opts);
        Shell {
            session,
            sink,
            _rt: rt,
        }
    }
}

impl<S> Shell<S> {
    /// Runs `src` as a script; panics (with the rendered error) if it fails.
    pub fn run(&mut self, src: &str) {
        if let Err(e) = self.session.eval(src) {
            panic!("{src}\n{}", e.render("<test>", src));
        }
    }

    /// What the REPL would echo for `src`; panics (with the rendered error) if it fails.
    pub fn echo(&mut self, src: &str) -> String {
        match self.session.eval_line(src) {
            Ok(v) => v.unwrap_or_default(),
            Err(e) => panic!("{src}: {}", e.render("<test>", src)),
        }
    }

    /// The message of the error `src` must fail with.
    pub fn error(&mut self, src: &str) -> String {
        self.session.eval_line(src).expect_err(src).message
    }
}

/// Raises this process's open-file soft limit to at least `want` (up to the hard limit):
/// tests that hold a thousand sockets need more than the usual 1024.
pub fn raise_fd_limit(want: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed in.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < want {
            lim.rlim_cur = want.min(lim.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}
