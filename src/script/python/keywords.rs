//! Keyword arguments: `recv(timeout=3)` becomes `recv((), 3)`.
//!
//! Rhai has only positional arguments, so a Python call's keywords are put in their place
//! from a table of the bound functions' parameters (P2PD's names first, ours after a `|`),
//! gaps filled with the value meaning "the default". A function missing from the table is
//! refused rather than guessed: dropping the names would silently pass a value as the
//! wrong parameter.

use super::Rewriter;
use crate::script::lexer::Kind;

/// How keyword arguments map onto a function's positional ones.
enum Params {
    /// In order: (names, one of them P2PD's, `|`-separated; the value a gap gets).
    Positional(&'static [(&'static str, Option<&'static str>)]),
    /// Every keyword goes into one options map.
    Options,
}

/// The functions whose Python keyword arguments are known, by name (methods included).
/// Defaults of `()` mean "the default" to these bindings.
const KEYWORD_PARAMS: &[(&str, Params)] = &[
    (
        "recv",
        Params::Positional(&[
            ("sub", Some("()")),
            ("timeout", Some("()")),
            ("full", Some("false")),
        ]),
    ),
    ("start", Params::Positional(&[("timeout", None)])),
    ("accept", Params::Positional(&[("timeout", None)])),
    ("sleep", Params::Positional(&[("delay|secs", None)])),
    (
        "load_interfaces",
        Params::Positional(&[("netifaces", None)]),
    ),
    ("load_nat", Params::Options),
    ("route", Params::Positional(&[("af", None)])),
    (
        "bind",
        Params::Positional(&[("port", Some("0")), ("ips|ip", None)]),
    ),
    (
        "Address",
        Params::Positional(&[("host", None), ("port", None), ("nic|route", Some("()"))]),
    ),
    ("Interface", Params::Positional(&[("name", None)])),
    ("subscribe", Params::Positional(&[("sub", Some("()"))])),
    (
        "send",
        Params::Positional(&[("data|msg", None), ("dest_tup|dest", None)]),
    ),
    (
        "pipe_open",
        Params::Positional(&[
            ("proto", None),
            ("dest", Some("()")),
            ("route", Some("()")),
            ("msg_cb", Some("()")),
            ("up_cb", Some("()")),
        ]),
    ),
];

impl Rewriter<'_, '_> {
    pub(super) fn is_keyword_arg(&self, at: usize) -> bool {
        self.toks.get(at).is_some_and(|t| t.kind == Kind::Ident) && self.is_punct(at + 1, "=")
    }

    /// The `)` matching the `(` at `open`, and each argument's token range.
    pub(super) fn call_args(&self, open: usize, to: usize) -> Option<(usize, Vec<(usize, usize)>)> {
        let mut depth = 0;
        let mut args = Vec::new();
        let mut start = open + 1;
        for j in open..to {
            let t = self.toks[j];
            if t.opens(self.src) {
                depth += 1;
            } else if t.closes(self.src) {
                depth -= 1;
                if depth == 0 {
                    if start < j {
                        args.push((start, j));
                    }
                    return Some((j, args));
                }
            } else if depth == 1 && self.is_punct(j, ",") {
                args.push((start, j));
                start = j + 1;
            }
        }
        None
    }

    /// Rewrites `name(args)` whose arguments include `key=value`.
    pub(super) fn keyword_call(
        &mut self,
        name_at: usize,
        close: usize,
        args: &[(usize, usize)],
    ) -> String {
        let name = self.text(name_at).to_string();
        let python = self.span(name_at, close + 1).to_string();
        let result = match KEYWORD_PARAMS.iter().find(|(n, _)| *n == name) {
            None => Err(format!(
                "`{python}` uses keyword arguments, which Rhai does not have, and {name}'s parameter names are not known here: pass the values in order"
            )),
            Some((_, params)) => self.map_arguments(&name, params, args),
        };
        match result {
            Ok(rhai) => {
                self.form(
                    name_at,
                    close + 1,
                    format!("Rhai has no keyword arguments: `{python}` is `{rhai}`"),
                    true,
                );
                rhai
            }
            Err(advice) => {
                self.form(name_at, close + 1, advice, false);
                python
            }
        }
    }

    fn map_arguments(
        &mut self,
        name: &str,
        params: &Params,
        args: &[(usize, usize)],
    ) -> Result<String, String> {
        let mut positional = Vec::new();
        let mut keyword = Vec::new();
        for &(from, to) in args {
            if self.is_keyword_arg(from) {
                let key = self.text(from).to_string();
                keyword.push((key, self.render(from + 2, to, false)));
            } else if !keyword.is_empty() {
                return Err(format!(
                    "in {name}(...), a positional argument follows a keyword one (Python refuses that too)"
                ));
            } else {
                positional.push(self.render(from, to, false));
            }
        }
        let params = match params {
            Params::Options => {
                let fields: Vec<String> = keyword
                    .iter()
                    .map(|(k, v)| format!("{k}: {}", v.trim()))
                    .collect();
                positional.push(format!("#{{{}}}", fields.join(", ")));
                return Ok(format!("{name}({})", join(&positional)));
            }
            Params::Positional(params) => params,
        };
        let names = || {
            params
                .iter()
                .map(|(n, _)| n.split('|').next().unwrap_or(n))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut slots: Vec<Option<String>> = positional.into_iter().map(Some).collect();
        for (key, value) in keyword {
            let Some(at) = params
                .iter()
                .position(|(n, _)| n.split('|').any(|a| a == key))
            else {
                return Err(format!(
                    "{name}() has no parameter `{key}` here (it takes {})",
                    names()
                ));
            };
            if slots.len() <= at {
                slots.resize(at + 1, None);
            }
            if slots[at].is_some() {
                return Err(format!("{name}() got `{key}` twice"));
            }
            slots[at] = Some(value);
        }
        let mut filled = Vec::new();
        for (at, slot) in slots.into_iter().enumerate() {
            match (slot, params.get(at)) {
                (Some(v), _) => filled.push(v),
                (None, Some((_, Some(default)))) => filled.push((*default).to_string()),
                (None, param) => {
                    let p = param.map_or("?", |(n, _)| n.split('|').next().unwrap_or(n));
                    return Err(format!(
                        "{name}() needs `{p}` too when later arguments are given"
                    ));
                }
            }
        }
        Ok(format!("{name}({})", join(&filled)))
    }
}

fn join(items: &[String]) -> String {
    items
        .iter()
        .map(|s| s.trim())
        .collect::<Vec<_>>()
        .join(", ")
}
