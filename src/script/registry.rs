//! Registration with mandatory help.
//!
//! Every function a script can call is registered through [`Registrar::func`], which
//! takes a [`Help`] next to the Rust closure: a function without a signature, a
//! sentence and a runnable example cannot be added. `help()` and `help("name")` read
//! the resulting [`HelpIndex`]; so does the REPL's completion.

use rhai::{Dynamic, Engine, RhaiNativeFunc, Variant};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, LazyLock, RwLock};

/// Rust type name -> the name scripts know it by, for every type registered through
/// [`Registrar::register_type`]. Process-wide because every session registers the same
/// types, and error messages are built where no engine is at hand.
static TYPE_NAMES: LazyLock<RwLock<HashMap<&'static str, &'static str>>> =
    LazyLock::new(Default::default);

/// The name a script knows `value`'s type by: Rhai's for its own types (`string`, `i64`,
/// `array`, ...), the registered one for ours (`Interface`, never a Rust path).
pub fn type_name(value: &Dynamic) -> &'static str {
    let rust = value.type_name();
    if let Some(name) = TYPE_NAMES
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .get(rust)
    {
        return name;
    }
    // A type registered directly on the engine: the last path segment, generics dropped.
    let base = rust.split('<').next().unwrap_or(rust);
    base.rsplit("::").next().unwrap_or(base)
}

/// What `help("name")` shows for one script name (all its overloads).
#[derive(Clone, Debug)]
pub struct Help {
    /// The group `help()` lists it under ("shell", "bytes", "interfaces", ...).
    pub area: &'static str,
    /// One line per overload, as a user would write the call.
    pub signatures: &'static [&'static str],
    /// One sentence.
    pub summary: &'static str,
    /// A line that runs as written in the REPL.
    pub example: &'static str,
    /// True for methods called as `value.name(...)`, listed after a dot.
    pub method: bool,
}

impl Help {
    pub const fn function(
        area: &'static str,
        signatures: &'static [&'static str],
        summary: &'static str,
        example: &'static str,
    ) -> Self {
        Self {
            area,
            signatures,
            summary,
            example,
            method: false,
        }
    }

    pub const fn method(
        area: &'static str,
        signatures: &'static [&'static str],
        summary: &'static str,
        example: &'static str,
    ) -> Self {
        Self {
            method: true,
            ..Self::function(area, signatures, summary, example)
        }
    }
}

/// Help for every registered name, plus the constants scripts can read.
#[derive(Clone, Debug, Default)]
pub struct HelpIndex {
    pub entries: BTreeMap<String, Help>,
    pub constants: BTreeMap<String, &'static str>,
    /// Areas in the order their first name was registered: the order of `help()`.
    pub areas: Vec<&'static str>,
}

impl HelpIndex {
    pub fn get(&self, name: &str) -> Option<&Help> {
        self.entries.get(name)
    }

    /// Names grouped by area, areas in first-registration order.
    pub fn by_area(&self) -> Vec<(&'static str, Vec<(&str, &Help)>)> {
        let mut areas: Vec<(&'static str, Vec<(&str, &Help)>)> = Vec::new();
        for (name, help) in &self.entries {
            match areas.iter_mut().find(|(a, _)| *a == help.area) {
                Some((_, list)) => list.push((name.as_str(), help)),
                None => areas.push((help.area, vec![(name.as_str(), help)])),
            }
        }
        areas.sort_by_key(|(a, _)| self.areas.iter().position(|o| o == a));
        areas
    }

    /// The full text of `help("name")`.
    pub fn describe(&self, name: &str) -> Option<String> {
        let help = self.get(name)?;
        let mut out = String::new();
        for sig in help.signatures {
            out.push_str(sig);
            out.push('\n');
        }
        out.push_str("    ");
        out.push_str(help.summary);
        out.push_str("\n    example: ");
        out.push_str(help.example);
        Some(out)
    }

    /// The text of `help()`: every name, one line each, grouped by area.
    pub fn overview(&self) -> String {
        let mut out = String::from(
            "p2pd-repl: P2PD's basics in Rhai. `await` works as in `python3 -m asyncio`.\n\
             help(\"name\") or help(name) shows signatures and an example.\n",
        );
        for (area, names) in self.by_area() {
            out.push_str(&format!("\n{area}:\n"));
            for (name, help) in names {
                let shown = if help.method {
                    format!(".{name}")
                } else {
                    name.to_string()
                };
                out.push_str(&format!("  {shown:<16} {}\n", help.summary));
            }
        }
        if !self.constants.is_empty() {
            out.push_str("\nconstants:\n");
            for (name, what) in &self.constants {
                out.push_str(&format!("  {name:<16} {what}\n"));
            }
        }
        out
    }
}

/// Registers functions on an engine and records their help.
pub struct Registrar<'e> {
    engine: &'e mut Engine,
    index: HelpIndex,
    constants: Constants,
}

/// Values scripts read by name (`TCP`, `IP4`, `ARGS`...), visible inside `fn` bodies too.
pub type Constants = BTreeMap<String, Dynamic>;

impl<'e> Registrar<'e> {
    pub fn new(engine: &'e mut Engine) -> Self {
        Self {
            engine,
            index: HelpIndex::default(),
            constants: Constants::new(),
        }
    }

    /// Registers one overload of `name`. Overloads share one help entry; the first
    /// registration's help wins, so give every overload the same `Help` constant.
    pub fn func<A: 'static, const N: usize, const X: bool, R: Variant + Clone, const F: bool>(
        &mut self,
        name: &str,
        help: &Help,
        f: impl RhaiNativeFunc<A, N, X, R, F> + Send + Sync + 'static,
    ) -> &mut Self {
        self.engine.register_fn(name, f);
        if !self.index.areas.contains(&help.area) {
            self.index.areas.push(help.area);
        }
        self.index
            .entries
            .entry(name.to_string())
            .or_insert_with(|| help.clone());
        self
    }

    /// Adds a read-only value scripts see by name, with a one-line description.
    pub fn constant(
        &mut self,
        name: &str,
        value: impl Into<Dynamic>,
        what: &'static str,
    ) -> &mut Self {
        self.index.constants.insert(name.to_string(), what);
        self.constants.insert(name.to_string(), value.into());
        self
    }

    /// Registers a custom type under the name scripts and error messages use for it;
    /// returns the engine to chain its methods, getters and operators.
    pub fn register_type<T: Variant + Clone>(&mut self, name: &'static str) -> &mut Engine {
        TYPE_NAMES
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(std::any::type_name::<T>(), name);
        self.engine.register_type_with_name::<T>(name)
    }

    /// Direct access for registrations that carry no name of their own: operators,
    /// indexers, getters.
    pub fn engine(&mut self) -> &mut Engine {
        self.engine
    }

    pub fn finish(self) -> (Arc<HelpIndex>, Arc<Constants>) {
        (Arc::new(self.index), Arc::new(self.constants))
    }
}
