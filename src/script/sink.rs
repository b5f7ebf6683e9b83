//! Where script output goes.
//!
//! In a script run it is plain stdout/stderr; in the REPL it must pass through the line
//! editor's external printer so a callback firing while a person types appears above
//! the prompt instead of inside their half-typed line. The script layer only sees
//! this trait.

use std::io::Write;

pub trait Sink: Send + Sync {
    /// Normal output (`print`, echoed values). `text` has no trailing newline.
    fn out(&self, text: &str);
    /// Diagnostics (errors, warnings).
    fn err(&self, text: &str);
}

/// Writes straight to the process's stdout and stderr.
pub struct StdSink;

impl Sink for StdSink {
    fn out(&self, text: &str) {
        let mut o = std::io::stdout().lock();
        let _ = writeln!(o, "{text}");
        let _ = o.flush();
    }
    fn err(&self, text: &str) {
        let _ = writeln!(std::io::stderr().lock(), "{text}");
    }
}

/// Collects output in memory: for tests and for embedding.
#[derive(Default)]
pub struct MemorySink {
    pub lines: std::sync::Mutex<Vec<String>>,
}

impl MemorySink {
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.lines.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl Sink for MemorySink {
    fn out(&self, text: &str) {
        self.lines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(text.to_string());
    }
    fn err(&self, text: &str) {
        self.out(text);
    }
}
