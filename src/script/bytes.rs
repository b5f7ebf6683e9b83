//! `bytes`: the one type for every network payload, printed like Python's `b'...'`.
//!
//! Rhai has strings (UTF-8) and blobs (which print as `[01 02]`); neither reads well
//! as a packet. `Bytes` prints as the tutorial shows (`b'Test\r\n\r\n'`), compares with
//! strings, and every function that takes a payload accepts a string, a blob or bytes
//! through [`payload`].

use super::error::{error, show, type_name};
use super::registry::{Help, Registrar};
use rhai::{Array, Blob, Dynamic, EvalAltResult, INT, NativeCallContext};
use std::fmt;
use std::ops::{Range, RangeInclusive};

/// An immutable-by-convention byte string.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bytes(pub Vec<u8>);

impl Bytes {
    /// Python's `repr(bytes)`: single quotes unless the data holds `'` and no `"`.
    pub fn repr(&self) -> String {
        let quote = if self.0.contains(&b'\'') && !self.0.contains(&b'"') {
            '"'
        } else {
            '\''
        };
        let mut out = String::with_capacity(self.0.len() + 3);
        out.push('b');
        out.push(quote);
        for &c in &self.0 {
            match c {
                b'\\' => out.push_str("\\\\"),
                b'\t' => out.push_str("\\t"),
                b'\n' => out.push_str("\\n"),
                b'\r' => out.push_str("\\r"),
                c if c as char == quote => {
                    out.push('\\');
                    out.push(quote);
                }
                0x20..=0x7e => out.push(c as char),
                c => out.push_str(&format!("\\x{c:02x}")),
            }
        }
        out.push(quote);
        out
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0).into_owned()
    }

    pub fn hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Maps a possibly negative index onto the data, Python style.
    fn position(&self, index: INT) -> Option<usize> {
        let len = self.0.len() as INT;
        let i = if index < 0 { len + index } else { index };
        (0..len).contains(&i).then_some(i as usize)
    }

    fn slice(&self, start: INT, end: INT) -> Bytes {
        let len = self.0.len() as INT;
        let clamp = |i: INT| (if i < 0 { len + i } else { i }).clamp(0, len) as usize;
        let (s, e) = (clamp(start), clamp(end));
        Bytes(if s < e {
            self.0[s..e].to_vec()
        } else {
            Vec::new()
        })
    }
}

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.repr())
    }
}

/// Converts a payload argument (string, blob, bytes or array of ints) to raw bytes;
/// `what` names the argument in the error.
pub fn payload(value: &Dynamic, what: &str) -> Result<Vec<u8>, Box<EvalAltResult>> {
    if let Some(b) = value.read_lock::<Bytes>() {
        return Ok(b.0.clone());
    }
    if value.is_string() {
        return Ok(value.clone().into_string().unwrap_or_default().into_bytes());
    }
    if value.is_blob() {
        return Ok(value.clone().into_blob().unwrap_or_default());
    }
    if value.is_array() {
        return from_array(value.clone().into_array().unwrap_or_default()).map(|b| b.0);
    }
    Err(error(
        "type",
        format!(
            "{what} must be a string, bytes, a blob or an array of ints 0..=255, got {}",
            type_name(value)
        ),
    ))
}

fn from_array(items: Array) -> Result<Bytes, Box<EvalAltResult>> {
    items
        .iter()
        .enumerate()
        .map(|(i, v)| match v.as_int() {
            Ok(n @ 0..=255) => Ok(n as u8),
            _ => Err(error(
                "value",
                format!(
                    "bytes([...]): item {i} is {}, not an integer in 0..=255",
                    show(v)
                ),
            )),
        })
        .collect::<Result<Vec<u8>, Box<EvalAltResult>>>()
        .map(Bytes)
}

/// `a + b`, within the string limit (Rhai checks strings and blobs, not our type).
fn concat(ctx: &NativeCallContext, a: &[u8], b: &[u8]) -> Result<Bytes, Box<EvalAltResult>> {
    super::limits::check_bytes(ctx.engine(), a.len().saturating_add(b.len()))?;
    Ok(Bytes([a, b].concat()))
}

/// Builds bytes from the text of a `b"..."` literal: every char must fit in a byte.
pub fn from_literal(text: &str) -> Result<Bytes, String> {
    text.chars()
        .map(|c| {
            u8::try_from(u32::from(c))
                .map_err(|_| format!("b\"...\" can only hold characters up to \\xff, found {c:?}"))
        })
        .collect::<Result<Vec<u8>, String>>()
        .map(Bytes)
}

const BYTES: Help = Help::function(
    "bytes",
    &["bytes(text)", "bytes([int, ...])", "bytes(blob)"],
    "Make bytes from a string (UTF-8), an array of ints 0..=255 or a blob; b\"...\" is the literal form.",
    r#"bytes("GET / HTTP/1.0\r\n\r\n")"#,
);
const TEXT: Help = Help::method(
    "bytes",
    &["data.text()"],
    "Decode bytes as UTF-8, replacing invalid sequences.",
    r#"b"hi\xff".text()"#,
);
const HEX: Help = Help::method(
    "bytes",
    &["data.hex()"],
    "Lowercase hex digits of the bytes.",
    r#"b"\x01\xab".hex()"#,
);
const LEN: Help = Help::method(
    "bytes",
    &["data.len()", "data.len"],
    "Number of bytes (also works on strings and arrays).",
    r#"b"Test".len()"#,
);
const TO_BLOB: Help = Help::method(
    "bytes",
    &["data.to_blob()"],
    "The bytes as a Rhai blob.",
    r#"b"ab".to_blob()"#,
);
const CONTAINS: Help = Help::method(
    "bytes",
    &["data.contains(needle)"],
    "True if the bytes contain needle (a string or bytes).",
    r#"b"HTTP/1.1 400".contains("400")"#,
);

pub fn register(reg: &mut Registrar) {
    let engine = reg.register_type::<Bytes>("bytes");
    engine
        .register_fn("to_string", |b: &mut Bytes| b.repr())
        .register_fn("to_debug", |b: &mut Bytes| b.repr())
        .register_get("len", |b: &mut Bytes| b.0.len() as INT)
        .register_fn("is_empty", |b: &mut Bytes| b.0.is_empty())
        .register_indexer_get(|b: &mut Bytes, i: INT| -> Result<INT, Box<EvalAltResult>> {
            b.position(i).map(|p| b.0[p] as INT).ok_or_else(|| {
                error(
                    "index",
                    format!("bytes index {i} is out of range for length {}", b.0.len()),
                )
            })
        })
        .register_indexer_get(|b: &mut Bytes, r: Range<INT>| b.slice(r.start, r.end))
        .register_indexer_get(|b: &mut Bytes, r: RangeInclusive<INT>| {
            b.slice(*r.start(), r.end().saturating_add(1))
        })
        .register_fn("+", |ctx: NativeCallContext, a: Bytes, b: Bytes| {
            concat(&ctx, &a.0, &b.0)
        })
        .register_fn("+", |ctx: NativeCallContext, a: Bytes, b: &str| {
            concat(&ctx, &a.0, b.as_bytes())
        })
        .register_fn("+", |ctx: NativeCallContext, a: &str, b: Bytes| {
            concat(&ctx, a.as_bytes(), &b.0)
        })
        .register_fn("==", |a: Bytes, b: Bytes| a == b)
        .register_fn("!=", |a: Bytes, b: Bytes| a != b)
        .register_fn("==", |a: Bytes, b: &str| a.0 == b.as_bytes())
        .register_fn("!=", |a: Bytes, b: &str| a.0 != b.as_bytes())
        .register_fn("==", |a: &str, b: Bytes| a.as_bytes() == b.0)
        .register_fn("!=", |a: &str, b: Bytes| a.as_bytes() != b.0)
        .register_fn("<", |a: Bytes, b: Bytes| a < b)
        .register_fn(">", |a: Bytes, b: Bytes| a > b);
    engine.register_iterator::<Bytes>();

    reg.func("bytes", &BYTES, |s: &str| Bytes(s.as_bytes().to_vec()))
        .func("bytes", &BYTES, from_array)
        .func("bytes", &BYTES, |b: Blob| Bytes(b))
        .func("bytes", &BYTES, |b: Bytes| b)
        .func("text", &TEXT, |b: &mut Bytes| b.text())
        .func("hex", &HEX, |b: &mut Bytes| b.hex())
        .func("len", &LEN, |b: &mut Bytes| b.0.len() as INT)
        .func("to_blob", &TO_BLOB, |b: &mut Bytes| b.0.clone())
        .func(
            "contains",
            &CONTAINS,
            |b: &mut Bytes, needle: Dynamic| -> Result<bool, Box<EvalAltResult>> {
                let n = payload(&needle, "contains' needle")?;
                Ok(n.is_empty() || b.0.windows(n.len()).any(|w| w == n.as_slice()))
            },
        );
}

impl IntoIterator for Bytes {
    type Item = INT;
    type IntoIter = std::iter::Map<std::vec::IntoIter<u8>, fn(u8) -> INT>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter().map(INT::from as fn(u8) -> INT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repr_matches_python() {
        assert_eq!(Bytes(b"Test\r\n\r\n".to_vec()).repr(), r"b'Test\r\n\r\n'");
        assert_eq!(Bytes(vec![0, 255, b'\\']).repr(), r"b'\x00\xff\\'");
        assert_eq!(Bytes(b"it's".to_vec()).repr(), r#"b"it's""#);
        assert_eq!(Bytes(b"'\"".to_vec()).repr(), r#"b'\'"'"#);
        assert_eq!(Bytes(vec![]).repr(), "b''");
    }

    #[test]
    fn slices_and_indexes_are_python_like() {
        let b = Bytes(b"hello".to_vec());
        assert_eq!(b.position(-1), Some(4));
        assert_eq!(b.position(5), None);
        assert_eq!(b.slice(1, 3).0, b"el");
        assert_eq!(b.slice(-3, 99).0, b"llo");
        assert_eq!(b.slice(4, 2).0, b"");
    }

    #[test]
    fn literal_rejects_wide_chars() {
        assert_eq!(from_literal("\r\n\u{ff}").unwrap().0, vec![13, 10, 255]);
        assert!(from_literal("é€").unwrap_err().contains('€'));
    }
}
