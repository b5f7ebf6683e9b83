//! What the NAT probes saw, recorded without judgement: the input of `classify`.
//!
//! The probe driver (`probe.rs`) fills an [`Observations`] and hands it to the pure
//! `classify`; nothing here touches a socket or a clock, so every NAT can be described
//! as data in a unit test. Test names follow RFC 5780 §4.4 (the filtering tests I, II,
//! III, all sent to the server's primary address) and §4.3 (the mapping tests to the
//! alternate IP, and the alternate IP and port). A probe that was never sent is `None`;
//! one that was sent and heard nothing in its whole silence window has `reply: None`.

use std::net::SocketAddr;
use std::time::Duration;

/// Which request a probe sent and where (RFC 5780 §4.3/§4.4, RFC 3489 §10.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProbeKind {
    /// Test I: plain binding request to the primary address.
    Binding,
    /// Test II: CHANGE-REQUEST change-IP + change-port, sent to the primary address;
    /// the reply must come from the alternate IP and port.
    ChangeIpPort,
    /// Test III: CHANGE-REQUEST change-port, sent to the primary address; the reply must
    /// come from the primary IP and the alternate port.
    ChangePort,
    /// Mapping test II: plain binding to the alternate IP, primary port.
    AltIp,
    /// Mapping test III: plain binding to the alternate IP and alternate port.
    AltIpPort,
    /// Test I repeated from the mapping socket, when the mapping tests run on a socket
    /// of their own (see [`MappingSocket`]).
    MappingBinding,
}

impl ProbeKind {
    /// Short name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            ProbeKind::Binding => "binding",
            ProbeKind::ChangeIpPort => "change ip+port",
            ProbeKind::ChangePort => "change port",
            ProbeKind::AltIp => "alt ip",
            ProbeKind::AltIpPort => "alt ip+port",
            ProbeKind::MappingBinding => "mapping binding",
        }
    }
}

/// A STUN reply as the driver received it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply {
    /// (XOR-)MAPPED-ADDRESS: the client's address as the server saw it.
    pub mapped: SocketAddr,
    /// Where the reply came from (the UDP source, or RESPONSE-ORIGIN). Classification
    /// checks it: a server that ignored CHANGE-REQUEST proves nothing about filtering.
    pub origin: SocketAddr,
    /// Time from the first transmission to the reply.
    pub rtt: Duration,
}

/// One request and what came back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    /// Where the request was sent.
    pub server: SocketAddr,
    /// `None`: silence for the whole window, retransmissions included.
    pub reply: Option<Reply>,
}

impl Probe {
    /// A probe that heard nothing.
    pub fn silent(server: SocketAddr) -> Probe {
        Probe {
            server,
            reply: None,
        }
    }

    /// A probe that got `mapped` back from `origin` after `rtt`.
    pub fn answered(
        server: SocketAddr,
        mapped: SocketAddr,
        origin: SocketAddr,
        rtt: Duration,
    ) -> Probe {
        Probe {
            server,
            reply: Some(Reply {
                mapped,
                origin,
                rtt,
            }),
        }
    }
}

/// The hairpin probe: a second local socket sends to the first socket's external mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HairpinProbe {
    /// The external address that was sent to.
    pub target: SocketAddr,
    /// Source address the first socket saw, `None` if nothing arrived. RFC 4787 REQ-9
    /// wants it to be the sender's external mapping.
    pub seen_from: Option<SocketAddr>,
}

/// One delta lookup: a local port and the external port the NAT gave it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortSample {
    pub local: u16,
    pub mapped: u16,
}

/// The two rounds of P2PD's delta test, each in the order the lookups were made.
/// A `None` slot is a lookup that failed; it stays in place because neighbours are
/// compared by slot, as P2PD's concurrent test does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeltaSamples {
    /// Round 1: lookups from random local ports.
    pub random: Vec<Option<PortSample>>,
    /// Round 2: lookups from consecutive local ports start, start+1, ...
    pub consecutive: Vec<Option<PortSample>>,
}

impl DeltaSamples {
    /// Both rounds from (local, mapped) pairs with no failures.
    pub fn from_pairs(random: &[(u16, u16)], consecutive: &[(u16, u16)]) -> DeltaSamples {
        let slots = |pairs: &[(u16, u16)]| {
            pairs
                .iter()
                .map(|&(local, mapped)| Some(PortSample { local, mapped }))
                .collect()
        };
        DeltaSamples {
            random: slots(random),
            consecutive: slots(consecutive),
        }
    }

    /// True when no lookup in either round succeeded.
    pub fn is_empty(&self) -> bool {
        self.random
            .iter()
            .chain(&self.consecutive)
            .all(Option::is_none)
    }
}

/// The second socket the mapping tests may run from. Filtering state is kept per
/// mapping, so this socket's traffic to the alternate IP cannot open the filtering
/// socket's filter, and both test groups can run at once. Its mapping tests are then
/// compared with its own binding to the primary address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MappingSocket {
    /// The concrete local address of the mapping socket.
    pub local: SocketAddr,
    /// Its binding request to the primary address.
    pub binding: Option<Probe>,
}

/// Everything one NAT run saw, for one local socket and one RFC 5780/3489 server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observations {
    /// The concrete local address of the probing socket (not a wildcard): the mapped
    /// address is compared with it to tell "no NAT" from NAT.
    pub local: SocketAddr,
    pub binding: Option<Probe>,
    pub change_ip_port: Option<Probe>,
    pub change_port: Option<Probe>,
    pub alt_ip: Option<Probe>,
    pub alt_ip_port: Option<Probe>,
    /// `Some` when `alt_ip`/`alt_ip_port` were sent from a second socket; `None` when
    /// they were sent from `local` after the filtering tests' windows had closed.
    pub mapping_socket: Option<MappingSocket>,
    pub hairpin: Option<HairpinProbe>,
    pub delta: DeltaSamples,
    /// Wall time of the whole run, measured by the driver.
    pub elapsed: Duration,
}

impl Observations {
    /// Nothing observed yet from `local`.
    pub fn new(local: SocketAddr) -> Observations {
        Observations {
            local,
            binding: None,
            change_ip_port: None,
            change_port: None,
            alt_ip: None,
            alt_ip_port: None,
            mapping_socket: None,
            hairpin: None,
            delta: DeltaSamples::default(),
            elapsed: Duration::ZERO,
        }
    }

    /// The STUN probes that were sent, in RFC 5780 order.
    pub fn probes(&self) -> impl Iterator<Item = (ProbeKind, &Probe)> {
        let mapping_binding = self
            .mapping_socket
            .as_ref()
            .and_then(|m| m.binding.as_ref());
        [
            (ProbeKind::Binding, self.binding.as_ref()),
            (ProbeKind::ChangeIpPort, self.change_ip_port.as_ref()),
            (ProbeKind::ChangePort, self.change_port.as_ref()),
            (ProbeKind::MappingBinding, mapping_binding),
            (ProbeKind::AltIp, self.alt_ip.as_ref()),
            (ProbeKind::AltIpPort, self.alt_ip_port.as_ref()),
        ]
        .into_iter()
        .filter_map(|(kind, probe)| probe.map(|p| (kind, p)))
    }
}
