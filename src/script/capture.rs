//! What a task or callback closure captures, made safe to suspend on.
//!
//! Rhai shares a captured variable between the closure and the code around it as one
//! locked cell, and a method call holds its receiver's cell locked for the whole call.
//! With tasks that suspend, that lock would outlive the wait: while one task is
//! suspended inside `i.start()`, any other reader of `i` (`i.name`, in another task or in
//! the line) would fail with "Data race detected".
//!
//! Handle types (pipes, interfaces, tasks, timers, servers) do not need the shared cell:
//! every copy of a handle already refers to the same object, so a method called through
//! a copy changes what every holder sees. [`detach`] gives the closure its own copy of
//! each captured handle when it is handed over, so its waits lock nothing the rest of
//! the script reads. The one thing lost is assignment: a closure that assigns a new
//! handle to a captured variable changes its own copy only. Captured plain values
//! (numbers, strings, arrays, maps) stay shared, as Rhai defines them.

use super::interface::{InterfaceHandle, NetIfacesHandle};
use super::pipe::ScriptPipe;
use super::stun::StunServerHandle;
use super::task::Task;
use super::timers::Timer;
use rhai::{Dynamic, FnPtr};

/// `f` with every captured handle copied out of its shared cell.
pub fn detach(mut f: FnPtr) -> FnPtr {
    for value in f.iter_curry_mut() {
        if value.is_shared() && is_handle(value) {
            *value = value.flatten_clone();
        }
    }
    f
}

fn is_handle(value: &Dynamic) -> bool {
    // A cell locked right now (a method of it is running) is left as it is.
    let Some(inner) = value.read_lock::<Dynamic>() else {
        return false;
    };
    inner.is::<ScriptPipe>()
        || inner.is::<InterfaceHandle>()
        || inner.is::<NetIfacesHandle>()
        || inner.is::<Task>()
        || inner.is::<Timer>()
        || inner.is::<StunServerHandle>()
}
