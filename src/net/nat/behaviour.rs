//! The RFC 4787 view of a NAT, as RFC 5780 measures it: mapping behaviour (§4.1),
//! port allocation (§4.2.1) and filtering behaviour (§5). P2PD's own types are in
//! `types.rs`; [`Allocation`] is the coarse view of P2PD's [`Delta`].

use std::fmt;

use super::types::Delta;

/// RFC 4787 §4.1 mapping behaviour: what decides whether a new flow reuses a mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MappingBehaviour {
    /// Same internal ip:port gets the same mapping for every destination (REQ-1).
    EndpointIndependent,
    /// A new mapping per destination IP.
    AddressDependent,
    /// A new mapping per destination ip:port.
    AddressAndPortDependent,
}

/// RFC 4787 §5 filtering behaviour: who may send in through an existing mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FilteringBehaviour {
    /// Anyone.
    EndpointIndependent,
    /// Any port of an IP the client has sent to.
    AddressDependent,
    /// Only the exact ip:port the client has sent to.
    AddressAndPortDependent,
}

/// Text shared by both RFC 4787 behaviour enums, as RFC 5780 §4.3/§4.4 words them.
const BEHAVIOUR_TEXT: [&str; 3] = [
    "endpoint-independent",
    "address-dependent",
    "address-and-port-dependent",
];

impl fmt::Display for MappingBehaviour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(BEHAVIOUR_TEXT[*self as usize])
    }
}

impl fmt::Display for FilteringBehaviour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(BEHAVIOUR_TEXT[*self as usize])
    }
}

/// RFC 4787 §4.2.1 port allocation, the coarse view of [`Delta`]: can the next external
/// port be guessed, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Allocation {
    /// External port == internal port (port preservation).
    Preserving,
    /// The next port follows from earlier ones (P2PD's preserving, independent and
    /// dependent deltas: a fixed offset or step).
    Sequential,
    /// No usable pattern.
    Random,
}

impl Allocation {
    /// The allocation a delta implies; `None` when nothing was measured.
    pub fn from_delta(delta: Delta) -> Option<Allocation> {
        match delta {
            Delta::NotApplicable => None,
            Delta::Equal => Some(Allocation::Preserving),
            Delta::Preserving | Delta::Independent(_) | Delta::Dependent(_) => {
                Some(Allocation::Sequential)
            }
            Delta::Random => Some(Allocation::Random),
        }
    }
}

impl fmt::Display for Allocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Allocation::Preserving => "preserving",
            Allocation::Sequential => "sequential",
            Allocation::Random => "random",
        })
    }
}
