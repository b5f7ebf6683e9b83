//! How a value a user gave is echoed back in a message: quoted, and cut to about
//! [`ECHO_CHARS`] characters with its full length noted, so a 10 MB argument makes a one-line
//! error instead of a 10 MB one. Every layer uses it (`net` for configuration entries,
//! `script` for arguments, the command line for flags), so it sits below all of them.

/// How many characters of a value an error message repeats.
pub const ECHO_CHARS: usize = 80;

/// `text` in double quotes with escapes (`"a\tb"`); past [`ECHO_CHARS`] characters of
/// that (escapes count as what they print), the first ones and the length:
/// `"aaaa…"... (10485760 characters)`.
pub fn quoted(text: &str) -> String {
    quoted_within(text, ECHO_CHARS)
}

/// [`quoted`], showing at most `chars` characters between the quotes.
pub fn quoted_within(text: &str, chars: usize) -> String {
    let mut out = String::from("\"");
    let mut shown = 0;
    for (i, c) in text.char_indices() {
        let escaped: String = match c {
            '"' => "\\\"".into(),
            '\'' => "'".into(),
            c => c.escape_debug().collect(),
        };
        let width = escaped.chars().count();
        if shown + width > chars {
            let rest = text[i..].chars().count();
            let total = text[..i].chars().count() + rest;
            out.push_str(&format!("\"... ({total} characters)"));
            return out;
        }
        shown += width;
        out.push_str(&escaped);
    }
    out.push('"');
    out
}

/// [`quoted`] for text that is already shown without quotes (a rendered value): cut the
/// same way, not quoted.
pub fn cut(text: &str) -> String {
    match text.char_indices().nth(ECHO_CHARS) {
        None => text.to_string(),
        Some((cut, _)) => format!("{}... ({} characters)", &text[..cut], text.chars().count()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_quoted_whole() {
        assert_eq!(quoted("127.0.0.1:70000"), "\"127.0.0.1:70000\"");
        assert_eq!(quoted(""), "\"\"");
        assert_eq!(quoted("a\tb\"c"), r#""a\tb\"c""#);
        assert_eq!(cut("[1, 2]"), "[1, 2]");
    }

    #[test]
    fn long_text_is_cut_and_counted() {
        let long = "é".repeat(10_000_000);
        let q = quoted(&long);
        assert!(
            q.ends_with("... (10000000 characters)"),
            "{}",
            &q[q.len() - 40..]
        );
        assert_eq!(q.chars().filter(|&c| c == 'é').count(), ECHO_CHARS);
        let exactly = "x".repeat(ECHO_CHARS);
        assert_eq!(quoted(&exactly), format!("\"{exactly}\""));
        assert!(cut(&long).len() < 200);
    }

    #[test]
    fn escapes_count_towards_the_cut() {
        let controls = "\u{11}".repeat(1000);
        let q = quoted(&controls);
        assert!(q.chars().count() < ECHO_CHARS + 40, "{q}");
        assert!(q.ends_with("(1000 characters)"));
        assert_eq!(quoted("it's \"x\""), r#""it's \"x\"""#);
    }
}
