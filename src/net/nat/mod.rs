//! NAT classification: P2PD's NAT and delta types and RFC 4787 mapping/filtering
//! behaviour, from one set of STUN probes (RFC 5780 §4.3/§4.4, RFC 3489 §10.1) against any
//! mix of servers: RFC 5780, RFC 3489 and plain RFC 5389 ones, some dead, slow or lying.
//!
//! - `types`: P2PD's NAT and delta enums (numbers and texts) and its nat dict.
//! - `behaviour`: the RFC 4787 mapping, filtering and allocation enums.
//! - `observations`: what each probe saw, recorded without judgement, and the rules for
//!   which replies count (origins, usable mapped addresses, plausible alternates).
//! - `copies`: when copies of a request go out and when silence counts, from the loss seen.
//! - `prober`: the sans-IO state machine that runs the probes; `driver`: its tokio shell
//!   and the `load_nat` entry points.
//! - `mapping` / `classify` / `delta`: pure functions from observations to the answer.
//! - `report` / `server_kind`: the answer, as a netcheck-style table, P2PD's dict or JSON,
//!   with what each server turned out to be.
//! - `lifetime` (opt-in mapping lifetime) with `window` (its listening window).
//!
//! The NAT lab that exercises all of this on real nftables NATs is tests/natlab/lab.sh;
//! `sim.rs` (tests only) is a simulated network with NATs, servers, delay and loss.

mod behaviour;
mod classify;
mod copies;
mod delta;
mod driver;
mod lifetime;
mod mapping;
mod observations;
mod prober;
mod report;
mod server_kind;
#[cfg(test)]
mod sim;
mod types;
mod window;

pub use behaviour::{Allocation, FilteringBehaviour, MappingBehaviour};
pub use classify::classify;
pub use copies::{LossCount, SilenceRule};
pub use delta::{P2PD_DELTA_TESTS, P2PD_DELTA_THRESHOLD, classify_delta, classify_delta_with};
pub use driver::{NamedServer, NatOptions, load_nat, load_nat_named, resolve_named};
pub use lifetime::{MappingLifetime, lifetime_schedule, mapping_lifetime};
pub use observations::{
    DeltaSamples, Expect, HairpinProbe, Observations, Outcome, PortSample, ProbeKind, Reply,
    ServerObs, plausible_alternate, usable_mapped,
};
pub use prober::{BindRequest, Claim, Prober, ProberOptions, SocketId, Target, Transmit};
pub use report::{Assumed, NatReport, ProbeRtt};
pub use server_kind::{ServerKind, ServerReport};
pub use types::{Delta, Error, NatInfo, NatType, PortRange};
pub use window::{WINDOW_TRANSMITS, WindowRule, window_sends, window_timing};
