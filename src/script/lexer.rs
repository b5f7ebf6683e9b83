//! A small tokenizer over Rhai source that knows where strings and comments are.
//!
//! Three features need to see code the way Rhai's tokenizer does without running it:
//! the REPL asks "is this input finished?" (open brackets, an unterminated string), the
//! `b"..."` literal must be recognised only in code, never inside a string or comment, and
//! the prompt's Python-shaped forms (`python.rs`) are rewritten on tokens, never on the text
//! inside strings. All three read the same [`tokens`], so they can never disagree.
//!
//! The tokenizer never fails: text it does not know becomes a one-character [`Kind::Punct`],
//! and a string or block comment that runs to the end becomes [`Kind::Unterminated`].
//! Python's `# comment` (a `#` followed by white space) is a token of its own: Rhai has no
//! such form, so the prompt can rewrite it and a script's error can name it.

/// What a token is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A name or keyword.
    Ident,
    /// A number literal (`42`, `0x1f`, `2.5e3`).
    Number,
    /// A string, character, backtick or raw string literal, interpolations included.
    Str,
    /// `b"..."` or `b#"..."#`: starts at the `b`.
    ByteStr,
    /// `// ...` or `/* ... */`.
    Comment,
    /// Python's `# ...` up to the end of the line.
    HashComment,
    /// One line break.
    Newline,
    /// An operator or bracket (`==`, `+=`, `#{`, `(`...), longest match.
    Punct,
    /// A string or block comment that the input ends inside.
    Unterminated,
}

/// One token: its kind and its byte range in the source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Token {
    pub kind: Kind,
    pub start: usize,
    pub end: usize,
}

impl Token {
    pub fn text<'s>(&self, src: &'s str) -> &'s str {
        &src[self.start..self.end]
    }

    /// Opens a bracket: `(`, `[`, `{`, `#{` or `?[`.
    pub fn opens(&self, src: &str) -> bool {
        self.kind == Kind::Punct && matches!(self.text(src), "(" | "[" | "{" | "#{" | "?[")
    }

    pub fn closes(&self, src: &str) -> bool {
        self.kind == Kind::Punct && matches!(self.text(src), ")" | "]" | "}")
    }

    pub fn is(&self, src: &str, kind: Kind, text: &str) -> bool {
        self.kind == kind && self.text(src) == text
    }
}

/// Operators of two or three characters, longest first, so `==` is never read as `=`.
const OPERATORS: &[&str] = &[
    "**=", "<<=", ">>=", "..=", "==", "!=", "<=", ">=", "=>", "+=", "-=", "*=", "/=", "%=", "&=",
    "|=", "^=", "::", "..", "?.", "??", "?[", "->", "&&", "||", "<<", ">>", "**", "#{",
];

fn is_ident_start(c: char) -> bool {
    c.is_alphabetic() || c == '_'
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Splits `src` into tokens; white space other than line breaks is skipped.
pub fn tokens(src: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < src.len() {
        let (kind, end) = match next_token(src, at) {
            Some(t) => t,
            None => {
                // White space: skip one character.
                at += src[at..].chars().next().map_or(1, char::len_utf8);
                continue;
            }
        };
        out.push(Token {
            kind,
            start: at,
            end,
        });
        at = end;
    }
    out
}

/// The token starting at `at`, or `None` for white space.
fn next_token(src: &str, at: usize) -> Option<(Kind, usize)> {
    let rest = &src[at..];
    let c = rest.chars().next()?;
    let next = rest[c.len_utf8()..].chars().next();
    Some(match c {
        '\n' => (Kind::Newline, at + 1),
        c if c.is_whitespace() => return None,
        '/' if next == Some('/') => (Kind::Comment, line_end(src, at)),
        '/' if next == Some('*') => block_comment(src, at),
        '#' if at == 0 && next == Some('!') => (Kind::Comment, line_end(src, at)),
        '#' if next.is_none_or(char::is_whitespace) => (Kind::HashComment, line_end(src, at)),
        '#' if matches!(next, Some('"' | '#')) && raw_hashes(rest).is_some() => raw_string(src, at),
        '"' | '\'' => quoted(src, at),
        '`' => backtick(src, at),
        'b' if matches!(next, Some('"' | '#')) && byte_prefix(rest) => {
            let (kind, end) = if next == Some('"') {
                quoted(src, at + 1)
            } else {
                raw_string(src, at + 1)
            };
            let kind = if kind == Kind::Str {
                Kind::ByteStr
            } else {
                kind
            };
            (kind, end)
        }
        c if is_ident_start(c) => (Kind::Ident, at + ident_len(rest)),
        c if c.is_ascii_digit() => (Kind::Number, at + number_len(rest)),
        _ => {
            let op = OPERATORS
                .iter()
                .find(|op| rest.starts_with(**op))
                .map_or(c.len_utf8(), |op| op.len());
            (Kind::Punct, at + op)
        }
    })
}

fn line_end(src: &str, at: usize) -> usize {
    src[at..].find('\n').map_or(src.len(), |n| at + n)
}

fn ident_len(rest: &str) -> usize {
    rest.char_indices()
        .find(|(_, c)| !is_ident(*c))
        .map_or(rest.len(), |(i, _)| i)
}

/// Digits and letters (hex, exponents, `_`), and one `.` when a digit follows it, so that
/// `1..3` stays a range.
fn number_len(rest: &str) -> usize {
    let b = rest.as_bytes();
    let word = |from: usize| {
        from + b[from..]
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
            .count()
    };
    let end = word(0);
    if b.get(end) == Some(&b'.') && b.get(end + 1).is_some_and(u8::is_ascii_digit) {
        word(end + 1)
    } else {
        end
    }
}

/// `b` starts a byte literal only as a word of its own: `ab"x"` is a name and a string.
fn byte_prefix(rest: &str) -> bool {
    let after = &rest[1..];
    after.starts_with('"') || raw_hashes(after).is_some()
}

/// For `#..#"`, the number of hashes.
fn raw_hashes(rest: &str) -> Option<usize> {
    let hashes = rest.bytes().take_while(|&h| h == b'#').count();
    (hashes > 0 && rest.as_bytes().get(hashes) == Some(&b'"')).then_some(hashes)
}

/// A `"..."` or `'...'` literal whose opening quote is at `quote`.
fn quoted(src: &str, quote: usize) -> (Kind, usize) {
    let b = src.as_bytes();
    let q = b[quote];
    let mut i = quote + 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            c if c == q => return (Kind::Str, i + 1),
            _ => i += 1,
        }
    }
    (Kind::Unterminated, src.len())
}

/// `#"..."#` (any number of hashes) whose first hash is at `from`.
fn raw_string(src: &str, from: usize) -> (Kind, usize) {
    let Some(hashes) = raw_hashes(&src[from..]) else {
        return (Kind::Punct, from + 1);
    };
    let close = format!("\"{}", "#".repeat(hashes));
    let body = from + hashes + 1;
    match src[body..].find(&close) {
        Some(n) => (Kind::Str, body + n + close.len()),
        None => (Kind::Unterminated, src.len()),
    }
}

fn block_comment(src: &str, at: usize) -> (Kind, usize) {
    let b = src.as_bytes();
    let mut depth = 0;
    let mut i = at;
    while i + 1 < b.len() {
        match (b[i], b[i + 1]) {
            (b'/', b'*') => {
                depth += 1;
                i += 2;
            }
            (b'*', b'/') => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return (Kind::Comment, i);
                }
            }
            _ => i += 1,
        }
    }
    (Kind::Unterminated, src.len())
}

/// A backtick string; each `${ ... }` inside is code, tokenized until its own `}`.
fn backtick(src: &str, at: usize) -> (Kind, usize) {
    let b = src.as_bytes();
    let mut i = at + 1;
    while i < b.len() {
        match b[i] {
            b'`' => return (Kind::Str, i + 1),
            b'\\' => i += 2,
            b'$' if b.get(i + 1) == Some(&b'{') => match interpolation_end(src, i + 2) {
                Some(end) => i = end,
                None => return (Kind::Unterminated, src.len()),
            },
            _ => i += 1,
        }
    }
    (Kind::Unterminated, src.len())
}

/// The offset just past the `}` that closes an interpolation whose code starts at `from`.
fn interpolation_end(src: &str, from: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut at = from;
    while at < src.len() {
        let Some((kind, end)) = next_token(src, at) else {
            at += src[at..].chars().next().map_or(1, char::len_utf8);
            continue;
        };
        let token = Token {
            kind,
            start: at,
            end,
        };
        if kind == Kind::Unterminated {
            return None;
        }
        if token.opens(src) {
            depth += 1;
        } else if token.closes(src) {
            if depth == 0 {
                return Some(end);
            }
            depth -= 1;
        }
        at = end;
    }
    None
}

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

pub fn scan(src: &str) -> Scan {
    let mut out = Scan::default();
    for t in tokens(src) {
        if t.opens(src) {
            out.open_brackets += 1;
        } else if t.closes(src) {
            out.open_brackets -= 1;
        }
        match t.kind {
            Kind::Unterminated => out.open_literal = true,
            Kind::ByteStr => out.byte_literals.push(t.start),
            _ => {}
        }
    }
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
            ("/* a /* nested */ one */ x", false),
            ("`a ${ 1 + (2", true),
            ("`a ${ 1 + {2} } b`", false),
            ("`a ${ \"}\" } b`", false),
            ("`unterminated", true),
            ("let c = '(';", false),
            ("#\"raw \" ( \"#", false),
            ("\"esc \\\" (\"", false),
            ("#{a: 1,", true),
            ("# it's a Python comment (", false),
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

    fn kinds(src: &str) -> Vec<(Kind, &str)> {
        tokens(src).iter().map(|t| (t.kind, t.text(src))).collect()
    }

    #[test]
    fn operators_take_the_longest_match() {
        use Kind::*;
        assert_eq!(
            kinds("x == 1; y = 2; z += 3; 1..3 #{"),
            [
                (Ident, "x"),
                (Punct, "=="),
                (Number, "1"),
                (Punct, ";"),
                (Ident, "y"),
                (Punct, "="),
                (Number, "2"),
                (Punct, ";"),
                (Ident, "z"),
                (Punct, "+="),
                (Number, "3"),
                (Punct, ";"),
                (Number, "1"),
                (Punct, ".."),
                (Number, "3"),
                (Punct, "#{"),
            ]
        );
        assert_eq!(kinds("2.5e3"), [(Number, "2.5e3")]);
    }

    #[test]
    fn comments_strings_and_lines_are_single_tokens() {
        use Kind::*;
        assert_eq!(
            kinds("a # b = c\nf(\"x = 1\") // y = 2"),
            [
                (Ident, "a"),
                (HashComment, "# b = c"),
                (Newline, "\n"),
                (Ident, "f"),
                (Punct, "("),
                (Str, "\"x = 1\""),
                (Punct, ")"),
                (Comment, "// y = 2"),
            ]
        );
        assert_eq!(
            kinds("#!/usr/bin/env p2pd-repl"),
            [(Comment, "#!/usr/bin/env p2pd-repl")]
        );
        assert_eq!(kinds("b\"\\x00\""), [(ByteStr, "b\"\\x00\"")]);
        assert_eq!(kinds("`n = ${n}`"), [(Str, "`n = ${n}`")]);
        assert_eq!(kinds("\"open"), [(Unterminated, "\"open")]);
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
