//! How a value a user gave is echoed back in a message: quoted, and cut to about
//! [`ECHO_CHARS`] characters with its full length noted, so a 10 MB argument makes a one-line
//! error instead of a 10 MB one. Every layer uses it (`net` for configuration entries,
//! `script` for arguments, the command line for flags), so it sits below all of them.

/// How many characters of a value an error message repeats.
pub const ECHO_CHARS: usize = 80;

/// `text` in double quotes with escapes (`"a\tb"`); past [`ECHO_CHARS`] characters, the
/// first ones and the length: `"aaaa…"... (10485760 characters)`.
pub fn quoted(text: &str) -> String {
    quoted_within(text, ECHO_CHARS)
}

/// [`quoted`], keeping at most `chars` characters.
pub fn quoted_within(text: &str, chars: usize) -> String {
    match text.char_indices().nth(chars) {
        None => format!("{text:?}"),
        Some((cut, _)) => format!(
            "{:?}... ({} characters)",
            &text[..cut],
            text.chars().count()
        ),
    }
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
}
