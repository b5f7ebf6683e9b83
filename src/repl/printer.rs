//! Output while the prompt is on screen.
//!
//! A callback can fire while a person is typing. Writing to stdout then would land in
//! the middle of their line; rustyline's external printer instead prints above the
//! prompt and redraws it. The printer blocks briefly per message, so one dedicated
//! thread owns it and everything else sends text over a channel, which also keeps
//! the order of messages.

use crate::script::Sink;
use owo_colors::OwoColorize;
use rustyline::ExternalPrinter;
use std::sync::Mutex;
use std::sync::mpsc::{Sender, channel};

pub struct PromptSink {
    tx: Mutex<Sender<String>>,
    colour: bool,
}

impl PromptSink {
    /// Starts the printer thread.
    pub fn start(mut printer: impl ExternalPrinter + Send + 'static, colour: bool) -> Self {
        let (tx, rx) = channel::<String>();
        std::thread::Builder::new()
            .name("printer".into())
            .spawn(move || {
                for msg in rx {
                    if printer.print(msg).is_err() {
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

    fn send(&self, text: String) {
        let _ = self
            .tx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(text + "\n");
    }
}

impl Sink for PromptSink {
    fn out(&self, text: &str) {
        self.send(text.to_string());
    }
    fn err(&self, text: &str) {
        if self.colour {
            self.send(text.red().to_string());
        } else {
            self.send(text.to_string());
        }
    }
}
