//! The engine's limits: how much heap the process may hold while a script runs, how
//! deep functions may nest, how many operations one input may run, how long a string and
//! how large an array or map may grow, and how deep arrays and maps may nest. Without
//! them `let s = "x"; loop { s += s; }` ends in a failed allocation and
//! `loop { a = [a] }` in a stack overflow when the value is dropped, both of which abort
//! the process; with them, each ends in a script error that names the limit and how to
//! raise it, and the REPL keeps its variables.
//!
//! The memory limit is checked before every operation (`on_progress`, with the count kept
//! by `crate::heap`) and, for the few built-ins that allocate by a size argument
//! (`pad`, `blob(n)`), before they allocate (`sized.rs`). The size limits are Rhai's,
//! as patched in `vendor/rhai` (see its `P2PD-PATCHES.md`): they hold for each string,
//! array, blob and map on its own, checked in O(1) after each change (Rhai measured the
//! whole value, nested ones included, so n pushes cost O(n^2)); what nested values add
//! up to is the memory limit's business. The nesting limit is checked on what is put
//! into an array or map, so it costs no more than copying that value in: dropping,
//! cloning and printing a value recurse once per level, on a stack that must hold the
//! deepest value anywhere a script runs (see [`MAX_NESTING`]).
//!
//! Limits change with `--limit NAME=N` or, from the next input on, `limits(#{NAME: N})`:
//! Rhai reads its limits from the engine, which a running input cannot change. Messages
//! are written here too ([`describe`]), from Rhai's error and the limits in force on the
//! thread.

use super::error::error;
use super::registry::{Help, Registrar};
use crate::text::quoted;
use rhai::{Dynamic, Engine, EvalAltResult, INT, Map};
use std::cell::Cell;
use std::sync::{Arc, Mutex};

/// Every limit, with its name in `limits(#{...})` and `--limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most heap bytes the whole process may hold while an input runs; 0 = no limit.
    pub memory: usize,
    /// Deepest nesting of function calls.
    pub call_depth: usize,
    /// Most operations one input (a REPL line, a script, a callback run) may take; 0 = no
    /// limit. Off by default: a script serving a pipe in a loop runs for days, and Ctrl-C
    /// already stops a runaway loop.
    pub operations: u64,
    /// Longest string, in bytes (bytes values obey it too); 0 = no limit.
    pub string: usize,
    /// Most items in one array (those of arrays inside it are theirs), or bytes in one
    /// blob; 0 = no limit.
    pub array: usize,
    /// Most entries in one map; 0 = no limit.
    pub map: usize,
    /// Deepest nesting of arrays, maps and curried function pointers (`[]` is 1 deep,
    /// `[[]]` 2), in 1..=[`MAX_NESTING`].
    pub nesting: usize,
}

/// The sizes a single value may reach by default: each about a quarter of the default
/// memory limit at most (a string of 256 MiB; 16 Mi array items of 16 bytes, 256 MiB; 1 Mi
/// map entries, 90 MiB with short keys), so a value growing without end names itself
/// before the heap as a whole runs out, with room for the copy that growing it makes.
impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory: 1 << 30,
            call_depth: 256,
            operations: 0,
            string: 256 << 20,
            array: 16 << 20,
            map: 1 << 20,
            nesting: MAX_NESTING,
        }
    }
}

/// The names, in the order `limits()` shows them.
pub const NAMES: [&str; 7] = [
    "memory",
    "call_depth",
    "operations",
    "string",
    "array",
    "map",
    "nesting",
];

/// Deepest call nesting `call_depth` may be set to. Deep nesting cannot overflow the
/// stack whatever this says (see [`check_progress`]), but each level costs stack and
/// time, and past this no script is being reasonable.
pub const MAX_CALL_DEPTH: usize = 100_000;

/// Deepest nesting `nesting` may be set to, and its default. Dropping, cloning, printing
/// and serialising a value recurse once per level on the native stack, and a drop cannot
/// stop with an error, so the deepest value must fit in the least stack a script may be
/// left with: a task's 128 KiB reserve (its fiber stops there, `sched::fiber`) in an
/// optimised build, 512 KiB in a debug one. A level costs up to about 360 bytes optimised
/// (cloning a map) and 1.5 KiB in a debug build (serialising one; figures from
/// `examples/nesting_stack.rs`), so 256 levels take at most 90 KiB and 384 KiB. Comparing
/// (`==`) recurses through the engine, whose stack guard stops it with an error. And 256
/// is deeper than data a script is likely to need (serde_json refuses past 128).
pub const MAX_NESTING: usize = 256;

/// A depth limit, which cannot be off: `value` must be in 1..=max.
fn within_max(name: &str, value: usize, max: usize, why: &str) -> Result<usize, String> {
    if (1..=max).contains(&value) {
        Ok(value)
    } else {
        Err(format!(
            "limit {name} must be in 1..={max} ({why}), got {value}"
        ))
    }
}

impl Limits {
    /// Sets one limit by name, checking the value.
    pub fn set(&mut self, name: &str, value: i64) -> Result<(), String> {
        let size = |v: i64| {
            usize::try_from(v).map_err(|_| {
                format!("limit {name} must be an integer >= 0 (0 = no limit), got {v}")
            })
        };
        match name {
            "memory" => self.memory = size(value)?,
            "string" => self.string = size(value)?,
            "array" => self.array = size(value)?,
            "map" => self.map = size(value)?,
            "operations" => self.operations = size(value)? as u64,
            "call_depth" => {
                self.call_depth = within_max(
                    name,
                    size(value)?,
                    MAX_CALL_DEPTH,
                    "deeper would overflow the thread's stack",
                )?;
            }
            "nesting" => {
                self.nesting = within_max(
                    name,
                    size(value)?,
                    MAX_NESTING,
                    "deeper values could overflow a task's stack when copied, printed or dropped",
                )?;
            }
            other => {
                return Err(format!(
                    "unknown limit {}; the limits are {}",
                    quoted(other),
                    NAMES.join(", ")
                ));
            }
        }
        Ok(())
    }

    /// One `--limit NAME=N` flag.
    pub fn set_flag(&mut self, flag: &str) -> Result<(), String> {
        let (name, value) = flag.split_once('=').ok_or_else(|| {
            format!(
                "--limit takes NAME=N, e.g. --limit memory=4000000000, got {}",
                quoted(flag)
            )
        })?;
        let value = value.trim().replace('_', "");
        let value = value.parse::<i64>().map_err(|_| {
            format!(
                "--limit {}: {} is not a whole number",
                quoted(name.trim()),
                quoted(&value)
            )
        })?;
        self.set(name.trim(), value)
    }

    fn get(&self, name: &str) -> u64 {
        match name {
            "memory" => self.memory as u64,
            "string" => self.string as u64,
            "array" => self.array as u64,
            "map" => self.map as u64,
            "call_depth" => self.call_depth as u64,
            "nesting" => self.nesting as u64,
            _ => self.operations,
        }
    }

    fn to_map(self) -> Map {
        NAMES
            .iter()
            .map(|&n| {
                (
                    n.into(),
                    Dynamic::from(INT::try_from(self.get(n)).unwrap_or(INT::MAX)),
                )
            })
            .collect()
    }

    /// Puts these limits into force on `engine`, and on this thread for the memory checks
    /// and [`describe`].
    pub fn apply(&self, engine: &mut Engine) {
        engine
            .set_max_string_size(self.string)
            .set_max_array_size(self.array)
            .set_max_map_size(self.map)
            .set_max_nesting(self.nesting)
            .set_max_call_levels(self.call_depth)
            .set_max_operations(self.operations);
        self.put_in_force();
    }

    /// Puts only the limits this module checks itself (memory, stack) into force, for
    /// when the engine cannot be changed yet.
    pub fn put_in_force(&self) {
        IN_FORCE.with(|l| l.set(*self));
    }
}

thread_local! {
    /// The limits of the session evaluating on this thread: the memory check reads them
    /// before every operation, and messages name them (Rhai's errors name a limit, not
    /// its value).
    static IN_FORCE: Cell<Limits> = Cell::new(Limits::default());
}

/// The limits in force for the session evaluating on this thread.
pub fn in_force() -> Limits {
    IN_FORCE.with(Cell::get)
}

/// The value an input ends with (`ErrorTerminated`, which no `catch` stops) when the
/// memory limit or the stack's end is reached; told apart from Ctrl-C by its type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitHit {
    Memory,
    Stack,
}

/// Stack an input must leave unused: more than one Rhai operation takes (a debug build
/// uses about 32 KiB per call level), so checking between operations is enough.
pub const STACK_RESERVE: usize = 512 << 10;

/// What the engine's `on_progress` checks before every operation: the memory limit, and
/// that the script thread's stack has room for more calls (Rhai's call depth limit counts
/// levels, not bytes, and a stack overflow aborts the process).
pub fn check_progress() -> Option<LimitHit> {
    let limit = in_force().memory;
    if limit > 0 && crate::heap::live() > limit {
        return Some(LimitHit::Memory);
    }
    stack_left()
        .is_some_and(|left| left < STACK_RESERVE)
        .then_some(LimitHit::Stack)
}

thread_local! {
    /// This thread's stack as (lowest address, size); (0, 0) until first asked.
    static STACK: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
}

/// Bytes of stack left below the current frame on this thread, when that is known (it is
/// not on a stack the thread did not start with, such as a coroutine's).
pub fn stack_left() -> Option<usize> {
    let (low, size) = STACK.with(|s| {
        if s.get() == (0, 0) {
            s.set(thread_stack().unwrap_or((usize::MAX, 0)));
        }
        s.get()
    });
    let here = 0u8;
    let sp = std::ptr::addr_of!(here) as usize;
    (low..low.saturating_add(size))
        .contains(&sp)
        .then(|| sp - low)
}

/// The calling thread's stack from the C library: (lowest address, size).
fn thread_stack() -> Option<(usize, usize)> {
    // SAFETY: `attr` is initialised by pthread_getattr_np before it is read, and
    // destroyed once; the calls only write through the pointers given.
    unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) != 0 {
            return None;
        }
        let mut addr: *mut libc::c_void = std::ptr::null_mut();
        let mut size: libc::size_t = 0;
        let got = libc::pthread_attr_getstack(&attr, &mut addr, &mut size);
        libc::pthread_attr_destroy(&mut attr);
        (got == 0).then_some((addr as usize, size))
    }
}

/// Refuses to allocate `bytes` more when that would pass the memory limit: for built-ins
/// that allocate by a size argument in one step, where `on_progress` would come too late.
pub fn check_alloc(bytes: usize) -> Result<(), Box<EvalAltResult>> {
    let limit = in_force().memory;
    if limit > 0 && crate::heap::live().saturating_add(bytes) > limit {
        return Err(EvalAltResult::ErrorTerminated(
            Dynamic::from(LimitHit::Memory),
            rhai::Position::NONE,
        )
        .into());
    }
    Ok(())
}

/// What the patched Rhai's `ErrorDataTooLarge` calls a value put too deep into arrays,
/// maps or curried function pointers (`vendor/rhai/src/eval/data_check.rs`).
const NESTED_TOO_DEEP: &str = "Nesting of arrays/object maps";

/// What Rhai's `ErrorDataTooLarge` calls bytes that outgrew the string limit; raised by
/// [`check_bytes`], which Rhai cannot do for a custom type.
const BYTES_TOO_LONG: &str = "Length of bytes";

/// Refuses bytes longer than the string limit (when one is set), as Rhai refuses such a
/// string.
pub fn check_bytes(engine: &Engine, len: usize) -> Result<(), Box<EvalAltResult>> {
    within(engine.max_string_size(), len, BYTES_TOO_LONG)
}

/// Rhai's own refusal when one of its size limits (`max`, 0 = off) is passed; `what` is
/// Rhai's name for the limit, which [`describe`] reads.
pub fn within(max: usize, size: usize, what: &str) -> Result<(), Box<EvalAltResult>> {
    if max > 0 && size > max {
        return Err(EvalAltResult::ErrorDataTooLarge(what.into(), rhai::Position::NONE).into());
    }
    Ok(())
}

/// Which limit ended an input, if one did (and not Ctrl-C).
pub fn limit_hit(err: &EvalAltResult) -> Option<LimitHit> {
    match err {
        EvalAltResult::ErrorTerminated(token, _) => token.read_lock::<LimitHit>().map(|l| *l),
        _ => None,
    }
}

/// The message for an error that is a limit being hit, or `None`.
pub fn describe(err: &EvalAltResult) -> Option<String> {
    let l = in_force();
    let raise = |name: &str| {
        format!("raise it with limits(#{{{name}: N}}) (from the next input) or --limit {name}=N")
    };
    Some(match err {
        e if limit_hit(e) == Some(LimitHit::Memory) => format!(
            "the process's heap grew past the memory limit of {} bytes ({:.1} GiB) while this input ran: {}",
            l.memory,
            l.memory as f64 / f64::from(1u32 << 30),
            raise("memory")
        ),
        e if limit_hit(e) == Some(LimitHit::Stack) => format!(
            "functions nested too deep for the script thread's stack (less than {} KiB left): \
             write the recursion as a loop, or nest less (the call depth limit is {})",
            STACK_RESERVE >> 10,
            l.call_depth
        ),
        EvalAltResult::ErrorDataTooLarge(what, _) => match what.as_str() {
            "Length of string" => format!(
                "a string grew past the limit of {} bytes: {}",
                l.string,
                raise("string")
            ),
            BYTES_TOO_LONG => format!(
                "bytes grew past the string limit of {} bytes: {}",
                l.string,
                raise("string")
            ),
            "Size of array/BLOB" | "Size of BLOB" => format!(
                "an array grew past the limit of {} items (a blob: bytes): {}",
                l.array,
                raise("array")
            ),
            "Size of object map" => format!(
                "a map grew past the limit of {} entries: {}",
                l.map,
                raise("map")
            ),
            NESTED_TOO_DEEP if l.nesting < MAX_NESTING => format!(
                "arrays and maps nested deeper than the nesting limit of {} levels: {} (at most {MAX_NESTING})",
                l.nesting,
                raise("nesting")
            ),
            NESTED_TOO_DEEP => format!(
                "arrays and maps nested deeper than the nesting limit of {MAX_NESTING} levels, \
                 its most (deeper values could overflow a task's stack when copied, printed or \
                 dropped): keep the data flatter, e.g. a list of rows or a map of ids"
            ),
            _ => return None,
        },
        EvalAltResult::ErrorStackOverflow(_) => format!(
            "functions nested deeper than the call depth limit of {}: {} (at most {MAX_CALL_DEPTH})",
            l.call_depth,
            raise("call_depth")
        ),
        EvalAltResult::ErrorTooManyOperations(_) => format!(
            "the input ran more than the limit of {} operations: {} (0 = no limit)",
            l.operations,
            raise("operations")
        ),
        _ => return None,
    })
}

/// The limits a session asked for with `limits(#{...})`, put into force before its next
/// input.
pub type Requested = Arc<Mutex<Limits>>;

const LIMITS: Help = Help::function(
    "shell",
    &[
        "limits()",
        "limits(#{memory: N, call_depth: N, operations: N, string: N, array: N, map: N, nesting: N})",
    ],
    "The engine's limits (0 = none); with a map, change some of them from the next input on (or start with --limit NAME=N).",
    "limits(#{memory: 2000000000}); limits().memory",
);

pub fn register(reg: &mut Registrar, requested: Requested) {
    let read = requested.clone();
    reg.func("limits", &LIMITS, move || {
        read.lock().unwrap_or_else(|p| p.into_inner()).to_map()
    });
    reg.func(
        "limits",
        &LIMITS,
        move |changes: Map| -> Result<Map, Box<EvalAltResult>> {
            let mut limits = *requested.lock().unwrap_or_else(|p| p.into_inner());
            for (name, value) in &changes {
                let n = value.as_int().map_err(|_| {
                    error(
                        "type",
                        format!(
                            "limit {} must be an integer, got {}",
                            quoted(name),
                            super::error::type_name(value)
                        ),
                    )
                })?;
                limits.set(name, n).map_err(|e| error("value", e))?;
            }
            *requested.lock().unwrap_or_else(|p| p.into_inner()) = limits;
            Ok(limits.to_map())
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_names_are_checked() {
        let mut l = Limits::default();
        l.set_flag("string=1_000").unwrap();
        l.set_flag(" operations = 5").unwrap();
        assert_eq!((l.string, l.operations), (1000, 5));
        l.set("array", 0).unwrap();
        assert!(l.set_flag("string").unwrap_err().contains("NAME=N"));
        assert!(
            l.set_flag("string=x")
                .unwrap_err()
                .contains("not a whole number")
        );
        assert!(
            l.set_flag("strnig=1")
                .unwrap_err()
                .contains("the limits are memory")
        );
        assert!(l.set("memory", -1).unwrap_err().contains(">= 0"));
        assert!(
            l.set("call_depth", 1_000_000)
                .unwrap_err()
                .contains("1..=100000")
        );
        assert!(l.set("call_depth", 0).is_err());
        assert_eq!(l.to_map().len(), NAMES.len());
    }

    #[test]
    fn limit_errors_say_which_limit_and_how_to_raise_it() {
        let mut engine = Engine::new();
        Limits {
            string: 1000,
            ..Limits::default()
        }
        .apply(&mut engine);
        let err = engine.run(r#"let s = "x"; loop { s += s; }"#).unwrap_err();
        let text = describe(&err).unwrap();
        assert!(
            text.contains("limit of 1000 bytes") && text.contains("limits(#{string: N})"),
            "{text}"
        );
        assert!(
            describe(&EvalAltResult::ErrorRuntime(
                ().into(),
                rhai::Position::NONE
            ))
            .is_none()
        );
        assert!(check_bytes(&engine, 1001).is_err() && check_bytes(&engine, 1000).is_ok());
        Limits::default().apply(&mut engine);
        assert!(
            check_bytes(&engine, 256 << 20).is_ok()
                && check_bytes(&engine, (256 << 20) + 1).is_err()
        );
        Limits {
            string: 0,
            ..Limits::default()
        }
        .apply(&mut engine);
        assert!(check_bytes(&engine, usize::MAX).is_ok(), "0 is no limit");
        Limits::default().apply(&mut engine);
    }

    #[test]
    fn nesting_is_bounded_and_its_errors_say_so() {
        let mut l = Limits::default();
        assert_eq!(l.nesting, MAX_NESTING);
        assert!(l.set("nesting", 0).unwrap_err().contains("1..=256"));
        assert!(l.set("nesting", 257).unwrap_err().contains("1..=256"));
        l.set_flag("nesting=8").unwrap();
        let mut engine = Engine::new();
        l.apply(&mut engine);
        let err = engine.run("let a = []; loop { a = [a]; }").unwrap_err();
        let text = describe(&err).unwrap();
        assert!(
            text.contains("nesting limit of 8 levels") && text.contains("limits(#{nesting: N})"),
            "{text}"
        );
        Limits::default().apply(&mut engine);
        let err = engine.run("let a = []; loop { a = [a]; }").unwrap_err();
        let text = describe(&err).unwrap();
        assert!(text.contains("limit of 256 levels, its most"), "{text}");
    }

    #[test]
    fn the_memory_limit_is_checked_against_the_live_heap() {
        let mut engine = Engine::new();
        let limits = Limits {
            memory: crate::heap::live() + (256 << 20),
            ..Limits::default()
        };
        limits.apply(&mut engine);
        assert_ne!(check_progress(), Some(LimitHit::Memory));
        assert!(check_alloc(1 << 20).is_ok());
        let err = check_alloc(512 << 20).unwrap_err();
        assert_eq!(limit_hit(&err), Some(LimitHit::Memory));
        assert!(describe(&err).unwrap().contains("limits(#{memory: N})"));
        let held = vec![7u8; 300 << 20];
        assert_eq!(check_progress(), Some(LimitHit::Memory));
        drop(held);
        Limits::default().apply(&mut engine);
    }

    #[test]
    fn the_stack_is_measured_on_this_thread() {
        let left = stack_left().expect("a thread's own stack is known");
        fn deeper(n: usize) -> usize {
            // Kept on the stack in an optimised build too, which would drop an unused array.
            let pad = std::hint::black_box([n as u8; 4096]);
            if n == 0 {
                stack_left().unwrap_or(0) + usize::from(pad[0])
            } else {
                deeper(n - 1) + usize::from(pad[1]) - usize::from(pad[2])
            }
        }
        assert!(deeper(32) + 32 * 4096 <= left + 4096);
    }

    #[test]
    fn fuzz_limit_flags() {
        let seeds =
            crate::fuzz::text_seeds(&["memory=1000000", "call_depth=300", "string=1_000", "map"]);
        crate::fuzz::run("limit flags", &seeds, |input| {
            let mut l = Limits::default();
            match l.set_flag(&String::from_utf8_lossy(input)) {
                Ok(()) if !(1..=MAX_CALL_DEPTH).contains(&l.call_depth) => {
                    Err("accepted a call depth out of range".into())
                }
                Err(e) if e.len() > 300 => Err(format!("{} byte message", e.len())),
                _ => Ok(()),
            }
        });
    }
}
