//! A simulated network for the prober's tests: a client behind a NAT (or firewall, or
//! nothing), STUN servers of every kind (the project's own RFC 5780 responder, plain ones,
//! liars, dead and slow ones), one-way delays and random loss, all in virtual time. A run
//! takes microseconds and is reproducible from its seed, so the timing and loss targets
//! are checked over thousands of runs; the namespace lab then checks the same on real
//! kernel NATs. `P2PD_SIM_TRACE=1` prints every step (time, next wake, pending tests) and
//! the final observations, for when a run surprises.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::behaviour::{FilteringBehaviour as F, MappingBehaviour as M};
use super::classify::classify;
use super::prober::{Prober, ProberOptions, SocketId, Target};
use super::report::NatReport;
use crate::net::stun::{ChangeRequest, Packet, Repr, ServerConfig, Transport, respond};

/// How the NAT picks external ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alloc {
    Preserve,
    /// A fixed scramble of the mapping key (the lab's jhash maps).
    Hash,
    /// One counter for every new mapping.
    Sequential,
    /// A scrambled counter.
    Random,
}

/// What sits between the client and the servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gateway {
    /// Translates addresses (false: a router or firewall only).
    pub nat: bool,
    pub mapping: M,
    /// `None`: nothing filtered at all (an open path).
    pub filter: Option<F>,
    pub alloc: Alloc,
    pub hairpin: bool,
    /// Drops every inbound packet (blocked).
    pub drop_all: bool,
}

impl Gateway {
    pub const fn nat(mapping: M, filter: F, alloc: Alloc, hairpin: bool) -> Gateway {
        Gateway {
            nat: true,
            mapping,
            filter: Some(filter),
            alloc,
            hairpin,
            drop_all: false,
        }
    }

    pub const fn open() -> Gateway {
        Gateway {
            nat: false,
            mapping: M::EndpointIndependent,
            filter: None,
            alloc: Alloc::Preserve,
            hairpin: false,
            drop_all: false,
        }
    }

    pub const fn firewall(filter: F) -> Gateway {
        Gateway {
            filter: Some(filter),
            ..Gateway::open()
        }
    }
}

/// How a simulated server behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behaviour {
    /// The project's own responder: RFC 5780 with an alternate, plain (420 to change
    /// requests) without.
    Responder(Option<SocketAddr>),
    /// RFC 3489 only (stund): the responder's answers in classic attributes
    /// (MAPPED-ADDRESS, SOURCE-ADDRESS, CHANGED-ADDRESS).
    Classic(SocketAddr),
    /// Plain, ignoring CHANGE-REQUEST (answers from the address asked, like Google's).
    IgnoresChange,
    /// Claims `alt` as OTHER-ADDRESS (and as RESPONSE-ORIGIN) but answers everything
    /// from the address asked; `alt` itself answers the same way if `alt_answers`.
    Liar {
        alt: SocketAddr,
        alt_answers: bool,
    },
    /// Answers from `from` instead of the address asked.
    Strays {
        from: SocketAddr,
    },
    /// Reports this mapped address instead of the real one.
    BadMapped(SocketAddr),
    /// Claims OTHER-ADDRESS `alt` (which answers bindings) but drops change requests.
    DropsChange {
        alt: SocketAddr,
    },
    Dead,
}

#[derive(Debug, Clone)]
pub struct SimServer {
    pub name: String,
    pub primary: SocketAddr,
    pub behaviour: Behaviour,
    /// Extra delay before each reply.
    pub delay: Duration,
}

impl SimServer {
    pub fn new(name: &str, primary: &str, behaviour: Behaviour) -> SimServer {
        SimServer {
            name: name.into(),
            primary: primary.parse().expect("server address"),
            behaviour,
            delay: Duration::ZERO,
        }
    }

    /// The addresses it listens on.
    fn serves(&self, addr: SocketAddr) -> bool {
        match &self.behaviour {
            Behaviour::Responder(alt) => ServerConfig::new(self.primary, *alt)
                .local_addrs()
                .contains(&addr),
            Behaviour::Classic(alt) => ServerConfig::new(self.primary, Some(*alt))
                .local_addrs()
                .contains(&addr),
            Behaviour::Liar {
                alt,
                alt_answers: true,
            }
            | Behaviour::DropsChange { alt } => addr == self.primary || addr == *alt,
            _ => addr == self.primary,
        }
    }

    /// Replies (from, to, bytes) to a request from `from` arriving at `local`.
    fn answer(
        &self,
        bytes: &[u8],
        from: SocketAddr,
        local: SocketAddr,
    ) -> Vec<(SocketAddr, SocketAddr, Vec<u8>)> {
        let request = Packet::new_checked(bytes).and_then(|p| Repr::parse(&p));
        let plain_reply =
            |mapped: SocketAddr, other: Option<SocketAddr>, origin: Option<SocketAddr>| {
                let Ok(req) = &request else { return None };
                let mut r = Repr::binding_success(req.transaction_id);
                r.xor_mapped_address = Some(mapped);
                r.other_address = other;
                r.response_origin = origin;
                r.to_bytes().ok()
            };
        let change = request
            .as_ref()
            .ok()
            .and_then(|r| r.change_request)
            .unwrap_or(ChangeRequest::NONE);
        let out = match &self.behaviour {
            Behaviour::Dead => None,
            Behaviour::Responder(alt) => {
                let config = ServerConfig::new(self.primary, *alt);
                respond(bytes, from, local, &config, Transport::Udp)
                    .map(|r| (r.from, r.to, r.bytes))
            }
            Behaviour::Classic(alt) => {
                let config = ServerConfig::new(self.primary, Some(*alt));
                respond(bytes, from, local, &config, Transport::Udp).and_then(|r| {
                    let mut reply = Packet::new_checked(&r.bytes[..])
                        .and_then(|p| Repr::parse(&p))
                        .ok()?;
                    reply.mapped_address = reply.xor_mapped_address.take();
                    reply.changed_address = reply.other_address.take();
                    reply.source_address = reply.response_origin.take();
                    reply.fingerprint = false;
                    Some((r.from, r.to, reply.to_bytes().ok()?))
                })
            }
            Behaviour::IgnoresChange => plain_reply(from, None, None).map(|b| (local, from, b)),
            Behaviour::Liar { alt, .. } => {
                plain_reply(from, Some(*alt), Some(*alt)).map(|b| (local, from, b))
            }
            Behaviour::Strays { from: other } => {
                plain_reply(from, None, None).map(|b| (*other, from, b))
            }
            Behaviour::BadMapped(m) => plain_reply(*m, None, None).map(|b| (local, from, b)),
            Behaviour::DropsChange { alt } => {
                if change.is_none() {
                    plain_reply(from, Some(*alt), Some(local)).map(|b| (local, from, b))
                } else {
                    None
                }
            }
        };
        out.into_iter().collect()
    }
}

/// The path between client and servers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Path {
    pub rtt: Duration,
    /// Chance each packet is dropped, independently, in each direction.
    pub loss: f64,
}

/// One simulated network and client address.
#[derive(Debug, Clone)]
pub struct Net {
    pub gateway: Gateway,
    pub servers: Vec<SimServer>,
    pub path: Path,
    pub local_ip: IpAddr,
    pub public_ip: IpAddr,
}

/// A packet in flight, delivered at a time.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Flight {
    at: Duration,
    seq: u64,
    src: SocketAddr,
    dst: SocketAddr,
    bytes: Vec<u8>,
    /// Arriving from the LAN side at the gateway (hairpin) rather than from outside.
    hairpin: bool,
}

struct NatState {
    /// (internal endpoint, destination key, external port).
    mappings: Vec<(SocketAddr, Option<SocketAddr>, u16)>,
    /// (external endpoint, destination) pairs that saw outbound traffic.
    sent: Vec<(SocketAddr, SocketAddr)>,
    counter: u32,
}

fn scramble(x: u32) -> u32 {
    let x = x.wrapping_mul(0x9E37_79B1) ^ 0x5bd1_e995;
    x ^ (x >> 15)
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn chance(&mut self, p: f64) -> bool {
        // 53 random bits as a fraction in [0, 1).
        let r = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        r < p
    }
}

impl Net {
    /// Runs one probe from `local_ip` to every server and returns the report.
    pub fn run(&self, opts: ProberOptions, seed: u64) -> NatReport {
        let t0 = Instant::now();
        let targets: Vec<Target> = self
            .servers
            .iter()
            .map(|s| Target {
                name: s.name.clone(),
                addr: s.primary,
                claim: super::prober::Claim::Unknown,
            })
            .collect();
        let mut prober = Prober::new(t0, self.local_ip, &targets, ProberOptions { seed, ..opts });
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let mut nat = NatState {
            mappings: Vec::new(),
            sent: Vec::new(),
            counter: 0,
        };
        let mut sockets: Vec<(SocketId, SocketAddr)> = Vec::new();
        let mut next_port: u16 = 40000;
        let mut queue: BinaryHeap<Reverse<Flight>> = BinaryHeap::new();
        let mut seq = 0u64;
        let mut now = Duration::ZERO;
        let half = self.path.rtt / 2;
        let lan = Duration::from_micros(100);
        for _ in 0..200_000 {
            while let Some(b) = prober.poll_bind() {
                let port = if b.addr.port() == 0 {
                    next_port += 1;
                    next_port
                } else {
                    b.addr.port()
                };
                let local = SocketAddr::new(self.local_ip, port);
                let free = !sockets.iter().any(|(_, a)| *a == local);
                if free {
                    sockets.push((b.socket, local));
                }
                prober.handle_bound(t0 + now, b.socket, free.then_some(local));
            }
            while let Some(t) = prober.poll_transmit(t0 + now) {
                let Some((_, src)) = sockets.iter().find(|(id, _)| *id == t.socket) else {
                    continue;
                };
                seq += 1;
                let to_self = self.gateway.nat && t.destination.ip() == self.public_ip;
                if to_self {
                    // Hairpin: through the gateway and back into the LAN.
                    if !self.gateway.hairpin {
                        continue;
                    }
                    let ext = self.outbound(&mut nat, *src, t.destination);
                    queue.push(Reverse(Flight {
                        at: now + lan,
                        seq,
                        src: ext,
                        dst: t.destination,
                        bytes: t.contents,
                        hairpin: true,
                    }));
                    continue;
                }
                let ext = self.outbound(&mut nat, *src, t.destination);
                if rng.chance(self.path.loss) {
                    continue;
                }
                queue.push(Reverse(Flight {
                    at: now + half,
                    seq,
                    src: ext,
                    dst: t.destination,
                    bytes: t.contents,
                    hairpin: false,
                }));
            }
            if prober.is_done() {
                break;
            }
            let wake = prober
                .poll_timeout(t0 + now)
                .map(|w| w.saturating_duration_since(t0));
            let next_packet = queue.peek().map(|Reverse(f)| f.at);
            let next = match (wake, next_packet) {
                (Some(w), Some(p)) => w.min(p),
                (w, p) => match w.or(p) {
                    Some(t) => t,
                    None => break,
                },
            };
            if std::env::var("P2PD_SIM_TRACE").is_ok() {
                println!(
                    "t={now:?} wake={wake:?} packet={next_packet:?} pending={:?}",
                    prober.pending()
                );
            }
            now = now.max(next);
            while queue.peek().is_some_and(|Reverse(f)| f.at <= now) {
                let Some(Reverse(f)) = queue.pop() else { break };
                let inbound = f.dst.ip() == self.public_ip || f.dst.ip() == self.local_ip;
                if inbound {
                    let Some(internal) = self.inbound(&nat, f.src, f.dst, f.hairpin) else {
                        continue;
                    };
                    if let Some((id, _)) = sockets.iter().find(|(_, a)| *a == internal) {
                        prober.handle_datagram(t0 + now, *id, f.src, &f.bytes);
                    }
                    continue;
                }
                let Some(server) = self.servers.iter().find(|s| s.serves(f.dst)) else {
                    continue;
                };
                for (from, to, bytes) in server.answer(&f.bytes, f.src, f.dst) {
                    if rng.chance(self.path.loss) {
                        continue;
                    }
                    seq += 1;
                    queue.push(Reverse(Flight {
                        at: now + half + server.delay,
                        seq,
                        src: from,
                        dst: to,
                        bytes,
                        hairpin: false,
                    }));
                }
            }
            prober.handle_timeout(t0 + now);
        }
        if std::env::var("P2PD_SIM_TRACE").is_ok() {
            println!("{:#?}", prober.observations(t0 + now).servers);
        }
        let mut report = classify(&prober.observations(t0 + now));
        report.elapsed = now;
        report
    }

    /// The source a packet from `local` to `dst` leaves the gateway with; records it for
    /// filtering.
    fn outbound(&self, nat: &mut NatState, local: SocketAddr, dst: SocketAddr) -> SocketAddr {
        let external = if self.gateway.nat {
            let key = match self.gateway.mapping {
                M::EndpointIndependent => None,
                M::AddressDependent => Some(SocketAddr::new(dst.ip(), 0)),
                M::AddressAndPortDependent => Some(dst),
            };
            let port = match nat
                .mappings
                .iter()
                .find(|(l, k, _)| *l == local && *k == key)
            {
                Some((_, _, port)) => *port,
                None => {
                    nat.counter += 1;
                    let key_bits = key.map_or(0, |k| match k.ip() {
                        IpAddr::V4(ip) => u32::from(ip) ^ u32::from(k.port()),
                        IpAddr::V6(ip) => u32::from(ip.segments()[7]) ^ u32::from(k.port()),
                    });
                    let offset = match self.gateway.alloc {
                        Alloc::Preserve => 0,
                        Alloc::Hash => {
                            scramble(u32::from(local.port()) ^ scramble(key_bits)) % 16384
                        }
                        Alloc::Sequential => nat.counter,
                        Alloc::Random => scramble(nat.counter) % 40000,
                    };
                    let port = match self.gateway.alloc {
                        Alloc::Preserve => local.port(),
                        _ => u16::try_from(20000 + offset).unwrap_or(u16::MAX),
                    };
                    nat.mappings.push((local, key, port));
                    port
                }
            };
            SocketAddr::new(self.public_ip, port)
        } else {
            local
        };
        nat.sent.push((external, dst));
        external
    }

    /// The internal endpoint a packet from `src` to `dst` reaches, if the gateway lets it.
    fn inbound(
        &self,
        nat: &NatState,
        src: SocketAddr,
        dst: SocketAddr,
        hairpin: bool,
    ) -> Option<SocketAddr> {
        let g = self.gateway;
        if g.drop_all {
            return None;
        }
        let internal = if g.nat {
            nat.mappings
                .iter()
                .find(|(_, _, port)| *port == dst.port())
                .map(|(l, _, _)| *l)?
        } else {
            dst
        };
        if hairpin {
            return Some(internal);
        }
        let sent_to =
            |pred: &dyn Fn(&SocketAddr) -> bool| nat.sent.iter().any(|(e, d)| *e == dst && pred(d));
        let admitted = match g.filter {
            None => true,
            Some(F::EndpointIndependent) => sent_to(&|_| true),
            Some(F::AddressDependent) => sent_to(&|d| d.ip() == src.ip()),
            Some(F::AddressAndPortDependent) => sent_to(&|d| *d == src),
        };
        admitted.then_some(internal)
    }
}

/// The lab's NAT variants (tests/natlab/lab.sh), IPv4.
pub fn lab_variants() -> Vec<(&'static str, Gateway)> {
    use Alloc::*;
    vec![
        ("none", Gateway::open()),
        ("firewall", Gateway::firewall(F::AddressAndPortDependent)),
        (
            "full-cone",
            Gateway::nat(M::EndpointIndependent, F::EndpointIndependent, Hash, true),
        ),
        (
            "restricted",
            Gateway::nat(M::EndpointIndependent, F::AddressDependent, Hash, true),
        ),
        (
            "port-restricted",
            Gateway::nat(
                M::EndpointIndependent,
                F::AddressAndPortDependent,
                Hash,
                true,
            ),
        ),
        (
            "symmetric-random",
            Gateway::nat(
                M::AddressAndPortDependent,
                F::AddressAndPortDependent,
                Random,
                true,
            ),
        ),
        (
            "symmetric-sequential",
            Gateway::nat(
                M::AddressAndPortDependent,
                F::AddressAndPortDependent,
                Sequential,
                true,
            ),
        ),
        (
            "addr-dependent",
            Gateway::nat(M::AddressDependent, F::AddressDependent, Hash, true),
        ),
        (
            "masquerade",
            Gateway::nat(
                M::EndpointIndependent,
                F::AddressAndPortDependent,
                Preserve,
                false,
            ),
        ),
    ]
}
