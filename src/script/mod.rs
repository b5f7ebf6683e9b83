//! Rhai bindings: the `net` core made scriptable, plus the shell's own functions.
//!
//! `bridge` lets a synchronous Rhai call await a tokio future (cancellably); `sched`
//! runs tasks and callbacks as fibers on the script thread while calls wait; `engine`
//! builds the engine; `session` keeps state between inputs. Every other file binds one area and registers through
//! [`registry::Registrar`], which will not take a function without its help.

pub mod address;
pub mod args;
pub mod bridge;
pub mod bytes;
pub mod cancel;
pub mod capture;
pub mod engine;
pub mod error;
pub mod gather;
pub mod interface;
pub mod lexer;
pub mod limits;
pub mod nat;
pub mod netcheck;
pub mod pipe;
pub mod portmap;
mod portmap_pipe;
pub mod python;
pub mod registry;
pub mod route;
pub mod sched;
pub mod session;
pub mod shell;
pub mod sink;
pub mod sized;
pub mod status;
pub mod stun;
pub mod stun_probe;
pub mod task;
pub mod timers;
pub mod world;

pub use bytes::Bytes;
pub use cancel::Cancel;
pub use error::ScriptError;
pub use session::{Session, SessionOptions};
pub use sink::{MemorySink, Sink, StdSink};
