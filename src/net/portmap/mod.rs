//! Port mapping: ask the gateway to forward a port (UPnP IGD, NAT-PMP, PCP), and find out
//! which of the three it offers without asking for anything.
//!
//! - `natpmp`, `pcp`, `ssdp`, `http`, `xml`, `igd`: the wire formats, pure and tested
//!   on RFC layouts and captured gateway answers.
//! - `probe`: the probe as a state machine (what to send when, what answers mean, when
//!   to stop); `driver` runs it on a socket and does UPnP's HTTP part (`upnp`).
//! - `report`: the probe's answer.
//! - `mapping`: a live mapping (create, renew at half its lifetime, delete on close, on
//!   drop, or at [`close_all`] when the program ends); `exchange` makes its requests.
//!
//! Written here rather than taken from a crate: see the README ("Port mapping") for the
//! comparison with igd-next, natpmp, crab_nat and portmapper.

mod driver;
mod exchange;
mod gateway;
pub mod http;
pub mod igd;
mod mapping;
pub mod natpmp;
pub mod pcp;
mod probe;
mod report;
pub mod ssdp;
mod upnp;
mod xml;

pub use driver::{probe, probe_from};
pub use gateway::{Gateway, default_gateway};
pub use mapping::{DEFAULT_LIFETIME, Error, MapSpec, Mapping, close_all, open_count};
pub use probe::{Probe, ProbeOptions, Transmit, UpnpFound};
pub use report::{Outcome, PortmapReport, Protocol};
