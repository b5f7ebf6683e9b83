//! Python-shaped input: the tutorial's lines, typed at the prompt as they are written.
//!
//! The REPL accepts a few Python forms and runs their Rhai equivalent; scripts stay strict
//! Rhai, and a script error on a line holding such a form gets one line of advice saying
//! how Rhai writes it. Both come from one pass, [`rewrite`], over the tokens of `lexer.rs`,
//! so text inside strings and comments is never touched:
//!
//! | Python | Rhai it runs |
//! |---|---|
//! | `import asyncio`, `from p2pd import *` | nothing (a note says so) |
//! | `x = expr` at top level, `x` new | `let x = expr` |
//! | `f(a, name=v)` for a known `f` | `f(a, v)`, defaults filling gaps |
//! | `i.load_nat(timeout=5)` | `i.load_nat(#{timeout: 5})` |
//! | `True`, `False`, `None` | `true`, `false`, `()` |
//! | `# comment` | `// comment` |
//! | a line break between two statements | `;` |
//!
//! `repr(x)` as the last statement sets [`Shaping::ends_with_repr`], so the REPL can show
//! the text itself (what the tutorial prints) instead of the quoted string. `def` is refused
//! with the Rhai way to write a function: its body has no brackets to rewrite.

use super::lexer::{Kind, Token, tokens};
use std::collections::HashSet;

/// Rhai's keywords: never a variable a Python assignment could make.
const KEYWORDS: &[&str] = &[
    "let", "const", "fn", "if", "else", "while", "loop", "for", "in", "do", "until", "return",
    "throw", "try", "catch", "break", "continue", "true", "false", "await", "switch", "import",
    "export", "as", "private", "global", "this",
];

/// One Python form found in the source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Form {
    /// Byte range of the Python text.
    pub start: usize,
    pub end: usize,
    /// What Rhai writes instead, as a sentence.
    pub advice: String,
    /// False when the form has no Rhai rewrite here (the REPL refuses the input).
    pub fixed: bool,
}

/// The result of [`rewrite`].
#[derive(Debug, Default)]
pub struct Shaping {
    /// The Rhai to run.
    pub code: String,
    /// Every Python form found, in source order.
    pub forms: Vec<Form>,
    /// The modules Python imports named (`asyncio`, `p2pd`).
    pub imports: Vec<String>,
    /// The last statement is `repr(...)`.
    pub ends_with_repr: bool,
}

impl Shaping {
    /// The forms that could not be rewritten.
    pub fn refused(&self) -> impl Iterator<Item = &Form> {
        self.forms.iter().filter(|f| !f.fixed)
    }

    /// The one-line note for imports, if the input had any.
    pub fn import_note(&self) -> Option<String> {
        if self.imports.is_empty() {
            return None;
        }
        Some(format!(
            "note: nothing to import ({}): `await` and every P2PD name are built in",
            self.imports.join(", ")
        ))
    }
}

/// Rewrites the Python forms of `src`; `known` says whether a name is already a variable.
pub fn rewrite(src: &str, known: &dyn Fn(&str) -> bool) -> Shaping {
    let mut r = Rewriter {
        src,
        toks: tokens(src),
        known,
        defined: HashSet::new(),
        forms: Vec::new(),
        imports: Vec::new(),
    };
    let mut code = r.render(0, r.toks.len(), true);
    let tail = r.toks.last().map_or(0, |t| t.end);
    code.push_str(&src[tail..]);
    let ends_with_repr = r.ends_with_repr();
    Shaping {
        code,
        forms: r.forms,
        imports: r.imports,
        ends_with_repr,
    }
}

/// For a script that failed on `line` (1-based): how Rhai writes the Python forms there.
pub fn hint(src: &str, line: usize) -> Option<String> {
    let shaping = rewrite(src, &|_| false);
    let line_of = |at: usize| src[..at].matches('\n').count() + 1;
    let advice: Vec<&str> = shaping
        .forms
        .iter()
        .filter(|f| line_of(f.start) == line)
        .map(|f| f.advice.as_str())
        .collect();
    if advice.is_empty() {
        return None;
    }
    Some(format!("hint: {}", advice.join("; ")))
}

struct Rewriter<'s, 'k> {
    src: &'s str,
    toks: Vec<Token>,
    known: &'k dyn Fn(&str) -> bool,
    /// Names this input declares (by `let`, `const` or a rewritten assignment).
    defined: HashSet<String>,
    forms: Vec<Form>,
    imports: Vec<String>,
}

/// Tokens that only comment.
fn is_trivia(t: &Token) -> bool {
    matches!(t.kind, Kind::Comment | Kind::HashComment | Kind::Newline)
}

impl Rewriter<'_, '_> {
    fn text(&self, i: usize) -> &str {
        self.toks[i].text(self.src)
    }

    fn is_punct(&self, i: usize, text: &str) -> bool {
        self.toks
            .get(i)
            .is_some_and(|t| t.is(self.src, Kind::Punct, text))
    }

    fn is_ident(&self, i: usize, text: &str) -> bool {
        self.toks
            .get(i)
            .is_some_and(|t| t.is(self.src, Kind::Ident, text))
    }

    fn span(&self, from: usize, to: usize) -> &str {
        &self.src[self.toks[from].start..self.toks[to - 1].end]
    }

    fn form(&mut self, from: usize, to: usize, advice: String, fixed: bool) {
        self.forms.push(Form {
            start: self.toks[from].start,
            end: self.toks[to - 1].end,
            advice,
            fixed,
        });
    }

    /// The Rhai text of tokens `from..to`. At the top level (`top`), statement rules apply
    /// too: imports, new variables, `def` and line breaks between statements.
    fn render(&mut self, from: usize, to: usize, top: bool) -> String {
        let mut out = String::new();
        let mut copied = self.toks.get(from).map_or(0, |t| t.start);
        let mut depth = 0i32;
        let mut stmt_start = true;
        let mut prev: Option<Token> = None;
        let mut i = from;
        while i < to {
            let t = self.toks[i];
            out.push_str(&self.src[copied..t.start]);
            let at_top = top && depth == 0;
            if at_top && t.kind == Kind::Newline {
                if let Some(next) = self.next_statement(prev, i + 1, to) {
                    out.push(';');
                    prev = None;
                    self.form(
                        next,
                        next + 1,
                        "Rhai needs `;` between statements: end the line before with `;`".into(),
                        true,
                    );
                }
                stmt_start = true;
            }
            if at_top && stmt_start && !is_trivia(&t) {
                stmt_start = false;
                if let Some(end) = self.python_import(i, to) {
                    copied = self.toks[end - 1].end;
                    i = end;
                    continue;
                }
                self.python_def(i, to);
                if self.new_variable(i) {
                    out.push_str("let ");
                }
            }
            if let Some((text, next)) = self.token_form(i, to) {
                out.push_str(&text);
                copied = self.toks[next - 1].end;
                prev = Some(self.toks[next - 1]);
                i = next;
                continue;
            }
            if t.opens(self.src) {
                depth += 1;
            } else if t.closes(self.src) {
                depth -= 1;
            }
            if top && depth == 0 && (self.is_punct(i, ";") || self.is_punct(i, "}")) {
                stmt_start = true;
            }
            out.push_str(t.text(self.src));
            copied = t.end;
            if !is_trivia(&t) {
                prev = Some(t);
            }
            i += 1;
        }
        out
    }

    /// A line break ends a Python statement: Rhai needs `;` when the line ended a value
    /// and the next one starts a new statement (not `.method()` or an operator). Returns
    /// where that next statement starts.
    fn next_statement(&self, prev: Option<Token>, from: usize, to: usize) -> Option<usize> {
        let prev = prev?;
        let word = prev.text(self.src);
        let ends_value = match prev.kind {
            Kind::Ident => !KEYWORDS.contains(&word) || matches!(word, "true" | "false" | "this"),
            Kind::Number | Kind::Str | Kind::ByteStr => true,
            Kind::Punct => matches!(word, ")" | "]"),
            _ => false,
        };
        let next = (from..to).find(|&j| !is_trivia(&self.toks[j]))?;
        let starts_statement = matches!(
            self.toks[next].kind,
            Kind::Ident | Kind::Number | Kind::Str | Kind::ByteStr
        ) || self.is_punct(next, "#{");
        (ends_value && starts_statement).then_some(next)
    }

    /// `import a.b [as c], ...` or `from a import ...` (not Rhai's `import "path"`):
    /// returns the index just past the statement.
    fn python_import(&mut self, i: usize, to: usize) -> Option<usize> {
        let is_import = self.is_ident(i, "import")
            && self.toks.get(i + 1).is_some_and(|t| t.kind == Kind::Ident);
        let is_from = self.is_ident(i, "from")
            && self.toks.get(i + 1).is_some_and(|t| t.kind == Kind::Ident)
            && (i + 2..to).any(|j| self.is_ident(j, "import"));
        if !is_import && !is_from {
            return None;
        }
        let end = (i..to)
            .find(|&j| self.toks[j].kind == Kind::Newline || self.is_punct(j, ";"))
            .map_or(to, |j| if self.is_punct(j, ";") { j + 1 } else { j });
        let module = self.text(i + 1).to_string();
        if !self.imports.contains(&module) {
            self.imports.push(module);
        }
        let shown = self.span(i, end).trim_end_matches(';').to_string();
        self.form(
            i,
            end,
            format!("`{shown}` is Python: Rhai needs no import, every P2PD name is built in (delete the line)"),
            true,
        );
        Some(end)
    }

    /// `def f(...):` / `async def`: refused, with the Rhai shape of a function.
    fn python_def(&mut self, i: usize, to: usize) {
        let at = if self.is_ident(i, "async") { i + 1 } else { i };
        if !self.is_ident(at, "def") {
            return;
        }
        let name = self
            .toks
            .get(at + 1)
            .filter(|t| t.kind == Kind::Ident)
            .map_or("main", |t| t.text(self.src))
            .to_string();
        let end = (at..to)
            .find(|&j| self.toks[j].kind == Kind::Newline)
            .unwrap_or(to);
        self.form(
            i,
            end,
            format!(
                "`def` is Python: Rhai writes `fn {name}() {{ ... }}` with `let` and `;` inside, and `await {name}()` runs it"
            ),
            false,
        );
    }

    /// `x = ...` at the start of a statement, with `x` not a variable yet.
    fn new_variable(&mut self, i: usize) -> bool {
        let t = self.toks[i];
        if t.kind != Kind::Ident {
            return false;
        }
        let name = t.text(self.src);
        if matches!(name, "let" | "const") {
            if let Some(n) = self.toks.get(i + 1).filter(|n| n.kind == Kind::Ident) {
                self.defined.insert(n.text(self.src).to_string());
            }
            return false;
        }
        if KEYWORDS.contains(&name)
            || !self.is_punct(i + 1, "=")
            || self.defined.contains(name)
            || (self.known)(name)
        {
            return false;
        }
        let name = name.to_string();
        self.form(
            i,
            i + 2,
            format!("`{name} = ...` only assigns in Rhai: declare a new variable with `let {name} = ...;`"),
            true,
        );
        self.defined.insert(name);
        true
    }

    /// A form inside an expression: a Python comment, `True`/`False`/`None`, or a call
    /// with keyword arguments. Returns the Rhai text and the index after the form.
    fn token_form(&mut self, i: usize, to: usize) -> Option<(String, usize)> {
        let t = self.toks[i];
        if t.kind == Kind::HashComment {
            self.form(
                i,
                i + 1,
                "`#` starts a Python comment: Rhai comments start with `//`".into(),
                true,
            );
            return Some((format!("//{}", &t.text(self.src)[1..]), i + 1));
        }
        if t.kind != Kind::Ident {
            return None;
        }
        let after_dot = i > 0 && (self.is_punct(i - 1, ".") || self.is_punct(i - 1, "?."));
        let name = t.text(self.src);
        let constant = match name {
            "True" => Some("true"),
            "False" => Some("false"),
            "None" => Some("()"),
            _ => None,
        };
        if let Some(rhai) = constant
            && !after_dot
            && !(self.known)(name)
        {
            self.form(
                i,
                i + 1,
                format!("`{name}` is Python: Rhai writes `{rhai}`"),
                true,
            );
            return Some((rhai.to_string(), i + 1));
        }
        if !self.is_punct(i + 1, "(") {
            return None;
        }
        let (close, args) = self.call_args(i + 1, to)?;
        if !args.iter().any(|&(a, _)| self.is_keyword_arg(a)) {
            return None;
        }
        let text = self.keyword_call(i, close, &args);
        Some((text, close + 1))
    }

    /// True when the last statement is a `repr(...)` call, nothing after it.
    fn ends_with_repr(&self) -> bool {
        let sig: Vec<usize> = (0..self.toks.len())
            .filter(|&j| !is_trivia(&self.toks[j]))
            .collect();
        let Some(&last) = sig.last() else {
            return false;
        };
        if !self.is_punct(last, ")") {
            return false;
        }
        // Walk back to the statement start at depth 0.
        let mut depth = 0;
        let mut start = None;
        for &j in sig.iter().rev() {
            let t = self.toks[j];
            if t.closes(self.src) {
                depth += 1;
            } else if t.opens(self.src) {
                depth -= 1;
            }
            if depth == 0 && t.opens(self.src) {
                start = Some(j);
                break;
            }
        }
        let Some(open) = start else {
            return false;
        };
        let before = sig
            .iter()
            .position(|&j| j == open)
            .and_then(|p| p.checked_sub(1));
        let Some(name) = before.map(|p| sig[p]) else {
            return false;
        };
        let starts_statement = sig
            .iter()
            .position(|&j| j == name)
            .and_then(|p| p.checked_sub(1))
            .is_none_or(|p| {
                self.is_punct(sig[p], ";")
                    || self.is_punct(sig[p], "}")
                    || (sig[p] + 1..name).any(|j| self.toks[j].kind == Kind::Newline)
            });
        self.is_ident(name, "repr") && starts_statement
    }
}

mod keywords;
#[cfg(test)]
mod tests;
