//! Data size checks during evaluation.
#![cfg(not(feature = "unchecked"))]

use super::GlobalRuntimeState;
use crate::types::dynamic::Union;
use crate::{Dynamic, Engine, Position, RhaiResultOf, ERR};
use std::borrow::Borrow;
#[cfg(feature = "no_std")]
use std::prelude::v1::*;

// P2PD PATCH (this file): sizes are those of the value itself, not of what it holds, and
// a separate limit bounds how deep values nest; see vendor/rhai/P2PD-PATCHES.md.
//
// Rhai measured the whole value, recursively, after every change to it: each `a.push(x)`
// walked all of `a`, so building an array of n items took O(n^2) time, and the recursion
// could overflow the stack on a deeply nested value. Now each array, map, string and blob
// is held to the limits on its own, in O(1); what nested values add up to is bounded by the
// nesting limit and, in the host, by a memory limit.

/// Calculate the sizes of an array itself: its number of items (P2PD PATCH: not recursive).
///
/// Sizes returned are `(` [`Array`][crate::Array], [`Map`][crate::Map] and [`String`] `)`.
#[cfg(not(feature = "no_index"))]
#[inline]
#[must_use]
pub fn calc_array_sizes(array: &crate::Array) -> (usize, usize, usize) {
    (array.len(), 0, 0)
}
/// Calculate the sizes of a map itself: its number of entries (P2PD PATCH: not recursive).
///
/// Sizes returned are `(` [`Array`][crate::Array], [`Map`][crate::Map] and [`String`] `)`.
#[cfg(not(feature = "no_object"))]
#[inline]
#[must_use]
pub fn calc_map_sizes(map: &crate::Map) -> (usize, usize, usize) {
    (0, map.len(), 0)
}

/// Calculate the sizes of a value itself (P2PD PATCH: not recursive): an array's items, a
/// blob's bytes, a map's entries, a string's bytes.
///
/// Sizes returned are `(` [`Array`][crate::Array], [`Map`][crate::Map] and [`String`] `)`.
#[inline]
#[must_use]
pub fn calc_data_sizes(value: &Dynamic, _top: bool) -> (usize, usize, usize) {
    match value.0 {
        #[cfg(not(feature = "no_index"))]
        Union::Array(ref arr, ..) => calc_array_sizes(arr),
        #[cfg(not(feature = "no_index"))]
        Union::Blob(ref blob, ..) => (blob.len(), 0, 0),
        #[cfg(not(feature = "no_object"))]
        Union::Map(ref map, ..) => calc_map_sizes(map),
        Union::Str(ref s, ..) => (0, 0, s.len()),
        // A shared value locked elsewhere is measured by whoever holds the lock.
        #[cfg(not(feature = "no_closure"))]
        Union::Shared(ref cell, ..) => crate::func::locked_read(cell)
            .map_or((0, 0, 0), |v| calc_data_sizes(&v, _top)),
        _ => (0, 0, 0),
    }
}

/// P2PD PATCH: the values held by a value that can nest: an array's items, a map's values,
/// a function pointer's curried arguments.
enum Nested<'a> {
    List(std::slice::Iter<'a, Dynamic>),
    #[cfg(not(feature = "no_object"))]
    Map(std::collections::btree_map::Values<'a, crate::Identifier, Dynamic>),
}

impl<'a> Iterator for Nested<'a> {
    type Item = &'a Dynamic;

    #[inline]
    fn next(&mut self) -> Option<&'a Dynamic> {
        match self {
            Self::List(items) => items.next(),
            #[cfg(not(feature = "no_object"))]
            Self::Map(values) => values.next(),
        }
    }
}

impl<'a> Nested<'a> {
    /// `None` for a value that holds none (a blob holds bytes), or a shared one.
    #[inline]
    fn of(value: &'a Dynamic) -> Option<Self> {
        match value.0 {
            #[cfg(not(feature = "no_index"))]
            Union::Array(ref arr, ..) => Some(Self::List(arr.iter())),
            #[cfg(not(feature = "no_object"))]
            Union::Map(ref map, ..) => Some(Self::Map(map.values())),
            Union::FnPtr(ref f, ..) if !f.curry().is_empty() => Some(Self::List(f.curry().iter())),
            _ => None,
        }
    }
}

/// P2PD PATCH: how deep arrays, maps and curried function pointers nest in `value`: 0 for
/// any other value, 1 for `[]` or `[1, "a"]`, 2 for `[[]]`.
///
/// Counted only up to `max + 1` (past `max` the exact depth does not matter), on a heap
/// stack of one iterator per level, not by recursion, except into a shared value (a
/// variable a closure captured): that recursion is as deep as the function pointers it
/// goes through, each a level. Costs a look at every item, as cloning the value does,
/// which is how values usually come to be placed.
#[must_use]
pub fn calc_nesting(value: &Dynamic, max: usize) -> usize {
    NestingWalk::default().depth(value, max)
}

/// P2PD PATCH: one measurement of nesting, with what it found in each shared value.
#[derive(Default)]
struct NestingWalk {
    /// Depth of what each shared value (by address) holds: looked into once, and taken
    /// as 0 while being looked into, for a closure that captured a value holding it.
    #[cfg(not(feature = "no_closure"))]
    shared: std::collections::BTreeMap<usize, usize>,
}

/// What one value adds to a walk.
enum Step<'a> {
    /// Nothing to walk into: its depth is known.
    Leaf(usize),
    Items(Nested<'a>),
}

impl NestingWalk {
    fn step<'a>(&mut self, value: &'a Dynamic, _max: usize) -> Step<'a> {
        match value.0 {
            #[cfg(not(feature = "no_closure"))]
            Union::Shared(ref cell, ..) => Step::Leaf(self.shared(cell, _max)),
            _ => Nested::of(value).map_or(Step::Leaf(0), Step::Items),
        }
    }

    fn depth(&mut self, value: &Dynamic, max: usize) -> usize {
        let top = match self.step(value, max) {
            Step::Leaf(depth) => return depth,
            Step::Items(items) => items,
        };
        let mut path = crate::StaticVec::<Nested>::new();
        path.push(top);
        let mut deepest = 1;
        while let Some(items) = path.last_mut() {
            let Some(item) = items.next() else {
                path.pop();
                continue;
            };
            let level = path.len();
            match self.step(item, max.saturating_sub(level)) {
                Step::Leaf(depth) => deepest = deepest.max(level + depth),
                Step::Items(inner) => {
                    path.push(inner);
                    deepest = deepest.max(path.len());
                }
            }
            if deepest > max {
                break;
            }
        }
        deepest
    }

    /// A shared value locked elsewhere (being changed: the value it is put into) is not
    /// waited for; it holds what was checked when it was put there.
    #[cfg(not(feature = "no_closure"))]
    fn shared(&mut self, cell: &crate::Shared<crate::Locked<Dynamic>>, max: usize) -> usize {
        let key = crate::Shared::as_ptr(cell) as usize;
        if let Some(&depth) = self.shared.get(&key) {
            return depth;
        }
        self.shared.insert(key, 0);
        #[cfg(not(feature = "sync"))]
        let held = cell.try_borrow().ok();
        #[cfg(feature = "sync")]
        let held = cell.try_read().ok();
        let depth = held.map_or(0, |value| self.depth(&value, max));
        self.shared.insert(key, depth);
        depth
    }
}

impl Engine {
    /// Raise an error if any data size exceeds limit.
    ///
    /// [`Position`] in [`EvalAltResult`][crate::EvalAltResult] is always [`NONE`][Position::NONE]
    /// and should be set afterwards.
    #[cfg(not(feature = "unchecked"))]
    pub(crate) fn throw_on_size(&self, (_arr, _map, s): (usize, usize, usize)) -> RhaiResultOf<()> {
        if self.limits.string_len.map_or(false, |max| s > max.get()) {
            return Err(
                ERR::ErrorDataTooLarge("Length of string".to_string(), Position::NONE).into(),
            );
        }

        #[cfg(not(feature = "no_index"))]
        if self.limits.array_size.map_or(false, |max| _arr > max.get()) {
            return Err(
                ERR::ErrorDataTooLarge("Size of array/BLOB".to_string(), Position::NONE).into(),
            );
        }

        #[cfg(not(feature = "no_object"))]
        if self.limits.map_size.map_or(false, |max| _map > max.get()) {
            return Err(
                ERR::ErrorDataTooLarge("Size of object map".to_string(), Position::NONE).into(),
            );
        }

        Ok(())
    }

    /// Check whether the size of a [`Dynamic`] is within limits.
    ///
    /// P2PD PATCH: for a value just made or copied (a function's result): its own size and
    /// how deep it nests. A value changed in place is checked by [`check_own_size`][Self::check_own_size],
    /// and what was put into it by [`check_nesting`][Self::check_nesting].
    #[cfg(not(feature = "unchecked"))]
    #[inline]
    pub(crate) fn check_data_size<T: Borrow<Dynamic>>(
        &self,
        value: T,
        pos: Position,
    ) -> RhaiResultOf<T> {
        // If no data size limits, just return
        if !self.has_data_size_limit() {
            return Ok(value);
        }

        let sizes = calc_data_sizes(value.borrow(), true);

        self.throw_on_size(sizes)
            .map_err(|err| err.fill_position(pos))?;
        self.check_nesting(value.borrow(), 0, pos)?;

        Ok(value)
    }

    /// P2PD PATCH: check the size of a value changed in place (an array pushed to, a string
    /// appended to), in O(1): its nesting was checked on what went in.
    #[cfg(not(feature = "unchecked"))]
    #[inline]
    pub(crate) fn check_own_size(&self, value: &Dynamic, pos: Position) -> RhaiResultOf<()> {
        if !self.has_data_size_limit() {
            return Ok(());
        }
        self.throw_on_size(calc_data_sizes(value, true))
            .map_err(|err| err.fill_position(pos))
    }

    /// P2PD PATCH: raise an error if `value`, placed `outer` levels down inside an array,
    /// map or function pointer, would nest deeper than the limit.
    #[cfg(not(feature = "unchecked"))]
    #[inline]
    pub(crate) fn check_nesting(
        &self,
        value: &Dynamic,
        outer: usize,
        pos: Position,
    ) -> RhaiResultOf<()> {
        let Some(max) = self.limits.nesting else {
            return Ok(());
        };
        let room = max.get().saturating_sub(outer);
        if outer > max.get() || calc_nesting(value, room) > room {
            return Err(ERR::ErrorDataTooLarge(
                "Nesting of arrays/object maps".to_string(),
                pos,
            )
            .into());
        }
        Ok(())
    }

    /// Raise an error if the size of a [`Dynamic`] is out of limits (if any).
    ///
    /// Not available under `unchecked`.
    #[cfg(not(feature = "unchecked"))]
    #[inline(always)]
    pub fn ensure_data_size_within_limits(&self, value: &Dynamic) -> RhaiResultOf<()> {
        self.check_data_size(value, Position::NONE).map(|_| ())
    }

    /// Check if the number of operations stay within limit.
    #[inline(always)]
    pub(crate) fn track_operation(
        &self,
        global: &mut GlobalRuntimeState,
        pos: Position,
    ) -> RhaiResultOf<()> {
        let mut num_ops = None;

        let mut num_operations = || {
            *num_ops.get_or_insert_with(|| {
                // Increment operations count
                #[cfg(atomic_ops_count)]
                return global
                    .num_operations
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
                    + 1;

                #[cfg(not(atomic_ops_count))]
                {
                    global.num_operations += 1;
                    return global.num_operations;
                }
            })
        };

        // Guard against too many operations
        #[cfg(not(feature = "unchecked"))]
        if self.max_operations() > 0 && num_operations() > self.max_operations() {
            return Err(ERR::ErrorTooManyOperations(pos).into());
        }

        if let Some(progress) = self.progress.as_ref() {
            return progress(num_operations())
                .map(|token| Err(ERR::ErrorTerminated(token, pos).into()))
                .unwrap_or(Ok(()));
        }

        Ok(())
    }
}
