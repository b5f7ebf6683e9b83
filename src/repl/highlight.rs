//! Syntax colouring of the line being typed: keywords, strings, numbers, comments.
//!
//! A colouring pass runs on every key press, so it is a single forward scan with no
//! allocation beyond the output string, and it never fails: unknown text is left as is.

use owo_colors::OwoColorize;

/// Rhai's keywords: coloured here, and offered by completion.
pub(super) const KEYWORDS: &[&str] = &[
    "let", "const", "fn", "if", "else", "while", "loop", "for", "in", "do", "until", "return",
    "throw", "try", "catch", "break", "continue", "true", "false", "await", "switch", "import",
    "export", "as", "private", "global", "this",
];

/// Returns `line` with ANSI colours; the visible text is unchanged.
pub fn highlight(line: &str) -> String {
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let mut out = String::with_capacity(line.len() * 2);
    let mut i = 0;
    let text = |from: usize, to: usize| {
        let end = chars.get(to).map_or(line.len(), |c| c.0);
        &line[chars[from].0..end]
    };
    while i < chars.len() {
        let c = chars[i].1;
        let next = chars.get(i + 1).map(|c| c.1);
        if c == '/' && next == Some('/') {
            out.push_str(&text(i, chars.len()).bright_black().to_string());
            break;
        }
        let is_byte_prefix = c == 'b' && next == Some('"') && (i == 0 || !is_ident(chars[i - 1].1));
        if c == '"' || c == '`' || c == '\'' || is_byte_prefix {
            let quote = if is_byte_prefix { '"' } else { c };
            let mut j = i + if is_byte_prefix { 2 } else { 1 };
            while j < chars.len() && chars[j].1 != quote {
                if chars[j].1 == '\\' {
                    j += 1;
                }
                j += 1;
            }
            let end = (j + 1).min(chars.len());
            out.push_str(&text(i, end).green().to_string());
            i = end;
            continue;
        }
        if c.is_ascii_digit() && (i == 0 || !is_ident(chars[i - 1].1)) {
            let mut j = i;
            while j < chars.len()
                && (chars[j].1.is_ascii_alphanumeric() || matches!(chars[j].1, '.' | '_'))
            {
                j += 1;
            }
            out.push_str(&text(i, j).cyan().to_string());
            i = j;
            continue;
        }
        if is_ident(c) {
            let mut j = i;
            while j < chars.len() && is_ident(chars[j].1) {
                j += 1;
            }
            let word = text(i, j);
            if KEYWORDS.contains(&word) {
                out.push_str(&word.magenta().bold().to_string());
            } else {
                out.push_str(word);
            }
            i = j;
            continue;
        }
        out.push(c);
        i += 1;
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strip(s: &str) -> String {
        let mut out = String::new();
        let mut esc = false;
        for c in s.chars() {
            match (esc, c) {
                (false, '\x1b') => esc = true,
                (true, 'm') => esc = false,
                (true, _) => {}
                (false, c) => out.push(c),
            }
        }
        out
    }

    #[test]
    fn colours_without_changing_text() {
        for line in [
            r#"let x = b"Test\r\n" + "a\"b"; // done"#,
            "fn f(a) { a * 2.5e3 }",
            "'unterminated",
            "x1 = 10;",
        ] {
            let h = highlight(line);
            assert_eq!(strip(&h), line);
        }
        assert!(highlight("let").contains("\x1b["));
        assert!(!highlight("letter").contains("\x1b["));
    }
}
