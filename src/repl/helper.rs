//! The line editor's helper: completion and colouring.
//!
//! It runs on the editor thread while the script thread may be busy, so it never
//! touches the engine: it reads a snapshot of names ([`Names`]) that the script
//! thread refreshes after every input.

use super::highlight::highlight;
use rustyline::completion::{Completer, Pair};
use rustyline::highlight::{CmdKind, Highlighter};
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::{Context, Helper};
use std::borrow::Cow;
use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};

/// What TAB can offer.
#[derive(Default)]
pub struct Names {
    /// Functions, variables, constants and keywords.
    pub globals: BTreeSet<String>,
    /// Names that make sense after a dot.
    pub methods: BTreeSet<String>,
}

pub struct ShellHelper {
    pub names: Arc<RwLock<Names>>,
    pub colour: bool,
}

impl ShellHelper {
    fn candidates(&self, line: &str, pos: usize) -> (usize, Vec<Pair>) {
        let before = &line[..pos];
        let start = before
            .char_indices()
            .rev()
            .take_while(|(_, c)| c.is_alphanumeric() || *c == '_')
            .last()
            .map_or(pos, |(i, _)| i);
        let prefix = &before[start..];
        let after_dot = before[..start].ends_with('.');
        let names = self.names.read().unwrap_or_else(|p| p.into_inner());
        let pool = if after_dot {
            &names.methods
        } else {
            &names.globals
        };
        let found = pool
            .iter()
            .filter(|n| n.starts_with(prefix) && !n.starts_with("__"))
            .map(|n| Pair {
                display: n.clone(),
                replacement: n.clone(),
            })
            .collect();
        (start, found)
    }
}

impl Completer for ShellHelper {
    type Candidate = Pair;
    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        Ok(self.candidates(line, pos))
    }
}

impl Highlighter for ShellHelper {
    fn highlight<'l>(&self, line: &'l str, _pos: usize) -> Cow<'l, str> {
        if self.colour {
            Cow::Owned(highlight(line))
        } else {
            Cow::Borrowed(line)
        }
    }
    fn highlight_char(&self, _line: &str, _pos: usize, _kind: CmdKind) -> bool {
        self.colour
    }
}

/// Multi-line input is handled by the REPL loop (it needs the `... ` prompt, which
/// rustyline's own multi-line mode does not draw), so every line is accepted here.
impl Validator for ShellHelper {}

impl Hinter for ShellHelper {
    type Hint = String;
}

impl Helper for ShellHelper {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completes_globals_and_methods() {
        let mut names = Names::default();
        names
            .globals
            .extend(["sleep".to_string(), "spawn".into(), "my_var".into()]);
        names.methods.extend(["hex".to_string(), "text".into()]);
        let h = ShellHelper {
            names: Arc::new(RwLock::new(names)),
            colour: false,
        };
        let (start, c) = h.candidates("let x = sl", 10);
        assert_eq!(start, 8);
        assert_eq!(
            c.iter().map(|p| p.replacement.as_str()).collect::<Vec<_>>(),
            ["sleep"]
        );
        let (start, c) = h.candidates("b.he", 4);
        assert_eq!(start, 2);
        assert_eq!(c[0].replacement, "hex");
        let (_, c) = h.candidates("my", 2);
        assert_eq!(c[0].replacement, "my_var");
    }
}
