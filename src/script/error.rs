//! The one place where Rust errors become Rhai errors, and Rhai errors become text.
//!
//! A thrown value is a map `#{kind, message}` so a script can `catch (e)` and branch
//! on `e.kind`; the shell prints only the message. Engine errors (a missing function,
//! a type mismatch) keep Rhai's own wording with the position cut off, because the
//! shell prints the position itself as `FILE:LINE:COL`.
//!
//! What a message may say about a value is decided here too: [`show`] echoes a script
//! value short (strings through `text::quoted`), [`type_name`] names its type as scripts
//! know it. No message renders a Rust type with `{:?}`.

use super::bridge::{CANCELLED, INTERRUPT};
use super::bytes::Bytes;
pub use super::registry::type_name;
use crate::text;
use rhai::{Dynamic, EvalAltResult, Map, ParseError, Position};
use std::fmt::Display;

/// No message is longer than this, whatever went into it: the last guard against an
/// echoed value that was not cut where it was echoed.
pub const MAX_MESSAGE_CHARS: usize = 2000;

/// Builds a catchable error with a machine-readable kind ("timeout", "refused", ...).
pub fn error(kind: &str, message: impl Display) -> Box<EvalAltResult> {
    let mut map = Map::new();
    map.insert("kind".into(), kind.into());
    map.insert("message".into(), bounded(message.to_string()).into());
    EvalAltResult::ErrorRuntime(Dynamic::from_map(map), Position::NONE).into()
}

/// Cuts a message past [`MAX_MESSAGE_CHARS`]; one it cut already (a little longer, with
/// its note) stays as it is.
fn bounded(message: String) -> String {
    if message.char_indices().nth(MAX_MESSAGE_CHARS + 64).is_none() {
        return message;
    }
    match message.char_indices().nth(MAX_MESSAGE_CHARS) {
        None => message,
        Some((cut, _)) => format!(
            "{}... ({} characters)",
            &message[..cut],
            message.chars().count()
        ),
    }
}

/// A script value as a message echoes it: strings quoted and cut short, numbers and
/// flags as written, arrays and maps by their first items, other objects by type
/// (`<Interface>`). Bounded in time and length, whatever the value's size.
pub fn show(value: &Dynamic) -> String {
    let mut out = String::new();
    render(value, 0, &mut out);
    out
}

/// Items shown of an array or map before "...".
const SHOWN_ITEMS: usize = 4;
/// Characters of a string, and bytes of a bytes value, shown inside an array or map.
const NESTED_CHARS: usize = 24;

fn render(value: &Dynamic, depth: usize, out: &mut String) {
    if value.is_unit() {
        out.push_str("()");
    } else if let Some(s) = value.read_lock::<rhai::ImmutableString>() {
        let chars = if depth == 0 {
            text::ECHO_CHARS
        } else {
            NESTED_CHARS
        };
        out.push_str(&text::quoted_within(s.as_str(), chars));
    } else if value.is_int() || value.is_float() || value.is_bool() {
        out.push_str(&value.to_string());
    } else if let Ok(c) = value.as_char() {
        out.push_str(&format!("{c:?}"));
    } else if let Some(b) = value.read_lock::<Bytes>() {
        let head = Bytes(b.0.iter().take(NESTED_CHARS).copied().collect());
        out.push_str(&head.repr());
        if b.0.len() > NESTED_CHARS {
            out.push_str(&format!("... ({} bytes)", b.0.len()));
        }
    } else if let Some(items) = value.read_lock::<rhai::Array>() {
        if depth > 1 && !items.is_empty() {
            out.push_str(&format!("[...{} items]", items.len()));
            return;
        }
        out.push('[');
        for (i, item) in items.iter().take(SHOWN_ITEMS).enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            render(item, depth + 1, out);
        }
        if items.len() > SHOWN_ITEMS {
            out.push_str(&format!(", ... {} items", items.len()));
        }
        out.push(']');
    } else if let Some(map) = value.read_lock::<Map>() {
        if depth > 1 && !map.is_empty() {
            out.push_str(&format!("#{{...{} keys}}", map.len()));
            return;
        }
        out.push_str("#{");
        for (i, (k, v)) in map.iter().take(SHOWN_ITEMS).enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str(&text::quoted(k));
            out.push_str(": ");
            render(v, depth + 1, out);
        }
        if map.len() > SHOWN_ITEMS {
            out.push_str(&format!(", ... {} keys", map.len()));
        }
        out.push('}');
    } else if let Some(blob) = value.read_lock::<rhai::Blob>() {
        out.push_str(&format!("<blob of {} bytes>", blob.len()));
    } else {
        out.push('<');
        out.push_str(type_name(value));
        out.push('>');
    }
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
            interrupted: is_interrupt(err) && super::limits::limit_hit(err).is_none(),
        }
    }

    pub fn from_parse(err: &ParseError) -> Self {
        let message = match err.err_type() {
            rhai::ParseErrorType::BadInput(rhai::LexError::StringTooLong(max)) => format!(
                "a string literal is longer than the string limit of {max} bytes: raise it with limits(#{{string: N}}) or --limit string=N"
            ),
            other => bounded(other.to_string()),
        };
        Self {
            message,
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
    if let Some(limit) = super::limits::describe(err) {
        return limit;
    }
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
        other => bounded(rhai_type_names(strip_position(&other.to_string()))),
    }
}

/// Rhai writes a string argument in "Function not found: f (...)" as the Rust types it
/// accepts; scripts know the type as `string`, as `type_of` says.
pub fn rhai_type_names(text: &str) -> String {
    text.replace("&str | ImmutableString | String", "string")
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
        return bounded(m.to_string());
    }
    bounded(value.to_string())
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
    fn values_are_shown_short_and_without_rust_types() {
        assert_eq!(
            show(&Dynamic::from("127.0.0.1:70000")),
            "\"127.0.0.1:70000\""
        );
        assert_eq!(show(&Dynamic::UNIT), "()");
        assert_eq!(show(&Dynamic::from(70000_i64)), "70000");
        let huge = Dynamic::from("x".repeat(10_000_000));
        let arr: rhai::Array = vec![huge.clone(), 1_i64.into(), huge.clone(), ().into(), huge];
        let shown = show(&Dynamic::from(arr));
        assert!(shown.len() < 200 && shown.contains("characters"), "{shown}");
        let bytes = Dynamic::from(Bytes(vec![0; 1_000_000]));
        assert!(show(&bytes).ends_with("... (1000000 bytes)"));
        let nested: rhai::Array = vec![Dynamic::from(vec![Dynamic::from(vec![Dynamic::UNIT])])];
        assert_eq!(show(&Dynamic::from(nested)), "[[[...1 items]]]");
        // A type registered without a name shows its own, never a Rust path.
        #[derive(Clone)]
        struct Unnamed;
        assert_eq!(show(&Dynamic::from(Unnamed)), "<Unnamed>");
    }

    #[test]
    fn messages_are_bounded() {
        let e = error("value", "y".repeat(10_000));
        let m = message_of(&e);
        assert!(
            m.len() < MAX_MESSAGE_CHARS + 50 && m.ends_with("(10000 characters)"),
            "{}",
            &m[m.len().saturating_sub(100)..]
        );
    }

    #[test]
    fn rhai_errors_name_string_as_scripts_do() {
        let err = rhai::Engine::new().run(r#"resolve("a", 1)"#).unwrap_err();
        assert_eq!(
            message_of(&err),
            "Function not found: resolve (string, i64)"
        );
    }

    #[test]
    fn thrown_maps_show_their_message() {
        let e = error("timeout", "no reply from 127.0.0.1:9 within 1.0 s");
        assert_eq!(message_of(&e), "no reply from 127.0.0.1:9 within 1.0 s");
    }
}
