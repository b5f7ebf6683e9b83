//! The interactive front end: a `python3 -m asyncio`-like REPL over a [`Session`].
//!
//! Three threads cooperate:
//! - the editor thread runs rustyline (history, completion, colour, multi-line input)
//!   and sends each finished input over a channel, then waits until it has run and
//!   been told what to put at the next prompt (the tour puts its code there);
//! - the script thread (the caller's) owns the session and decides what an input is
//!   ([`front`]); between inputs it keeps running callbacks posted by the runtime, so
//!   timers and pipe callbacks fire while the prompt waits;
//! - the printer thread writes output above the prompt (see [`printer`]).
//!
//! Ctrl-C at the prompt clears the line (rustyline reads it as a key in raw mode);
//! during an evaluation the terminal is in cooked mode, so it arrives as SIGINT and
//! trips the session's cancel flag instead.

pub mod front;
pub mod helper;
pub mod highlight;
pub mod history;
pub mod printer;
pub mod tour;

use crate::script::lexer::scan;
use crate::script::{Session, Sink, StdSink};
use front::{Front, Prompt};
use helper::{Names, ShellHelper};
use rustyline::error::ReadlineError;
use rustyline::history::FileHistory;
use rustyline::{CompletionType, Config, Editor};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use tokio::sync::mpsc;

pub const PROMPT: &str = ">>> ";
pub const CONTINUATION: &str = "... ";

pub struct ReplOptions {
    pub colour: bool,
    pub history: Option<PathBuf>,
    /// Use the local world from the start (`--offline`).
    pub offline: bool,
    /// Start on the guided tour (`--tour`).
    pub tour: bool,
    /// Show what a long wait waits for (a terminal, colour allowed: see `script::status`).
    pub status: bool,
}

enum Input {
    Line(String),
    Eof,
}

/// Runs the REPL until Ctrl-D. `make_session` receives the output sink to use.
pub fn run(opts: ReplOptions, make_session: impl FnOnce(Arc<dyn Sink>) -> Session) -> i32 {
    let config = Config::builder()
        .completion_type(CompletionType::List)
        .auto_add_history(false)
        .build();
    let mut editor: Editor<ShellHelper, FileHistory> = match Editor::with_config(config) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("p2pd-repl: cannot start the line editor: {e}");
            return 1;
        }
    };
    let names = Arc::new(RwLock::new(Names::default()));
    editor.set_helper(Some(ShellHelper {
        names: names.clone(),
        colour: opts.colour,
    }));
    if let Some(path) = &opts.history {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = editor.load_history(path);
    }
    let printer = editor
        .create_external_printer()
        .ok()
        .map(|p| Arc::new(printer::PromptSink::start(p, opts.colour)));
    let sink: Arc<dyn Sink> = match &printer {
        Some(p) => p.clone(),
        None => Arc::new(StdSink),
    };
    if let Some(p) = printer.as_ref().filter(|_| opts.status) {
        crate::script::status::install(p.clone());
    }
    let session = make_session(sink.clone());
    refresh_names(&session, &names);

    let banner = format!(
        "p2pd-repl {} (Rhai {}) - `await` works at top level. help() for help, Ctrl-D to exit.\n\
         New to P2PD? tour() walks through its Basics tutorial, one step at a time.",
        env!("CARGO_PKG_VERSION"),
        "1.27"
    );
    sink.out(&banner);
    let mut front = Front::new(session, sink.clone(), opts.colour);
    if opts.offline {
        front.go_offline("--offline");
    }
    let first = if opts.tour {
        front.start_tour()
    } else {
        Prompt::default()
    };

    let (line_tx, mut line_rx) = mpsc::channel::<Input>(1);
    let (done_tx, done_rx) = std::sync::mpsc::channel::<Prompt>();
    let cancel = front.session.cancel().clone();
    let history = opts.history.clone();
    let editor_thread = std::thread::Builder::new()
        .name("editor".into())
        .spawn(move || {
            // Lines typed so far for an input that is not finished (open brackets or
            // an unterminated string): Python's `... ` continuation.
            let mut pending = String::new();
            let mut initial = first.initial;
            loop {
                let prompt = if pending.is_empty() {
                    PROMPT
                } else {
                    CONTINUATION
                };
                let read = match initial.take() {
                    Some(text) => editor.readline_with_initial(prompt, (&text, "")),
                    None => editor.readline(prompt),
                };
                let input = match read {
                    Ok(line) => {
                        if !pending.is_empty() {
                            pending.push('\n');
                        }
                        pending.push_str(&line);
                        if pending.trim().is_empty() {
                            // Sent too: during the tour, Enter here means "go on".
                            pending.clear();
                            Input::Line(String::new())
                        } else if scan(&pending).is_incomplete() {
                            continue;
                        } else {
                            let input = std::mem::take(&mut pending);
                            let _ = editor.add_history_entry(input.as_str());
                            if let Some(path) = &history {
                                let _ = editor.append_history(path);
                            }
                            Input::Line(input)
                        }
                    }
                    // Clears the input; also stops a callback running while idle.
                    Err(ReadlineError::Interrupted) => {
                        pending.clear();
                        cancel.trip();
                        continue;
                    }
                    Err(_) => {
                        pending.clear();
                        Input::Eof
                    }
                };
                if line_tx.blocking_send(input).is_err() {
                    break;
                }
                match done_rx.recv() {
                    Ok(next) if !next.exit => initial = next.initial,
                    _ => break,
                }
            }
        })
        .expect("spawn the editor thread");

    while let Some(input) = front.session.idle(line_rx.recv()) {
        let next = match input {
            Input::Line(src) => front.line(&src),
            Input::Eof => front.eof(),
        };
        refresh_names(&front.session, &names);
        if let Some(p) = &printer {
            p.flush();
        }
        let exit = next.exit;
        if done_tx.send(next).is_err() || exit {
            break;
        }
    }
    drop(done_tx);
    let _ = editor_thread.join();
    0
}

fn refresh_names(session: &Session, names: &RwLock<Names>) {
    let help = &session.engine().help;
    let mut n = names.write().unwrap_or_else(|p| p.into_inner());
    n.globals.clear();
    n.methods.clear();
    n.globals
        .extend(highlight::KEYWORDS.iter().map(|k| k.to_string()));
    n.globals.extend(session.completion_names());
    for (name, h) in &help.entries {
        if h.method {
            n.methods.insert(name.clone());
        } else {
            n.globals.insert(name.clone());
        }
    }
}
