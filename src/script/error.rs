//! The one place where Rust errors become Rhai errors, and Rhai errors become text.
//!
//! A thrown value is a map `#{kind, message}` so a script can `catch (e)` and branch
//! on `e.kind`; the shell prints only the message. Engine errors (a missing function,
//! a type mismatch) keep Rhai's own wording with the position cut off, because the
//! shell prints the position itself as `FILE:LINE:COL`.

use super::bridge::{CANCELLED, INTERRUPT};
use rhai::{Dynamic, EvalAltResult, Map, ParseError, Position};
use std::fmt::Display;

/// Builds a catchable error with a machine-readable kind ("timeout", "refused", ...).
pub fn error(kind: &str, message: impl Display) -> Box<EvalAltResult> {
    let mut map = Map::new();
    map.insert("kind".into(), kind.into());
    map.insert("message".into(), message.to_string().into());
    EvalAltResult::ErrorRuntime(Dynamic::from_map(map), Position::NONE).into()
}

/// A failed evaluation, ready to show to a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptError {
    pub message: String,
    /// 1-based line and column, when Rhai knows them.
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// Ctrl-C stopped the evaluation.
    pub interrupted: bool,
}

impl ScriptError {
    pub fn from_eval(err: &EvalAltResult) -> Self {
        let pos = innermost_position(err);
        Self {
            message: message_of(err),
            line: pos.line(),
            column: pos.position(),
            interrupted: is_interrupt(err),
        }
    }

    pub fn from_parse(err: &ParseError) -> Self {
        Self {
            message: err.err_type().to_string(),
            line: err.position().line(),
            column: err.position().position(),
            interrupted: false,
        }
    }

    /// `FILE:LINE:COL: message`, then the source line and a caret under the column.
    pub fn render(&self, file: &str, source: &str) -> String {
        if self.interrupted {
            return "KeyboardInterrupt".to_string();
        }
        let Some(line) = self.line else {
            return format!("{file}: {}", self.message);
        };
        let col = self.column.unwrap_or(1);
        let mut out = format!("{file}:{line}:{col}: {}", self.message);
        if let Some(text) = source.lines().nth(line.saturating_sub(1)) {
            let text = text.replace('\t', " ");
            out.push_str(&format!(
                "\n    {text}\n    {}^",
                " ".repeat(col.saturating_sub(1))
            ));
        }
        out
    }
}

/// Ctrl-C or a cancelled task; other terminations (a task out of stack) are errors.
fn is_interrupt(err: &EvalAltResult) -> bool {
    match err {
        EvalAltResult::ErrorTerminated(why, _) => why
            .read_lock::<rhai::ImmutableString>()
            .is_none_or(|w| w.as_str() == INTERRUPT || w.as_str() == CANCELLED),
        _ => false,
    }
}

/// The text a person needs, without Rhai's "(line 1, position 5)" suffix.
pub fn message_of(err: &EvalAltResult) -> String {
    match err {
        EvalAltResult::ErrorRuntime(value, _) => thrown_message(value),
        EvalAltResult::ErrorTerminated(..) if is_interrupt(err) => "KeyboardInterrupt".to_string(),
        EvalAltResult::ErrorTerminated(why, _) => why.to_string(),
        EvalAltResult::ErrorInFunctionCall(name, _, inner, _) => {
            if name.starts_with("__") || is_plain_thrown(inner) {
                message_of(inner)
            } else {
                format!("in call to {name}: {}", message_of(inner))
            }
        }
        other => strip_position(&other.to_string()).to_string(),
    }
}

/// Rhai's `Display` ends with " (line L, position P)"; the shell prints that itself.
fn strip_position(text: &str) -> &str {
    match text.rfind(" (line ") {
        Some(at) if text.ends_with(')') => &text[..at],
        _ => text,
    }
}

fn is_plain_thrown(err: &EvalAltResult) -> bool {
    matches!(
        err,
        EvalAltResult::ErrorRuntime(..) | EvalAltResult::ErrorTerminated(..)
    )
}

/// Errors inside a function report the position inside its body: that is the line to show.
fn innermost_position(err: &EvalAltResult) -> Position {
    match err {
        EvalAltResult::ErrorInFunctionCall(_, _, inner, pos) => {
            let p = innermost_position(inner);
            if p.is_none() { *pos } else { p }
        }
        other => other.position(),
    }
}

fn thrown_message(value: &Dynamic) -> String {
    if let Some(m) = value
        .read_lock::<Map>()
        .and_then(|map| map.get("message").cloned())
    {
        return m.to_string();
    }
    value.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_points_at_the_column() {
        let e = ScriptError {
            message: "Variable not found: y".into(),
            line: Some(2),
            column: Some(9),
            interrupted: false,
        };
        assert_eq!(
            e.render("t.rhai", "let x = 1;\nlet z = y;"),
            "t.rhai:2:9: Variable not found: y\n    let z = y;\n            ^"
        );
    }

    #[test]
    fn thrown_maps_show_their_message() {
        let e = error("timeout", "no reply from 127.0.0.1:9 within 1.0 s");
        assert_eq!(message_of(&e), "no reply from 127.0.0.1:9 within 1.0 s");
    }
}
