//! A small scanner over Rhai source that knows where strings and comments are.
//!
//! Two features need to see code the way Rhai's tokenizer does without running it:
//! the REPL asks "is this input finished?" (open brackets, an unterminated string),
//! and the `b"..."` literal must be recognised only in code, never inside a string or
//! comment. Both read the same [`Scan`], so they can never disagree.

/// What a scan of a piece of source found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Scan {
    /// Brackets `( [ {` opened minus closed; positive means the input continues.
    pub open_brackets: i32,
    /// The input ends inside a string or a block comment.
    pub open_literal: bool,
    /// Byte offsets of the `b` that prefixes a `b"..."` (or `b#"..."#`) literal.
    pub byte_literals: Vec<usize>,
}

impl Scan {
    /// True when the REPL should ask for a continuation line.
    pub fn is_incomplete(&self) -> bool {
        self.open_brackets > 0 || self.open_literal
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Code,
    LineComment,
    BlockComment(u32),
    /// `"..."` or `'...'`, with the quote byte.
    Quoted(u8),
    /// `#"..."#` with the number of hashes.
    Raw(usize),
    Backtick,
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

pub fn scan(src: &str) -> Scan {
    let s = src.as_bytes();
    let mut out = Scan::default();
    let mut state = State::Code;
    // Bracket depths at which a `${` interpolation returns to its backtick string.
    let mut interpolations: Vec<i32> = Vec::new();
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        let next = s.get(i + 1).copied();
        match state {
            State::Code => match c {
                b'/' if next == Some(b'/') => {
                    state = State::LineComment;
                    i += 1;
                }
                b'/' if next == Some(b'*') => {
                    state = State::BlockComment(1);
                    i += 1;
                }
                b'"' | b'\'' => state = State::Quoted(c),
                b'`' => state = State::Backtick,
                b'#' if matches!(next, Some(b'"' | b'#')) => {
                    let hashes = s[i..].iter().take_while(|&&h| h == b'#').count();
                    if s.get(i + hashes) == Some(&b'"') {
                        state = State::Raw(hashes);
                        i += hashes;
                    }
                }
                b'b' if (i == 0 || !is_ident(s[i - 1])) && matches!(next, Some(b'"' | b'#')) => {
                    let hashes = s[i + 1..].iter().take_while(|&&h| h == b'#').count();
                    if s.get(i + 1 + hashes) == Some(&b'"') {
                        out.byte_literals.push(i);
                    }
                }
                b'(' | b'[' | b'{' => out.open_brackets += 1,
                b'}' if interpolations.last() == Some(&out.open_brackets) => {
                    interpolations.pop();
                    state = State::Backtick;
                }
                b')' | b']' | b'}' => out.open_brackets -= 1,
                _ => {}
            },
            State::LineComment => {
                if c == b'\n' {
                    state = State::Code;
                }
            }
            State::BlockComment(depth) => {
                if c == b'*' && next == Some(b'/') {
                    state = if depth == 1 {
                        State::Code
                    } else {
                        State::BlockComment(depth - 1)
                    };
                    i += 1;
                } else if c == b'/' && next == Some(b'*') {
                    state = State::BlockComment(depth + 1);
                    i += 1;
                }
            }
            State::Quoted(q) => {
                if c == b'\\' {
                    i += 1;
                } else if c == q {
                    state = State::Code;
                }
            }
            State::Raw(hashes) => {
                if c == b'"' && s[i + 1..].iter().take_while(|&&h| h == b'#').count() >= hashes {
                    state = State::Code;
                    i += hashes;
                }
            }
            State::Backtick => {
                if c == b'`' {
                    state = State::Code;
                } else if c == b'$' && next == Some(b'{') {
                    interpolations.push(out.open_brackets);
                    state = State::Code;
                    i += 1;
                }
            }
        }
        i += 1;
    }
    out.open_literal = matches!(
        state,
        State::Quoted(_) | State::Raw(_) | State::Backtick | State::BlockComment(_)
    ) || !interpolations.is_empty();
    out
}

/// The marker a `b` prefix is rewritten to; `engine.rs` gives it a custom syntax.
/// One byte for one byte, so every error position stays exact.
pub const BYTES_MARKER: char = '@';

/// Rewrites `b"..."` literals into the marker form the engine understands.
pub fn rewrite_byte_literals(src: &str) -> std::borrow::Cow<'_, str> {
    let found = scan(src).byte_literals;
    if found.is_empty() {
        return std::borrow::Cow::Borrowed(src);
    }
    let mut bytes = src.as_bytes().to_vec();
    for at in found {
        bytes[at] = BYTES_MARKER as u8;
    }
    // Only ASCII `b` bytes were replaced by ASCII, so the text is still UTF-8.
    std::borrow::Cow::Owned(String::from_utf8(bytes).unwrap_or_else(|_| src.to_string()))
}

/// The first thing wrong inside a `b"..."` literal. Rhai's tokenizer would only say
/// "Expecting a string" for it, so the engine checks literals first (see
/// `engine::compile`) and reports this instead.
#[derive(Debug, PartialEq, Eq)]
pub struct LiteralError {
    /// Byte offset in the source of the offending escape or character.
    pub offset: usize,
    pub message: String,
}

/// Checks every byte literal's escapes (the ones Rhai strings have: `\n \r \t \\ \"`,
/// `\xNN`, and `\u`/`\U` up to `\u00ff`) and that each character fits in a byte.
pub fn check_byte_literals(src: &str) -> Result<(), LiteralError> {
    scan(src)
        .byte_literals
        .into_iter()
        .try_for_each(|at| check_literal(src, at))
}

fn check_literal(src: &str, at: usize) -> Result<(), LiteralError> {
    let body = src.get(at + 1..).unwrap_or("");
    let hashes = body.bytes().take_while(|&b| b == b'#').count();
    let start = at + 2 + hashes;
    let fail = |offset: usize, message: String| Err(LiteralError { offset, message });
    let mut chars = src.get(start..).unwrap_or("").char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let offset = start + i;
        match c {
            '"' if hashes > 0 => {
                let closing = src.get(offset + 1..).unwrap_or("");
                if closing.bytes().take_while(|&b| b == b'#').count() >= hashes {
                    return Ok(());
                }
            }
            '"' if chars.peek().map(|&(_, c)| c) == Some('"') => {
                chars.next(); // Rhai reads `""` inside a string as one quote
            }
            '"' => return Ok(()),
            '\\' if hashes == 0 => {
                let Some((_, e)) = chars.next() else {
                    return Ok(()); // unterminated: Rhai's own error says so
                };
                let digits = match e {
                    'n' | 'r' | 't' | '\\' | '"' | '\n' => continue,
                    'x' => 2,
                    'u' => 4,
                    'U' => 8,
                    other => {
                        return fail(
                            offset,
                            format!(
                                "b\"...\": \\{} is not an escape; bytes take \\xNN (00 to ff), \\n, \\r, \\t, \\\\ and \\\"",
                                other.escape_debug()
                            ),
                        );
                    }
                };
                let seq: String = (0..digits)
                    .map_while(|_| {
                        chars
                            .next_if(|&(_, d)| d.is_ascii_hexdigit())
                            .map(|(_, d)| d)
                    })
                    .collect();
                if seq.len() < digits {
                    // Show the escape as written, up to its length.
                    let got: String = chars
                        .clone()
                        .map(|(_, c)| c)
                        .take_while(|&c| c != '"' && !c.is_whitespace())
                        .take(digits - seq.len())
                        .collect::<String>()
                        .escape_debug()
                        .to_string();
                    return fail(
                        offset,
                        format!(
                            "b\"...\": \\{e}{seq}{got} is not an escape: \\{e} takes {digits} hex digits, e.g. \\x41 for A (\\x00 to \\xff)"
                        ),
                    );
                }
                let value = u32::from_str_radix(&seq, 16).unwrap_or(u32::MAX);
                if value > 0xff {
                    return fail(
                        offset,
                        format!(
                            "b\"...\": \\{e}{seq} is above \\xff, and bytes hold 0 to 255 each; write the UTF-8 bytes as \\xNN escapes"
                        ),
                    );
                }
            }
            c if u32::from(c) > 0xff => {
                let utf8: String = c
                    .to_string()
                    .bytes()
                    .map(|b| format!("\\x{b:02x}"))
                    .collect();
                return fail(
                    offset,
                    format!(
                        "b\"...\": {c:?} is above \\xff, and bytes hold 0 to 255 each; write it as {utf8} (its UTF-8) or use bytes(\"{c}\")"
                    ),
                );
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brackets_and_strings_decide_completeness() {
        let cases: &[(&str, bool)] = &[
            ("let x = 1;", false),
            ("fn f() {", true),
            ("fn f() { 1 }", false),
            ("[1, 2,", true),
            ("\"open string", true),
            ("\"a ( string\"", false),
            ("// a comment (", false),
            ("/* open", true),
            ("`a ${ 1 + (2", true),
            ("`a ${ 1 + {2} } b`", false),
            ("`unterminated", true),
            ("let c = '(';", false),
            ("#\"raw \" ( \"#", false),
            ("\"esc \\\" (\"", false),
        ];
        for (src, incomplete) in cases {
            assert_eq!(scan(src).is_incomplete(), *incomplete, "{src}");
        }
    }

    #[test]
    fn byte_literals_only_in_code() {
        assert_eq!(scan(r#"let x = b"hi";"#).byte_literals, vec![8]);
        assert_eq!(scan(r##"b"a" + b#"b"#"##).byte_literals, vec![0, 7]);
        assert!(scan(r#""b\"no""#).byte_literals.is_empty());
        assert!(scan(r#"// b"no""#).byte_literals.is_empty());
        assert!(scan(r#"ab"no""#).byte_literals.is_empty());
        assert!(scan("let b = 5; b + 1").byte_literals.is_empty());
        assert_eq!(rewrite_byte_literals(r#"f(b"x")"#), r#"f(@"x")"#);
    }

    #[test]
    fn byte_literal_errors_say_which_escape_is_wrong() {
        let err = |src: &str| check_byte_literals(src).unwrap_err();
        let e = err(r#"let x = b"\xZZ";"#);
        assert_eq!(e.offset, 10);
        assert!(
            e.message.contains(r"\xZZ is not an escape") && e.message.contains("2 hex digits"),
            "{}",
            e.message
        );
        assert!(err(r#"b"ab\x4""#).message.contains(r"\x4 is not an escape"));
        assert!(err(r#"b"\q""#).message.contains(r"\q is not an escape"));
        assert!(err(r#"b"\u20ac""#).message.contains("above \\xff"));
        let e = err("b\"caf\u{e9}\u{20ac}\"");
        assert_eq!(e.offset, 7);
        assert!(e.message.contains(r"\xe2\x82\xac"), "{}", e.message);
        for ok in [
            r#"b"Test\r\n\r\n""#,
            r#"b"\x00\xff\\\"""#,
            r#"b"\u00e9" + b"é""#,
            r##"b#"raw \q "# + b"x""##,
            r#"b"a""b""#,
            r#""\q is fine in a string" + b"x""#,
            r#"b"unterminated"#,
        ] {
            assert_eq!(check_byte_literals(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn fuzz_byte_literals() {
        let seeds = crate::fuzz::text_seeds(&[
            r#"let x = b"Test\r\n\xff\"";"#,
            r##"b#"raw"# + b"\u00e9""##,
            r#"f(b"\xZZ", "b\"x", `${b"y"}`)"#,
            "// b\"no\"\n/* b\"no\" */ b\"\\\n\"",
        ]);
        crate::fuzz::run("byte literals", &seeds, |input| {
            let text = String::from_utf8_lossy(input);
            let rewritten = rewrite_byte_literals(&text);
            if rewritten.len() != text.len() {
                return Err("the rewrite moved positions".into());
            }
            match check_byte_literals(&text) {
                Err(e) if e.offset > text.len() || e.message.len() > 300 => {
                    Err(format!("bad report at {}: {}", e.offset, e.message))
                }
                _ => Ok(()),
            }
        });
    }
}
