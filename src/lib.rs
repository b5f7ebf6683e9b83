//! p2pd: the basics of P2PD (a Python async P2P networking library) in Rust.
//!
//! # Layout
//! - [`net`]: the networking core (tokio, no Rhai): IP ranges, routes, interfaces,
//!   STUN, NAT classification, addresses and pipes. Usable on its own from Rust.
//! - [`script`]: binds `net` to the Rhai engine through a cancellable async bridge.
//! - [`repl`]: the line-editor front end (history, completion, colour, help).
//! - [`text`]: how every layer echoes a user's value in a message (quoted, cut short).
//! - [`heap`]: the global allocator, counted, so scripts can be held to a memory limit.
//!
//! Dependencies only point down: `main -> repl -> script -> net`. `net` never names
//! Rhai, `script` never touches rustyline, `repl` never opens a socket.

#[cfg(test)]
mod fuzz;
pub mod heap;
pub mod net;
pub mod repl;
pub mod script;
pub mod text;

#[global_allocator]
static ALLOCATOR: heap::CountingAlloc = heap::CountingAlloc;
