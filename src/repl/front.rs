//! The script thread's side of the REPL: what happens to each finished input.
//!
//! An input is, in order: Enter on an empty prompt (the tour's "go on"), a tour command
//! (`tour()`, and during the tour `next()`, `back()`...), or code. Code goes through the
//! Python shaping of `script::python` (the prompt accepts the tutorial's lines as written),
//! runs in the session, and its value is echoed: `repr(x)` as the last statement echoes
//! the text itself, as the tutorial shows it. The answer to the editor thread is a
//! [`Prompt`]: what to put at the next prompt, or that the REPL ends.

use super::tour::{self, Command, Tour, Turn};
use crate::script::world::{BUDGET, Reach};
use crate::script::{Session, Sink, python};
use owo_colors::OwoColorize;
use std::sync::Arc;

/// What the editor does next.
#[derive(Debug, Default)]
pub struct Prompt {
    /// Text put at the prompt, ready to run or edit.
    pub initial: Option<String>,
    /// Ctrl-D outside the tour: the REPL ends.
    pub exit: bool,
}

pub struct Front {
    pub session: Session,
    sink: Arc<dyn Sink>,
    colour: bool,
    tour: Option<Tour<'static>>,
}

impl Front {
    pub fn new(session: Session, sink: Arc<dyn Sink>, colour: bool) -> Self {
        Self {
            session,
            sink,
            colour,
            tour: None,
        }
    }

    /// One finished input from the editor.
    pub fn line(&mut self, src: &str) -> Prompt {
        if src.trim().is_empty() {
            return match self.tour.as_mut() {
                Some(t) => {
                    let turn = t.empty_line();
                    self.apply(turn)
                }
                None => Prompt::default(),
            };
        }
        match tour::command(src, self.tour.is_some()) {
            Some(Command::Start) => return self.start_tour(),
            Some(cmd) => {
                if let Some(t) = self.tour.as_mut() {
                    let turn = t.command(cmd);
                    return self.apply(turn);
                }
            }
            None => {}
        }
        let ok = self.run(src);
        match self.tour.as_mut() {
            Some(t) => {
                let turn = t.ran(ok, src);
                self.apply(turn)
            }
            None => Prompt::default(),
        }
    }

    /// Ctrl-D: leaves the tour if one is on, else the REPL.
    pub fn eof(&mut self) -> Prompt {
        match self.tour.as_mut() {
            Some(t) => {
                let turn = t.leave();
                self.apply(turn)
            }
            None => Prompt {
                initial: None,
                exit: true,
            },
        }
    }

    /// `--offline`: the local world from the start.
    pub fn go_offline(&mut self, why: &str) {
        match self.session.engine().world.go_offline(why) {
            Ok(notice) => self.sink.out(&notice),
            Err(e) => self.sink.err(&format!("p2pd-repl: {e}")),
        }
    }

    /// `tour()` or `--tour`: the local world if the internet does not answer, then step 1.
    pub fn start_tour(&mut self) -> Prompt {
        let world = self.session.engine().world.clone();
        if !world.is_offline() {
            self.sink.out(&format!(
                "Asking the STUN servers whether the internet answers (up to {:.1} s)...",
                BUDGET.as_secs_f64()
            ));
            match world.check() {
                Reach::Online => self
                    .sink
                    .out("The internet answers: the tour runs on the real network."),
                Reach::Offline(why) => self.go_offline(&why),
            }
        }
        let mut t = Tour::new(tour::steps::embedded());
        let turn = t.begin();
        self.tour = Some(t);
        self.apply(turn)
    }

    fn apply(&mut self, turn: Turn) -> Prompt {
        for text in &turn.say {
            self.sink.out(text);
        }
        if turn.done {
            self.tour = None;
        }
        Prompt {
            initial: turn.prompt,
            exit: false,
        }
    }

    /// Shapes, runs and echoes one piece of code; false if it failed.
    fn run(&mut self, src: &str) -> bool {
        let session = &self.session;
        let shaping = python::rewrite(src, &|name| session.has_variable(name));
        let mut refused = shaping.refused().peekable();
        if refused.peek().is_some() {
            for form in refused {
                self.sink.err(&format!("<stdin>: {}", form.advice));
            }
            return false;
        }
        if let Some(note) = shaping.import_note() {
            self.sink.out(&note);
        }
        match self.session.eval(&shaping.code) {
            Ok(value) if value.is_unit() => true,
            Ok(value) => {
                let text = if shaping.ends_with_repr && value.is_string() {
                    value.into_string().unwrap_or_default()
                } else {
                    self.session.repr(value)
                };
                self.sink.out(&text);
                true
            }
            Err(e) if e.interrupted => {
                let text = "KeyboardInterrupt";
                self.sink.err(&if self.colour {
                    text.yellow().to_string()
                } else {
                    text.into()
                });
                false
            }
            // The sink paints errors red itself.
            Err(e) => {
                self.sink.err(&e.render("<stdin>", &shaping.code));
                false
            }
        }
    }
}
