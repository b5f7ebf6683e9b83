//! NAT classification: P2PD's NAT and delta types and RFC 4787 mapping/filtering
//! behaviour, from one set of STUN probes (RFC 5780 §4.3/§4.4, RFC 3489 §10.1).
//!
//! - `types`: P2PD's NAT and delta enums (numbers and texts) and its nat dict.
//! - `behaviour`: the RFC 4787 mapping, filtering and allocation enums.
//! - `observations`: what each probe saw, recorded by the driver without judgement.
//! - `classify` / `delta`: pure functions from observations to the answer.
//! - `report`: the answer, as a netcheck-style table, P2PD's dict or full JSON.
//! - `probe`: the tokio driver `load_nat` (ordering, isolation), with `window` (silence
//!   windows), `delta_probe` (delta lookups), `select` (which server decides) and
//!   `lifetime` (opt-in mapping lifetime).
//!
//! The NAT lab that exercises all of this on real nftables NATs is tests/natlab/lab.sh.

mod behaviour;
mod classify;
mod delta;
mod delta_probe;
mod lifetime;
mod observations;
mod probe;
mod report;
mod select;
mod types;
mod window;

pub use behaviour::{Allocation, FilteringBehaviour, MappingBehaviour};
pub use classify::classify;
pub use delta::{P2PD_DELTA_TESTS, P2PD_DELTA_THRESHOLD, classify_delta, classify_delta_with};
pub use lifetime::{MappingLifetime, lifetime_schedule, mapping_lifetime};
pub use observations::{
    DeltaSamples, HairpinProbe, MappingSocket, Observations, PortSample, Probe, ProbeKind, Reply,
};
pub use probe::{NatOptions, load_nat};
pub use report::{NatReport, ProbeRtt};
pub use types::{Delta, Error, NatInfo, NatType, PortRange};
pub use window::{WINDOW_TRANSMITS, WindowRule, window_sends, window_timing};
