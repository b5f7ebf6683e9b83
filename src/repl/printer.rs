//! Output while the prompt is on screen, and the status line of a long wait.
//!
//! A callback can fire while a person is typing. Writing to stdout then would land in
//! the middle of their line; rustyline's external printer instead prints above the
//! prompt and redraws it. The printer blocks briefly per message, so one dedicated
//! thread owns it and everything else sends text over a channel, which also keeps
//! the order of messages.
//!
//! The same thread draws the status line (`script::status`) while an evaluation waits:
//! it knows whether the line is up, so other output first erases it and then draws it
//! again below, and the two never mix ([`Screen`]).

use crate::script::Sink;
use crate::script::status::StatusOut;
use owo_colors::OwoColorize;
use rustyline::ExternalPrinter;
use std::sync::Mutex;
use std::sync::mpsc::{Sender, channel};

/// Erases the current row and goes to its start.
const ERASE: &str = "\r\x1b[2K";

enum Msg {
    Text(String),
    Status(Option<String>),
    /// Answered once everything sent before it is on the screen.
    Flush(std::sync::mpsc::SyncSender<()>),
}

/// How long [`PromptSink::flush`] waits for the printer at most.
const FLUSH_LIMIT: std::time::Duration = std::time::Duration::from_secs(1);

/// What is on the last row: the bytes each message becomes, given the status line.
#[derive(Default)]
pub struct Screen {
    status: Option<String>,
}

impl Screen {
    /// A line of output: above the status line, which stays.
    pub fn text(&mut self, text: &str) -> String {
        match &self.status {
            Some(s) => format!("{ERASE}{text}\n{s}"),
            None => format!("{text}\n"),
        }
    }

    /// Draws, redraws (`Some`) or erases (`None`) the status line.
    pub fn status(&mut self, line: Option<String>) -> String {
        let bytes = match (&line, &self.status) {
            (Some(l), _) => format!("{ERASE}{l}"),
            (None, Some(_)) => ERASE.to_string(),
            (None, None) => String::new(),
        };
        self.status = line;
        bytes
    }
}

pub struct PromptSink {
    tx: Mutex<Sender<Msg>>,
    colour: bool,
}

impl PromptSink {
    /// Starts the printer thread.
    pub fn start(mut printer: impl ExternalPrinter + Send + 'static, colour: bool) -> Self {
        let (tx, rx) = channel::<Msg>();
        std::thread::Builder::new()
            .name("printer".into())
            .spawn(move || {
                let mut screen = Screen::default();
                for msg in rx {
                    let bytes = match msg {
                        Msg::Text(t) => screen.text(&t),
                        Msg::Status(s) => screen.status(s),
                        Msg::Flush(done) => {
                            let _ = done.send(());
                            continue;
                        }
                    };
                    if !bytes.is_empty() && printer.print(bytes).is_err() {
                        break;
                    }
                }
            })
            .expect("spawn the printer thread");
        Self {
            tx: Mutex::new(tx),
            colour,
        }
    }

    fn send(&self, msg: Msg) {
        let _ = self.tx.lock().unwrap_or_else(|p| p.into_inner()).send(msg);
    }

    /// Waits until everything sent so far is written. The REPL calls it before the next
    /// prompt: written then, output (and the status line's erasure) lands before the
    /// prompt, not above a prompt redrawn for it.
    pub fn flush(&self) {
        let (done, written) = std::sync::mpsc::sync_channel(1);
        self.send(Msg::Flush(done));
        let _ = written.recv_timeout(FLUSH_LIMIT);
    }
}

impl Sink for PromptSink {
    fn out(&self, text: &str) {
        self.send(Msg::Text(text.to_string()));
    }
    fn err(&self, text: &str) {
        if self.colour {
            self.send(Msg::Text(text.red().to_string()));
        } else {
            self.send(Msg::Text(text.to_string()));
        }
    }
}

impl StatusOut for PromptSink {
    fn status(&self, line: Option<&str>) {
        self.send(Msg::Status(line.map(str::to_string)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_goes_above_the_status_line_which_is_erased_at_the_end() {
        let mut s = Screen::default();
        assert_eq!(s.text("plain"), "plain\n");
        assert_eq!(s.status(None), "", "nothing to erase");
        assert_eq!(s.status(Some("recv, 0.3 s".into())), "\r\x1b[2Krecv, 0.3 s");
        assert_eq!(s.status(Some("recv, 0.4 s".into())), "\r\x1b[2Krecv, 0.4 s");
        assert_eq!(s.text("tick"), "\r\x1b[2Ktick\nrecv, 0.4 s");
        assert_eq!(s.status(None), "\r\x1b[2K");
        assert_eq!(s.text("after"), "after\n");
    }
}
