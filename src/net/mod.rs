//! The networking core: everything that touches addresses and sockets, with no
//! scripting types. Each submodule holds one concept.

pub mod address;
pub mod config;
pub mod hosts;
mod icmp;
pub mod interface;
pub mod ip_range;
pub mod nat;
pub mod netcheck;
pub mod offline;
pub mod pipe;
pub mod portmap;
pub mod progress;
pub mod route;
pub mod stun;
