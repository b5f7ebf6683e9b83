//! Stacks for fibers: reserved in chunks, handed out and taken back in LIFO order.
//!
//! Every fiber (a task, a callback run) needs a stack of its own that stays put while the
//! fiber is suspended. A fresh `mmap` per fiber costs three system calls (map, protect,
//! unmap, the last with a TLB shoot-down on every core), which dominated 10,000 short
//! tasks. Here address space is reserved a chunk at a time with no memory behind it
//! (`PROT_NONE`, `MAP_NORESERVE`); a slot is made writable the first time it is used,
//! with the page below it left inaccessible as a guard, so an overflow faults instead of
//! writing over the neighbour. Only pages a fiber actually touched hold memory.
//!
//! A returned slot keeps its pages, so the next fiber starts without page faults. Past
//! [`KEEP_WARM`] free slots, [`StackPool::trim`] (called when the script thread goes idle
//! with no fiber alive) gives the pages of the coldest ones back to the system: a burst of 10,000 tasks does not
//! leave 10,000 stacks' worth of memory behind. Chunks are never unmapped: what they keep
//! after a trim is address space, not memory.

use corosensei::stack::{Stack, StackPointer};
use std::cell::RefCell;
use std::io;
use std::rc::Rc;

/// Slots reserved per `mmap`.
const SLOTS_PER_CHUNK: usize = 64;
/// Free slots that keep their pages across idle periods.
const KEEP_WARM: usize = 64;

/// A stack slot handed to one fiber; dropping it gives the slot back to its pool.
pub struct PooledStack {
    slot: Slot,
    pool: Rc<RefCell<Pool>>,
}

#[derive(Clone, Copy)]
struct Slot {
    /// Lowest address of the slot, where its guard page starts.
    low: usize,
    /// Whether a fiber used it since its pages were last given back.
    warm: bool,
}

struct Pool {
    page: usize,
    /// Writable bytes per slot (the guard page comes on top).
    size: usize,
    /// Slots ready for reuse, the most recently returned last.
    free: Vec<Slot>,
    /// Slots of the newest chunk not handed out yet (they are still `PROT_NONE`).
    fresh: Vec<usize>,
}

/// Hands out stacks of one size on the script thread.
#[derive(Clone)]
pub struct StackPool {
    pool: Rc<RefCell<Pool>>,
}

impl StackPool {
    /// Stacks of at least `size` writable bytes each.
    pub fn new(size: usize) -> Self {
        // SAFETY: sysconf has no preconditions.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
        let size = size.div_ceil(page) * page;
        Self {
            pool: Rc::new(RefCell::new(Pool {
                page,
                size,
                free: Vec::new(),
                fresh: Vec::new(),
            })),
        }
    }

    /// Usable bytes of every stack from this pool.
    pub fn stack_size(&self) -> usize {
        self.pool.borrow().size
    }

    /// A stack: a warm free slot if there is one, else a fresh one.
    pub fn take(&self) -> io::Result<PooledStack> {
        let mut pool = self.pool.borrow_mut();
        let slot = match pool.free.pop() {
            Some(slot) => slot,
            None => pool.fresh_slot()?,
        };
        Ok(PooledStack {
            slot: Slot { warm: true, ..slot },
            pool: self.pool.clone(),
        })
    }

    /// Gives back the pages of free slots beyond the warm reserve. Cheap when nothing
    /// is cold: only slots used since the last trim are touched.
    pub fn trim(&self) {
        let mut pool = self.pool.borrow_mut();
        let Pool {
            page, size, free, ..
        } = &mut *pool;
        let cold = free.len().saturating_sub(KEEP_WARM);
        for slot in free[..cold].iter_mut().filter(|s| s.warm) {
            // SAFETY: the range is the writable part of a slot we own and nobody uses
            // (it is on the free list); MADV_DONTNEED only drops its pages, which read
            // back as zeroes.
            unsafe {
                libc::madvise(
                    (slot.low + *page) as *mut libc::c_void,
                    *size,
                    libc::MADV_DONTNEED,
                );
            }
            slot.warm = false;
        }
    }

    /// Free slots holding pages (for tests and measurements).
    pub fn warm_free(&self) -> usize {
        self.pool.borrow().free.iter().filter(|s| s.warm).count()
    }
}

impl Pool {
    fn slot_len(&self) -> usize {
        self.size + self.page
    }

    fn fresh_slot(&mut self) -> io::Result<Slot> {
        if self.fresh.is_empty() {
            self.reserve_chunk()?;
        }
        let low = self.fresh.pop().expect("a chunk was just reserved");
        // SAFETY: `low + page .. low + slot_len` lies inside a chunk we mapped and never
        // handed out; making it writable leaves the guard page below it untouched.
        let rc = unsafe {
            libc::mprotect(
                (low + self.page) as *mut libc::c_void,
                self.size,
                libc::PROT_READ | libc::PROT_WRITE,
            )
        };
        if rc != 0 {
            let err = io::Error::last_os_error();
            self.fresh.push(low);
            return Err(err);
        }
        Ok(Slot { low, warm: true })
    }

    fn reserve_chunk(&mut self) -> io::Result<()> {
        let len = self.slot_len() * SLOTS_PER_CHUNK;
        // SAFETY: an anonymous private mapping at an address of the kernel's choosing;
        // PROT_NONE and MAP_NORESERVE make it address space only.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base = base as usize;
        // Highest slot first, so `pop` hands out the lowest address first.
        let slot_len = self.slot_len();
        self.fresh
            .extend((0..SLOTS_PER_CHUNK).rev().map(|i| base + i * slot_len));
        Ok(())
    }
}

impl Drop for PooledStack {
    fn drop(&mut self) {
        self.pool.borrow_mut().free.push(self.slot);
    }
}

// SAFETY: the slot is `size` writable bytes above an inaccessible guard page, owned by
// this value alone until it is dropped; `size` is a multiple of the page size, so both
// ends are aligned far beyond STACK_ALIGNMENT.
unsafe impl Stack for PooledStack {
    fn base(&self) -> StackPointer {
        let pool = self.pool.borrow();
        StackPointer::new(self.slot.low + pool.slot_len()).expect("a mapped address is not 0")
    }

    fn limit(&self) -> StackPointer {
        StackPointer::new(self.slot.low).expect("a mapped address is not 0")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_reused_last_in_first_out_and_stay_apart() {
        let pool = StackPool::new(64 * 1024);
        let a = pool.take().unwrap();
        let b = pool.take().unwrap();
        let (a_low, b_low) = (a.limit().get(), b.limit().get());
        assert!(a_low.abs_diff(b_low) >= 64 * 1024 + 4096);
        assert_eq!(a.base().get() - a.limit().get(), pool.stack_size() + 4096);
        drop(a);
        drop(b);
        assert_eq!(pool.take().unwrap().limit().get(), b_low);
    }

    #[test]
    fn trim_keeps_a_warm_reserve() {
        let pool = StackPool::new(16 * 1024);
        let stacks: Vec<_> = (0..KEEP_WARM + 10).map(|_| pool.take().unwrap()).collect();
        for s in &stacks {
            // Touch the top page as a fiber would.
            unsafe { *((s.base().get() - 8) as *mut u64) = 7 };
        }
        drop(stacks);
        assert_eq!(pool.warm_free(), KEEP_WARM + 10);
        pool.trim();
        assert_eq!(pool.warm_free(), KEEP_WARM);
        // A trimmed slot reads back as zeroes and is usable again.
        let again: Vec<_> = (0..KEEP_WARM + 10).map(|_| pool.take().unwrap()).collect();
        let zeroed = again
            .iter()
            .filter(|s| unsafe { *((s.base().get() - 8) as *const u64) } == 0)
            .count();
        assert_eq!(zeroed, 10);
    }
}
