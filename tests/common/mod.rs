//! A scripting session for tests: the same `Session` the REPL drives, with output
//! captured in memory. Shared by the integration tests that talk to it in Rhai.

// Each test binary uses its own subset of these helpers.
#![allow(dead_code)]

pub mod netns;

use p2pd::script::{Cancel, MemorySink, Session, SessionOptions};
use std::sync::Arc;

pub struct Shell {
    pub session: Session,
    pub sink: Arc<MemorySink>,
    _rt: tokio::runtime::Runtime,
}

pub fn shell() -> Shell {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let sink = Arc::new(MemorySink::default());
    let session = Session::new(
        rt.handle().clone(),
        Cancel::new(),
        sink.clone(),
        SessionOptions::default(),
    );
    Shell {
        session,
        sink,
        _rt: rt,
    }
}

impl Shell {
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
