//! How much heap the process holds, counted by the global allocator, so that a runaway
//! script can be stopped with an error before an allocation fails: in Rust a failed
//! allocation aborts the process, which no error handling can catch.
//!
//! Rhai's size limits cannot do this job: they bound each string, array and map on its
//! own (see `vendor/rhai/P2PD-PATCHES.md`), not what many of them add up to. Counting
//! allocations costs a thread-local add per allocation.
//!
//! Each thread adds its allocations to a counter of its own and moves it into the shared
//! total once it is [`FLUSH`] bytes off, so threads do not fight over one cache line; the
//! total is therefore exact to within `FLUSH` bytes per thread.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicIsize, Ordering};

/// The system allocator, counted.
pub struct CountingAlloc;

/// Bytes allocated and not yet freed, as far as every thread has reported.
static LIVE: AtomicIsize = AtomicIsize::new(0);

/// How far a thread's own count may drift before it is added to [`LIVE`].
pub const FLUSH: isize = 256 * 1024;

thread_local! {
    /// Allocated minus freed on this thread since it last reported. Const-initialised and
    /// without a destructor, so the allocator may use it at any point of a thread's life.
    static PENDING: Cell<isize> = const { Cell::new(0) };
}

fn count(delta: isize) {
    let reported = PENDING.try_with(|p| {
        let v = p.get() + delta;
        if v.abs() >= FLUSH {
            LIVE.fetch_add(v, Ordering::Relaxed);
            p.set(0);
        } else {
            p.set(v);
        }
    });
    if reported.is_err() {
        LIVE.fetch_add(delta, Ordering::Relaxed);
    }
}

// SAFETY: every method forwards to `System` with the same arguments and only adds
// bookkeeping that neither allocates nor touches the returned memory.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as `System.alloc`.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            count(layout.size() as isize);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as `System.alloc_zeroed`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            count(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        count(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from this allocator with `layout`.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            count(new_size as isize - layout.size() as isize);
        }
        p
    }
}

/// Heap bytes the process holds (to within [`FLUSH`] bytes per thread).
pub fn live() -> usize {
    usize::try_from(LIVE.load(Ordering::Relaxed)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_big_allocation_is_counted_and_its_release_too() {
        let before = live();
        let big = vec![1u8; 64 << 20];
        let during = live();
        drop(big);
        let after = live();
        // Other test threads allocate meanwhile: allow them a few FLUSHes of drift.
        let slack = 16 * FLUSH as usize;
        assert!(
            during >= before + (64 << 20) - slack,
            "{before} -> {during}"
        );
        assert!(after + (64 << 20) <= during + slack, "{during} -> {after}");
    }
}
