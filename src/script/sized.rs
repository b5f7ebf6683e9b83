//! Rhai's built-ins that allocate by a size argument (`s.pad(n, c)`, `a.pad(n, x)`,
//! `blob(n)`, `b.pad(n, v)`), registered again with the same behaviour plus one check
//! first: the memory limit. A runaway loop is stopped between operations (see
//! `limits.rs`), but `"".pad(10000000000, "x")` is one operation that would allocate
//! 10 GB at once, and a failed allocation aborts the process. Functions registered on the
//! engine take precedence over Rhai's packages, so these replace the originals.

use super::limits::{check_alloc, within};
use super::registry::{Help, Registrar};
use rhai::{Array, Blob, Dynamic, EvalAltResult, INT, ImmutableString, NativeCallContext};

type Res<T> = Result<T, Box<EvalAltResult>>;

const PAD: Help = Help::method(
    "shell",
    &[
        "text.pad(len, char)",
        "text.pad(len, string)",
        "array.pad(len, item)",
        "blob.pad(len, byte)",
    ],
    "Rhai's pad (grow to len characters or items), refused up front if it would pass the memory limit.",
    r#"let s = "ab"; s.pad(5, '.'); s"#,
);
const BLOB: Help = Help::function(
    "shell",
    &["blob(len)", "blob(len, byte)"],
    "Rhai's blob of len bytes (0 or byte), refused up front if it would pass the memory limit.",
    "blob(4, 0xff)",
);

fn string_limit(ctx: &NativeCallContext, bytes: usize) -> Res<()> {
    within(ctx.engine().max_string_size(), bytes, "Length of string")
}

fn array_limit(ctx: &NativeCallContext, items: usize) -> Res<()> {
    within(ctx.engine().max_array_size(), items, "Size of array/BLOB")
}

/// `len` as a size; a negative one asks for nothing, as in Rhai.
fn wanted(len: INT) -> usize {
    usize::try_from(len).unwrap_or(0)
}

fn pad_text(ctx: &NativeCallContext, text: &mut ImmutableString, len: INT, fill: &str) -> Res<()> {
    let have = text.chars().count();
    let len = wanted(len);
    let fill_chars = fill.chars().count();
    if len <= have || fill_chars == 0 {
        return Ok(());
    }
    let missing = len - have;
    let extra = missing.div_ceil(fill_chars).saturating_mul(fill.len());
    let total = text.len().saturating_add(extra);
    string_limit(ctx, total)?;
    check_alloc(total)?;
    let mut out = String::with_capacity(total);
    out.push_str(text);
    out.extend(fill.chars().cycle().take(missing));
    *text = out.into();
    Ok(())
}

/// A rough size of one more copy of `item` in an array: the slot, plus what cloning it
/// copies (strings are shared, so they copy nothing).
fn copy_size(item: &Dynamic) -> usize {
    let slot = std::mem::size_of::<Dynamic>();
    if let Some(a) = item.read_lock::<Array>() {
        return slot + a.len() * slot;
    }
    if let Some(b) = item.read_lock::<Blob>() {
        return slot + b.len();
    }
    if let Some(m) = item.read_lock::<rhai::Map>() {
        return slot + m.len() * 4 * slot;
    }
    slot
}

fn pad_array(ctx: &NativeCallContext, array: &mut Array, len: INT, item: Dynamic) -> Res<()> {
    let len = wanted(len);
    if len <= array.len() {
        return Ok(());
    }
    array_limit(ctx, len)?;
    check_alloc((len - array.len()).saturating_mul(copy_size(&item)))?;
    array.resize(len, item);
    Ok(())
}

fn byte(value: INT) -> u8 {
    (value & 0xff) as u8
}

fn new_blob(ctx: &NativeCallContext, len: INT, value: INT) -> Res<Blob> {
    let len = wanted(len);
    array_limit(ctx, len)?;
    check_alloc(len)?;
    Ok(vec![byte(value); len])
}

fn pad_blob(ctx: &NativeCallContext, blob: &mut Blob, len: INT, value: INT) -> Res<()> {
    let len = wanted(len);
    if len <= blob.len() {
        return Ok(());
    }
    array_limit(ctx, len)?;
    check_alloc(len - blob.len())?;
    blob.resize(len, byte(value));
    Ok(())
}

pub fn register(reg: &mut Registrar) {
    reg.func(
        "pad",
        &PAD,
        |ctx: NativeCallContext, s: &mut ImmutableString, len: INT, c: char| {
            pad_text(&ctx, s, len, c.encode_utf8(&mut [0; 4]))
        },
    )
    .func(
        "pad",
        &PAD,
        |ctx: NativeCallContext, s: &mut ImmutableString, len: INT, fill: &str| {
            pad_text(&ctx, s, len, fill)
        },
    )
    .func(
        "pad",
        &PAD,
        |ctx: NativeCallContext, a: &mut Array, len: INT, item: Dynamic| {
            pad_array(&ctx, a, len, item)
        },
    )
    .func(
        "pad",
        &PAD,
        |ctx: NativeCallContext, b: &mut Blob, len: INT, value: INT| pad_blob(&ctx, b, len, value),
    )
    .func("blob", &BLOB, |ctx: NativeCallContext, len: INT| {
        new_blob(&ctx, len, 0)
    })
    .func(
        "blob",
        &BLOB,
        |ctx: NativeCallContext, len: INT, value: INT| new_blob(&ctx, len, value),
    );
}
