//! The NAT probe as a sans-IO state machine: it decides what is sent, from which socket,
//! when silence counts and when the run is over; the tokio driver (`driver.rs`) only binds
//! sockets, moves datagrams and keeps time. Fed a simulated network (`sim.rs`), a whole
//! run takes microseconds, so its timing and loss rules are tested on thousands of runs.
//!
//! # Sockets and tests
//! At the start, per server: its filtering socket F_i sends test I (binding) and tests II
//! and III (change requests) to the primary address, all at once: F_i sends nowhere else,
//! so neither change reply can be let in by traffic of F_i's own, and the change replies
//! need no RTT to be known first. One mapping socket M sends a binding to every server's
//! primary. When a server's first reply names a plausible alternate, M sends bindings to
//! (alt IP, port), (alt IP, alt port) and (IP, alt port), then change requests to the
//! primary (their replies pass M's filter only if the server really answers from its
//! alternate). With the first answer of the run, the delta lookups start (P2PD's two
//! rounds, one socket each, against that server). With M's first mapping: behind a NAT a
//! second socket sends a nonce to M's external address (hairpin, and a second one to a
//! filtering socket's); without one, RESPONSE-PORT requests check whether anything
//! unsolicited reaches a socket that never sent. A host whose own address is public sends
//! those at once rather than after the first mapping: it is most likely not behind a NAT.
//!
//! Everything is therefore answered one RTT after the first reply at the latest: a
//! complete answer takes two RTTs plus the silence margin when nothing is lost (a
//! hairpin's silence waits less: see `copies::Wait`).
//!
//! # Copies and silence
//! Each copy of a request has its own transaction id (`copies.rs`): a test is answered by
//! any of its copies, silence is judged against the loss actually seen, and RTTs are exact.
//! A test whose server has answered other tests concludes "silent" by [`SilenceRule`];
//! before its server has answered anything, it waits (that server may just be slow).
//!
//! # When the run ends
//! As soon as every field the report needs is settled or can no longer be ([`Prober::
//! is_done`]): a change reply heard, or silence concluded on a server believed to change
//! address; the mapping verdict in with no test pending; delta, hairpin and open-path
//! tests final. Servers that never answered are given up at the first answer plus
//! `max(8 RTT, 500 ms)`, and do not hold the run up at all once nothing depends on them;
//! dead, slow or lying servers cost nothing when others settle the answer. Everything is
//! bounded by the run's timeout.
//!
//! # Dropped flows
//! A NAT may drop a new flow outright (the lab's hash NATs do on a port clash). When F_i's
//! test I stays silent while its server answers M (or M's while F's are answered), the
//! socket is replaced by a fresh one, with a new local port and so a new mapping, twice at
//! most.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::classify::{self, Capability};
use super::copies::{LossCount, Pace, SilenceRule, Wait};
use super::mapping::Evidence;
use super::observations::{
    DeltaSamples, Expect, HairpinProbe, Observations, Outcome, PortSample, ProbeKind, Reply,
    ServerObs, canonical, plausible_alternate, usable_mapped,
};
use crate::net::ip_range::nat_likely;
use crate::net::stun::{ChangeRequest, Class, Packet, Repr, RequestOptions, TransactionId};

/// What a server's source says it can do: a hint for how long to wait for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Claim {
    /// Unknown (a server the user named).
    #[default]
    Unknown,
    /// Listed as plain: not waited for when only filtering is missing.
    Plain,
    /// Listed as change-capable (RFC 5780 or RFC 3489).
    Change,
}

/// One server to probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub name: String,
    pub addr: SocketAddr,
    pub claim: Claim,
}

/// How a run probes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProberOptions {
    /// Bound on the whole run.
    pub timeout: Duration,
    pub rule: SilenceRule,
    /// Lookups per delta round; 0 turns the delta test off.
    pub delta_tests: usize,
    pub hairpin: bool,
    /// Seed for the delta test's local ports.
    pub seed: u64,
}

/// Attempts per socket role when a NAT drops the flow (see module docs).
const SOCKET_ATTEMPTS: u32 = 3;
/// Hairpin nonces, one per sender. Two senders aim at two different mappings (M's, and
/// the filtering socket's of the first server that answered), so that one flow a NAT
/// drops or misdirects (the lab's hash NATs do on a port clash) does not read as "no
/// hairpinning".
const NONCES: [&[u8; 16]; 2] = [b"p2pd-hairpin-000", b"p2pd-hairpin-001"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SocketId(pub usize);

/// A socket the prober wants: bind it to `addr` (port 0: any) and report with
/// [`Prober::handle_bound`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BindRequest {
    pub socket: SocketId,
    pub addr: SocketAddr,
}

/// A datagram to send from `socket`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub socket: SocketId,
    pub destination: SocketAddr,
    pub contents: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Filter(usize),
    /// The second filtering socket of a server, once its first heard a change reply.
    Confirm,
    Mapping,
    Hairpin,
    OpenPath,
    Delta,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SockState {
    Wanted,
    Binding,
    Bound(SocketAddr),
    Failed,
    Retired,
}

#[derive(Debug, Clone)]
struct Sock {
    role: Role,
    addr: SocketAddr,
    state: SockState,
    attempt: u32,
}

/// Where a test's result goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Server(usize, ProbeKind),
    Delta {
        consecutive: bool,
        index: usize,
    },
    /// The hairpin probe from sender `k` (an index into `NONCES`).
    Hairpin(usize),
}

#[derive(Debug, Clone)]
struct Copy {
    id: Option<TransactionId>,
    sent: Instant,
    answered: bool,
    /// How long its reply took, once answered.
    rtt: Option<Duration>,
}

/// A server's RTTs so far: the fastest paces copies, the slowest (jitter included) sets
/// how long silence is awaited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rtt {
    min: Duration,
    max: Duration,
}

#[derive(Debug, Clone)]
struct Test {
    slot: Slot,
    socket: SocketId,
    /// Where the reply must arrive (RESPONSE-PORT tests aim elsewhere).
    reply_socket: SocketId,
    dest: SocketAddr,
    expect: Expect,
    request: RequestOptions,
    /// The server whose RTT paces this test (`None`: the fastest server's).
    server: Option<usize>,
    started: Option<Instant>,
    copies: Vec<Copy>,
    outcome: Outcome,
    /// Whether its copies measure loss (requests every live server answers).
    measures_loss: bool,
}

#[derive(Debug, Clone)]
struct Server {
    target: Target,
    filter: SocketId,
    claimed_alternate: Option<SocketAddr>,
    software: Option<String>,
    first_answer: Option<Instant>,
    alternates_started: bool,
    open_started: bool,
    confirm_started: bool,
    cut: bool,
}

/// The state machine (see module docs).
#[derive(Debug)]
pub struct Prober {
    opts: ProberOptions,
    local_ip: IpAddr,
    started: Instant,
    deadline: Instant,
    sockets: Vec<Sock>,
    tests: Vec<Test>,
    servers: Vec<Server>,
    mapping: SocketId,
    hairpin_started: bool,
    /// The two sockets that never send, for the open-path test.
    open_path: Option<(SocketId, SocketId)>,
    /// The host's own address is public, so the open-path tests start without waiting
    /// for the first mapping (see the module docs).
    open_early: bool,
    /// The first answer of the run: when, and from which server.
    first: Option<(Instant, usize)>,
    delta_started: bool,
    rng: u64,
    done: bool,
}

impl Prober {
    /// A run from `local_ip` (a concrete address) to `targets` (same family; others are
    /// the caller's to filter out), starting at `now`.
    pub fn new(now: Instant, local_ip: IpAddr, targets: &[Target], opts: ProberOptions) -> Prober {
        let mut p = Prober {
            opts,
            local_ip,
            started: now,
            deadline: now + opts.timeout,
            sockets: Vec::new(),
            tests: Vec::new(),
            servers: Vec::new(),
            mapping: SocketId(0),
            hairpin_started: false,
            open_path: None,
            open_early: !nat_likely(local_ip),
            first: None,
            delta_started: false,
            rng: opts.seed | 1,
            done: targets.is_empty(),
        };
        p.mapping = p.add_socket(Role::Mapping, 0);
        for (i, t) in targets.iter().enumerate() {
            let filter = p.add_socket(Role::Filter(i), 0);
            p.servers.push(Server {
                target: t.clone(),
                filter,
                claimed_alternate: None,
                software: None,
                first_answer: None,
                alternates_started: false,
                open_started: false,
                confirm_started: false,
                cut: false,
            });
            p.filter_tests(i, filter);
            p.add_test(
                Slot::Server(i, ProbeKind::MappingBinding),
                p.mapping,
                t.addr,
                Expect::SameAddress,
                RequestOptions::binding(),
            );
        }
        p
    }

    fn add_socket(&mut self, role: Role, port: u16) -> SocketId {
        self.sockets.push(Sock {
            role,
            addr: SocketAddr::new(self.local_ip, port),
            state: SockState::Wanted,
            attempt: 1,
        });
        SocketId(self.sockets.len() - 1)
    }

    /// Tests I, II and III of server `i` on socket `f`.
    fn filter_tests(&mut self, i: usize, f: SocketId) {
        let dest = self.servers[i].target.addr;
        for (kind, expect, change) in [
            (ProbeKind::Binding, Expect::SameAddress, ChangeRequest::NONE),
            (
                ProbeKind::ChangeIpPort,
                Expect::OtherIpAndPort,
                ChangeRequest::BOTH,
            ),
            (
                ProbeKind::ChangePort,
                Expect::OtherPort,
                ChangeRequest::PORT,
            ),
        ] {
            self.add_test(
                Slot::Server(i, kind),
                f,
                dest,
                expect,
                RequestOptions::change(change),
            );
        }
    }

    fn add_test(
        &mut self,
        slot: Slot,
        socket: SocketId,
        dest: SocketAddr,
        expect: Expect,
        request: RequestOptions,
    ) {
        let server = match slot {
            Slot::Server(i, _) => Some(i),
            Slot::Delta { .. } => self.first.map(|(_, i)| i),
            Slot::Hairpin(_) => None,
        };
        let measures_loss = match slot {
            Slot::Server(_, kind) => matches!(
                kind,
                ProbeKind::Binding
                    | ProbeKind::MappingBinding
                    | ProbeKind::AltIp
                    | ProbeKind::AltIpPort
                    | ProbeKind::AltPort
            ),
            Slot::Delta { .. } => true,
            Slot::Hairpin(_) => false,
        };
        self.tests.push(Test {
            slot,
            socket,
            reply_socket: socket,
            dest,
            expect,
            request,
            server,
            started: None,
            copies: Vec::new(),
            outcome: Outcome::Pending,
            measures_loss,
        });
    }

    // ------------------------------------------------------------------------------------
    // Driver interface

    /// The next socket to bind, if any.
    pub fn poll_bind(&mut self) -> Option<BindRequest> {
        let (i, s) = self
            .sockets
            .iter_mut()
            .enumerate()
            .find(|(_, s)| s.state == SockState::Wanted)?;
        s.state = SockState::Binding;
        Some(BindRequest {
            socket: SocketId(i),
            addr: s.addr,
        })
    }

    /// The result of a [`BindRequest`]: the bound address, or `None` if binding failed.
    pub fn handle_bound(&mut self, now: Instant, socket: SocketId, bound: Option<SocketAddr>) {
        let Some(s) = self.sockets.get_mut(socket.0) else {
            return;
        };
        s.state = match bound {
            Some(a) => SockState::Bound(a),
            None => SockState::Failed,
        };
        for t in self.tests.iter_mut().filter(|t| t.socket == socket) {
            if bound.is_some() {
                t.started.get_or_insert(now);
            } else if t.outcome == Outcome::Pending {
                t.outcome = Outcome::NotSent;
            }
        }
        self.advance(now);
    }

    /// The next datagram to send at `now`, if one is due.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Transmit> {
        if self.done {
            return None;
        }
        let rtts = self.server_rtts();
        let loss = self.loss(now, &rtts);
        let fastest = fastest(&rtts);
        for t in self.tests.iter_mut() {
            if t.outcome != Outcome::Pending {
                continue;
            }
            let Some(started) = t.started else { continue };
            let rtt = t.server.map_or(fastest, |s| rtts[s]);
            let due = next_due(&self.opts.rule, t, rtt.map(|r| r.min), loss, started);
            if due.is_none_or(|d| d > now) {
                continue;
            }
            let contents = match t.slot {
                Slot::Hairpin(k) => {
                    t.copies.push(Copy {
                        id: None,
                        sent: now,
                        answered: false,
                        rtt: None,
                    });
                    NONCES.get(k).map_or_else(Vec::new, |n| n.to_vec())
                }
                _ => {
                    let Ok(repr) = t.request.to_repr() else {
                        t.outcome = Outcome::NotSent;
                        continue;
                    };
                    let Ok(bytes) = repr.to_bytes() else {
                        t.outcome = Outcome::NotSent;
                        continue;
                    };
                    t.copies.push(Copy {
                        id: Some(repr.transaction_id),
                        sent: now,
                        answered: false,
                        rtt: None,
                    });
                    bytes
                }
            };
            return Some(Transmit {
                socket: t.socket,
                destination: t.dest,
                contents,
            });
        }
        None
    }

    /// When `handle_timeout` is next needed (a copy due, a silence to conclude, a server
    /// to give up on, the deadline); `None` once done.
    pub fn poll_timeout(&self, now: Instant) -> Option<Instant> {
        if self.done {
            return None;
        }
        let rtts = self.server_rtts();
        let loss = self.loss(now, &rtts);
        let mut wake = self.deadline;
        for t in &self.tests {
            if t.outcome != Outcome::Pending {
                continue;
            }
            let Some(started) = t.started else { continue };
            let rtt = self.test_rtt(t, &rtts);
            if let Some(d) = next_due(&self.opts.rule, t, rtt.map(|r| r.min), loss, started) {
                wake = wake.min(d);
            }
            let sent: Vec<Instant> = t.copies.iter().map(|c| c.sent).collect();
            let at = match rtt {
                Some(rtt) => self.opts.rule.silent_at(started, &sent, t.wait(rtt), loss),
                None => None,
            };
            wake = wake.min(at.unwrap_or(started + self.opts.rule.ceiling));
        }
        if let Some(cut) = self.cut_at()
            && self
                .servers
                .iter()
                .any(|s| s.first_answer.is_none() && !s.cut)
        {
            wake = wake.min(cut);
        }
        // The loss count only grows between events, so a silence foreseen now may come
        // later, never earlier: never ask to be woken in the past.
        Some(if wake > now {
            wake
        } else {
            now + Duration::from_millis(1)
        })
    }

    /// Lets time pass.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.advance(now);
    }

    /// A datagram that arrived on `socket` from `from` at `now`. It is only recorded: call
    /// [`Prober::handle_timeout`] after a batch of datagrams (a burst of replies is then
    /// judged once, and a silence due at the same moment is not missed).
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        socket: SocketId,
        from: SocketAddr,
        bytes: &[u8],
    ) {
        // Also after the end: a late reply still says its copy was not lost.
        self.take_datagram(now, socket, from, bytes);
    }

    fn take_datagram(&mut self, now: Instant, socket: SocketId, from: SocketAddr, bytes: &[u8]) {
        if let Some(k) = NONCES.iter().position(|n| bytes == &n[..])
            && self
                .tests
                .iter()
                .any(|t| t.slot == Slot::Hairpin(k) && t.reply_socket == socket)
        {
            self.hairpin_heard(now, k, from);
            return;
        }
        let Ok(message) = Packet::new_checked(bytes).and_then(|p| Repr::parse(&p)) else {
            return;
        };
        if !matches!(message.class, Class::SuccessResponse | Class::ErrorResponse) {
            return;
        }
        let id = message.transaction_id;
        let Some((ti, ci)) = self.tests.iter().enumerate().find_map(|(ti, t)| {
            t.copies
                .iter()
                .position(|c| c.id == Some(id))
                .map(|ci| (ti, ci))
        }) else {
            return;
        };
        let local_ip = self.local_ip;
        let t = &mut self.tests[ti];
        let copy = &mut t.copies[ci];
        let rtt = now.saturating_duration_since(copy.sent);
        copy.answered = true;
        copy.rtt.get_or_insert(rtt);
        if t.outcome != Outcome::Pending {
            return;
        }
        let outcome = if message.class == Class::ErrorResponse {
            Outcome::Refused(message.error_code.as_ref().map_or(0, |e| e.code))
        } else {
            let unspecified = SocketAddr::new(IpAddr::from([0, 0, 0, 0]), 0);
            let mapped = message.mapped().unwrap_or(unspecified);
            if !usable_mapped(local_ip, mapped) {
                Outcome::Unusable(mapped)
            } else {
                let reply = Reply {
                    mapped: canonical(mapped),
                    origin: canonical(from),
                    rtt,
                };
                if socket == t.reply_socket && t.expect.accepts(t.dest, from) {
                    Outcome::Heard(reply)
                } else {
                    Outcome::Strayed(reply)
                }
            }
        };
        t.outcome = outcome;
        let slot = t.slot;
        if let (Slot::Server(i, _), Class::SuccessResponse) = (slot, message.class) {
            let s = &mut self.servers[i];
            if s.claimed_alternate.is_none() {
                s.claimed_alternate = message.alternate();
            }
            if s.software.is_none() {
                s.software.clone_from(&message.software);
            }
            if outcome.heard().is_some() || matches!(outcome, Outcome::Strayed(_)) {
                // A reply of any origin shows the server is alive.
                s.first_answer.get_or_insert(now);
            }
        }
        if let (Slot::Server(i, _), Outcome::Heard(_)) = (slot, outcome) {
            self.first.get_or_insert((now, i));
        }
    }

    /// True once the run is over: read the result with [`Prober::observations`].
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// What the run saw (pending tests as `Pending` while it runs, `Unfinished` after).
    pub fn observations(&self, now: Instant) -> Observations {
        let mut obs = Observations::new(self.local_ip);
        obs.mapping_local = self.bound(self.mapping);
        obs.delta_tests = self.opts.delta_tests;
        obs.loss = self.loss(now, &self.server_rtts());
        obs.elapsed = now.saturating_duration_since(self.started);
        obs.servers = self
            .servers
            .iter()
            .map(|s| {
                let mut o = ServerObs::new(s.target.name.clone(), s.target.addr);
                o.filter_local = self.bound(s.filter);
                o.claimed_alternate = s.claimed_alternate;
                o.software.clone_from(&s.software);
                // Still unanswered when the others settled the answer early.
                o.cut = s.cut || (self.done && s.first_answer.is_none() && now < self.deadline);
                o
            })
            .collect();
        let finished = |o: Outcome| match o {
            Outcome::Pending if self.done => Outcome::Unfinished,
            o => o,
        };
        let n = self.opts.delta_tests;
        let mut delta = DeltaSamples {
            random: vec![None; if self.delta_started { n } else { 0 }],
            consecutive: vec![None; if self.delta_started { n } else { 0 }],
        };
        for t in &self.tests {
            let outcome = finished(t.outcome);
            match t.slot {
                Slot::Server(i, kind) => {
                    if let Some(s) = obs.servers.get_mut(i) {
                        *server_field(s, kind) = outcome;
                    }
                }
                Slot::Delta { consecutive, index } => {
                    let sample = match (outcome, self.bound(t.socket)) {
                        (Outcome::Heard(r), Some(local)) => Some(PortSample {
                            local: local.port(),
                            mapped: r.mapped.port(),
                        }),
                        _ => None,
                    };
                    let round = if consecutive {
                        &mut delta.consecutive
                    } else {
                        &mut delta.random
                    };
                    if let Some(slot) = round.get_mut(index) {
                        *slot = sample;
                    }
                }
                // Heard from either sender is heard; silent only when both were.
                Slot::Hairpin(_) => {
                    let merged = match obs.hairpin.map(|h| h.outcome) {
                        None => outcome,
                        Some(Outcome::Heard(r)) => Outcome::Heard(r),
                        Some(_) if matches!(outcome, Outcome::Heard(_)) => outcome,
                        Some(Outcome::Silent) => outcome,
                        Some(other) => other,
                    };
                    obs.hairpin = Some(HairpinProbe {
                        target: t.dest,
                        outcome: merged,
                    });
                }
            }
        }
        obs.delta = delta;
        obs
    }

    /// Test slots still pending (for traces in tests).
    #[cfg(test)]
    pub(super) fn pending(&self) -> Vec<String> {
        self.tests
            .iter()
            .filter(|t| t.outcome == Outcome::Pending)
            .map(|t| {
                format!(
                    "{:?} started {:?} copies {}",
                    t.slot,
                    t.started.map(|s| s - self.started),
                    t.copies.len()
                )
            })
            .collect()
    }

    // ------------------------------------------------------------------------------------
    // Decisions

    fn bound(&self, id: SocketId) -> Option<SocketAddr> {
        match self.sockets.get(id.0)?.state {
            SockState::Bound(a) => Some(a),
            _ => None,
        }
    }

    /// Every server's RTTs so far, over every answered copy of its tests.
    fn server_rtts(&self) -> Vec<Option<Rtt>> {
        let mut rtts: Vec<Option<Rtt>> = vec![None; self.servers.len()];
        for t in &self.tests {
            let Slot::Server(i, _) = t.slot else { continue };
            let Some(slot) = rtts.get_mut(i) else {
                continue;
            };
            for r in t.copies.iter().filter_map(|c| c.rtt) {
                *slot = Some(match *slot {
                    None => Rtt { min: r, max: r },
                    Some(x) => Rtt {
                        min: x.min.min(r),
                        max: x.max.max(r),
                    },
                });
            }
        }
        rtts
    }

    /// The RTTs that pace `t`: its server's, else the fastest server's.
    fn test_rtt(&self, t: &Test, rtts: &[Option<Rtt>]) -> Option<Rtt> {
        match t.server {
            Some(s) => rtts.get(s).copied().flatten(),
            None => fastest(rtts),
        }
    }

    /// Copies of loss-measuring tests to destinations that have answered something,
    /// whose time to come back is up (one RTT plus jitter after they left).
    fn loss(&self, now: Instant, rtts: &[Option<Rtt>]) -> LossCount {
        let answered: Vec<SocketAddr> = self
            .tests
            .iter()
            .filter(|t| t.copies.iter().any(|c| c.answered))
            .map(|t| t.dest)
            .collect();
        let mut count = LossCount::default();
        for t in self.tests.iter().filter(|t| t.measures_loss) {
            if !answered.contains(&t.dest) {
                continue;
            }
            let Some(rtt) = self.test_rtt(t, rtts) else {
                continue;
            };
            // A copy counts once it is due back, answered or not: counting answers at
            // once and losses only later would make every early estimate too kind.
            let due = rtt.max + SilenceRule::jitter(rtt.max);
            for c in t.copies.iter().filter(|c| c.sent + due <= now) {
                count.expired += 1;
                if !c.answered {
                    count.lost += 1;
                }
            }
        }
        count
    }

    /// When servers that have not answered are given up: the first answer plus
    /// `max(8 RTT, 500 ms)`.
    fn cut_at(&self) -> Option<Instant> {
        let (at, server) = self.first?;
        let rtt = self
            .server_rtts()
            .get(server)
            .copied()
            .flatten()
            .map_or(Duration::ZERO, |r| r.min);
        Some(at + (rtt * 8).max(Duration::from_millis(500)))
    }

    fn hairpin_heard(&mut self, now: Instant, sender: usize, from: SocketAddr) {
        if let Some(t) = self
            .tests
            .iter_mut()
            .find(|t| t.slot == Slot::Hairpin(sender) && t.outcome == Outcome::Pending)
        {
            let rtt = t
                .copies
                .first()
                .map_or(Duration::ZERO, |c| now.saturating_duration_since(c.sent));
            t.outcome = Outcome::Heard(Reply {
                mapped: t.dest,
                origin: canonical(from),
                rtt,
            });
        }
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64: deterministic for a seed, good enough to scatter ports.
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }

    /// Everything that follows from what is known at `now`.
    fn advance(&mut self, now: Instant) {
        if self.done {
            return;
        }
        if now >= self.deadline {
            self.done = true;
            return;
        }
        self.start_followups(now);
        self.conclude_silence(now);
        self.cut_servers(now);
        self.done = self.settled(now);
    }

    fn start_followups(&mut self, now: Instant) {
        let m_bound = self.bound(self.mapping).is_some();
        // M's tests of each server's alternate, once it has claimed a plausible one.
        for i in 0..self.servers.len() {
            let s = &self.servers[i];
            if s.alternates_started || !m_bound {
                continue;
            }
            let Some(alt) = s.claimed_alternate else {
                continue;
            };
            let p = s.target.addr;
            if plausible_alternate(p, alt).is_err() {
                self.servers[i].alternates_started = true;
                continue;
            }
            self.servers[i].alternates_started = true;
            let m = self.mapping;
            // Bindings to the alternates first, then change requests that can come back
            // through them (order on the wire matters for M's filter).
            let tests = [
                (
                    ProbeKind::AltIp,
                    SocketAddr::new(alt.ip(), p.port()),
                    Expect::SameAddress,
                    ChangeRequest::NONE,
                ),
                (
                    ProbeKind::AltIpPort,
                    alt,
                    Expect::SameAddress,
                    ChangeRequest::NONE,
                ),
                (
                    ProbeKind::AltPort,
                    SocketAddr::new(p.ip(), alt.port()),
                    Expect::SameAddress,
                    ChangeRequest::NONE,
                ),
                (
                    ProbeKind::VerifyIpPort,
                    p,
                    Expect::OtherIpAndPort,
                    ChangeRequest::BOTH,
                ),
                (
                    ProbeKind::VerifyPort,
                    p,
                    Expect::OtherPort,
                    ChangeRequest::PORT,
                ),
            ];
            for (kind, dest, expect, change) in tests {
                self.add_test(
                    Slot::Server(i, kind),
                    m,
                    dest,
                    expect,
                    RequestOptions::change(change),
                );
            }
            self.start_new_tests(now, m);
        }
        // A change reply heard on F is heard again from a second socket before it counts.
        for i in 0..self.servers.len() {
            let heard = self.tests.iter().any(|t| {
                matches!(
                    t.slot,
                    Slot::Server(s, ProbeKind::ChangeIpPort | ProbeKind::ChangePort) if s == i
                ) && t.outcome.heard().is_some()
            });
            if !heard || self.servers[i].confirm_started {
                continue;
            }
            self.servers[i].confirm_started = true;
            let dest = self.servers[i].target.addr;
            let f2 = self.add_socket(Role::Confirm, 0);
            for (kind, expect, change) in [
                (
                    ProbeKind::ConfirmIpPort,
                    Expect::OtherIpAndPort,
                    ChangeRequest::BOTH,
                ),
                (
                    ProbeKind::ConfirmPort,
                    Expect::OtherPort,
                    ChangeRequest::PORT,
                ),
            ] {
                self.add_test(
                    Slot::Server(i, kind),
                    f2,
                    dest,
                    expect,
                    RequestOptions::change(change),
                );
            }
        }
        // The delta lookups, against the first server that answered.
        if let (false, Some((_, first))) = (self.delta_started, self.first) {
            self.delta_started = true;
            let n = self.opts.delta_tests;
            if n > 0 {
                let dest = self.servers[first].target.addr;
                let span = u64::try_from(65535 - 4000 - n).unwrap_or(1).max(1);
                let start = 4000 + u16::try_from(self.next_random() % span).unwrap_or(0);
                for k in 0..2 * n {
                    let consecutive = k >= n;
                    let index = k % n;
                    let port = if consecutive {
                        start.saturating_add(u16::try_from(index).unwrap_or(0))
                    } else {
                        4000 + u16::try_from(self.next_random() % 61535).unwrap_or(0)
                    };
                    let sock = self.add_socket(Role::Delta, port);
                    self.add_test(
                        Slot::Delta { consecutive, index },
                        sock,
                        dest,
                        Expect::SameAddress,
                        RequestOptions::binding(),
                    );
                }
            }
        }
        // A host whose own address is public is most likely not behind a NAT, and without
        // one the open-path tests conclude on silence last: they need not wait for the
        // first mapping to say so. (Behind a NAT after all, their replies go nowhere.)
        if self.open_early {
            self.open_path_sockets();
            self.start_open_tests(now);
        }
        // With M's first mapping: hairpin behind a NAT, the open-path tests without one.
        let Some(mapped) = self.first_mapping() else {
            return;
        };
        let behind_nat = mapped.ip() != self.local_ip.to_canonical();
        if behind_nat && self.opts.hairpin && !self.hairpin_started {
            self.hairpin_started = true;
            // M's mapping, and the mapping of the first filtering socket that has one.
            let filter_target = self.tests.iter().find_map(|t| match (t.slot, t.outcome) {
                (Slot::Server(_, ProbeKind::Binding), Outcome::Heard(r)) => {
                    Some((t.socket, r.mapped))
                }
                _ => None,
            });
            let targets = [Some((self.mapping, mapped)), filter_target];
            for (k, (listener, target)) in targets.into_iter().flatten().enumerate() {
                let h = self.add_socket(Role::Hairpin, 0);
                self.add_test(
                    Slot::Hairpin(k),
                    h,
                    target,
                    Expect::SameAddress,
                    RequestOptions::binding(),
                );
                if let Some(t) = self.tests.last_mut() {
                    t.reply_socket = listener;
                }
            }
        }
        if !behind_nat {
            self.open_path_sockets();
            self.start_open_tests(now);
        }
    }

    /// The two sockets that never send, which RESPONSE-PORT replies aim at.
    fn open_path_sockets(&mut self) {
        if self.open_path.is_none() {
            let q1 = self.add_socket(Role::OpenPath, 0);
            let q2 = self.add_socket(Role::OpenPath, 0);
            self.open_path = Some((q1, q2));
        }
    }

    /// M's first heard mapping.
    fn first_mapping(&self) -> Option<SocketAddr> {
        self.tests
            .iter()
            .filter(|t| t.socket == self.mapping)
            .find_map(|t| t.outcome.heard())
            .map(|r| r.mapped)
    }

    /// RESPONSE-PORT tests for every server that has answered, once the sockets exist.
    fn start_open_tests(&mut self, now: Instant) {
        let Some((q1, q2)) = self.open_path else {
            return;
        };
        let (Some(a1), Some(a2)) = (self.bound(q1), self.bound(q2)) else {
            return;
        };
        for i in 0..self.servers.len() {
            let s = &self.servers[i];
            if s.open_started || (s.first_answer.is_none() && !self.open_early) {
                continue;
            }
            let Some(f_addr) = self.bound(s.filter) else {
                continue;
            };
            let (f, p) = (s.filter, s.target.addr);
            self.servers[i].open_started = true;
            let m = self.mapping;
            for (kind, target, port) in [
                (ProbeKind::OpenPath, q1, a1.port()),
                (ProbeKind::OpenPath2, q2, a2.port()),
                (ProbeKind::OpenCheck, f, f_addr.port()),
            ] {
                let request = RequestOptions {
                    response_port: Some(port),
                    ..RequestOptions::binding()
                };
                self.add_test(Slot::Server(i, kind), m, p, Expect::SameAddress, request);
                if let Some(t) = self.tests.last_mut() {
                    t.reply_socket = target;
                }
            }
            self.start_new_tests(now, m);
        }
    }

    /// Starts tests just added on an already bound socket.
    fn start_new_tests(&mut self, now: Instant, socket: SocketId) {
        if self.bound(socket).is_none() {
            return;
        }
        for t in self.tests.iter_mut().filter(|t| t.socket == socket) {
            t.started.get_or_insert(now);
        }
    }

    fn conclude_silence(&mut self, now: Instant) {
        let rtts = self.server_rtts();
        let loss = self.loss(now, &rtts);
        let rule = self.opts.rule;
        let m_heard = self.first_mapping().is_some();
        let mut replace: Vec<SocketId> = Vec::new();
        for i in 0..self.tests.len() {
            let t = &self.tests[i];
            if t.outcome != Outcome::Pending {
                continue;
            }
            let Some(started) = t.started else { continue };
            let rtt = self.test_rtt(t, &rtts);
            let silent = match rtt {
                Some(rtt) => {
                    let sent: Vec<Instant> = t.copies.iter().map(|c| c.sent).collect();
                    rule.is_silent(started, &sent, now, t.wait(rtt), loss)
                }
                None => now >= started + rule.ceiling,
            };
            if !silent {
                continue;
            }
            // A dropped flow gets a fresh socket (module docs).
            let kind = match t.slot {
                Slot::Server(_, k) => Some(k),
                _ => None,
            };
            let first_of_socket = matches!(kind, Some(ProbeKind::Binding))
                || (kind == Some(ProbeKind::MappingBinding) && !m_heard);
            let sock = &self.sockets[t.socket.0];
            if first_of_socket && sock.attempt < SOCKET_ATTEMPTS && rtt.is_some() {
                if !replace.contains(&t.socket) {
                    replace.push(t.socket);
                }
                continue;
            }
            self.tests[i].outcome = Outcome::Silent;
        }
        for old in replace {
            self.replace_socket(old);
        }
    }

    /// Retires `old` and gives its tests a new socket (restarted from scratch).
    fn replace_socket(&mut self, old: SocketId) {
        let (role, attempt) = {
            let s = &mut self.sockets[old.0];
            s.state = SockState::Retired;
            (s.role, s.attempt)
        };
        let new = self.add_socket(role, 0);
        self.sockets[new.0].attempt = attempt + 1;
        match role {
            Role::Mapping => self.mapping = new,
            Role::Filter(i) => self.servers[i].filter = new,
            _ => {}
        }
        for t in self.tests.iter_mut() {
            if t.socket == old && t.outcome == Outcome::Pending {
                t.socket = new;
                t.started = None;
                t.copies.clear();
            }
            if t.reply_socket == old {
                t.reply_socket = new;
            }
        }
    }

    fn cut_servers(&mut self, now: Instant) {
        let Some(cut) = self.cut_at() else { return };
        if now < cut {
            return;
        }
        for i in 0..self.servers.len() {
            if self.servers[i].first_answer.is_some() || self.servers[i].cut {
                continue;
            }
            self.servers[i].cut = true;
            for t in self.tests.iter_mut() {
                if t.slot_server() == Some(i) && t.outcome == Outcome::Pending {
                    t.outcome = Outcome::Unfinished;
                }
            }
        }
    }

    /// Whether every field of the report is settled or can no longer be (module docs).
    fn settled(&self, now: Instant) -> bool {
        let pending_socket = self
            .sockets
            .iter()
            .any(|s| matches!(s.state, SockState::Wanted | SockState::Binding));
        let Some(_) = self.first else {
            // Nothing answered yet: over only when nothing can answer any more.
            return !pending_socket && self.tests.iter().all(|t| t.outcome.is_final());
        };
        if pending_socket {
            return false;
        }
        let obs = self.observations(now);
        let verdict = classify::mapping_verdict(&obs);
        let nat = verdict
            .external_ip
            .map(|ip| ip.to_canonical() != self.local_ip.to_canonical());
        let caps: Vec<Capability> = obs
            .servers
            .iter()
            .map(|s| classify::capability(s, verdict.evidence, nat))
            .collect();
        let waiting_for_first = |claims_ok: &dyn Fn(Claim) -> bool| {
            self.servers
                .iter()
                .any(|s| s.first_answer.is_none() && !s.cut && claims_ok(s.target.claim))
        };
        // Filtering: decided, or nobody left who could decide it.
        let filtering_settled = classify::filtering(&obs, &caps).is_some()
            || (!caps.iter().zip(&obs.servers).any(|(c, s)| {
                matches!(c, Capability::Pending)
                    || (matches!(c, Capability::Verified | Capability::Trusted)
                        && !(s.filter_both().is_final() && s.filter_port().is_final()))
            }) && !waiting_for_first(&|c| c != Claim::Plain));
        // Mapping: a verdict with no test pending of the servers that answered.
        let mapping_settled = match nat {
            Some(false) => true,
            _ => {
                // A server shown not to change address has an alternate no one vouches
                // for: its tests are cross-checks, not worth waiting for.
                let answered_pending = obs.servers.iter().zip(&caps).any(|(s, c)| {
                    s.answered()
                        && !matches!(c, Capability::Not(_))
                        && s.mapping_tests().iter().any(|(_, o)| !o.is_final())
                });
                !answered_pending
                    && (verdict.evidence != Evidence::Unknown || !waiting_for_first(&|_| true))
            }
        };
        let kinds_final = |f: &dyn Fn(&Test) -> bool| {
            self.tests
                .iter()
                .filter(|t| f(t))
                .all(|t| t.outcome.is_final())
        };
        let delta_settled = kinds_final(&|t| matches!(t.slot, Slot::Delta { .. }));
        let hairpin_settled = obs
            .hairpin
            .is_none_or(|h| matches!(h.outcome, Outcome::Heard(_)))
            || kinds_final(&|t| matches!(t.slot, Slot::Hairpin(_)));
        // Open-path tests sent early to a server that never answered wait for nothing.
        let open_settled = classify::open_path(&obs) == Some(true)
            || kinds_final(&|t| match t.slot {
                Slot::Server(
                    i,
                    ProbeKind::OpenPath | ProbeKind::OpenPath2 | ProbeKind::OpenCheck,
                ) => self.servers[i].first_answer.is_some(),
                _ => false,
            });
        filtering_settled && mapping_settled && delta_settled && hairpin_settled && open_settled
    }
}

impl Test {
    fn slot_server(&self) -> Option<usize> {
        match self.slot {
            Slot::Server(i, _) => Some(i),
            _ => None,
        }
    }

    /// How long a reply to one of its copies may take, on a path of `rtt`.
    fn wait(&self, rtt: Rtt) -> Wait {
        match self.slot {
            Slot::Hairpin(_) => Wait::Hairpin(rtt.max),
            _ => Wait::Internet(rtt.max),
        }
    }

    /// Whether the test concludes on silence (as opposed to waiting for an answer).
    fn waits_for_silence(&self) -> bool {
        matches!(
            self.slot,
            Slot::Hairpin(_)
                | Slot::Server(
                    _,
                    ProbeKind::ChangeIpPort
                        | ProbeKind::ChangePort
                        | ProbeKind::VerifyIpPort
                        | ProbeKind::VerifyPort
                        | ProbeKind::OpenPath
                        | ProbeKind::OpenPath2
                        | ProbeKind::ConfirmIpPort
                        | ProbeKind::ConfirmPort
                )
        )
    }
}

/// The server with the fastest RTT.
fn fastest(rtts: &[Option<Rtt>]) -> Option<Rtt> {
    rtts.iter().flatten().min_by_key(|r| r.min).copied()
}

/// When test `t`'s next copy is due.
fn next_due(
    rule: &SilenceRule,
    t: &Test,
    rtt: Option<Duration>,
    loss: LossCount,
    started: Instant,
) -> Option<Instant> {
    let sent: Vec<Instant> = t.copies.iter().map(|c| c.sent).collect();
    let (wanted, pace) = if t.waits_for_silence() {
        (rule.copies_needed(loss) + 1, Pace::Silence)
    } else {
        (rule.max_copies, Pace::Answer)
    };
    rule.next_copy(started, &sent, rtt, wanted, pace)
}

/// The observation field a server test's outcome goes to.
fn server_field(s: &mut ServerObs, kind: ProbeKind) -> &mut Outcome {
    match kind {
        ProbeKind::Binding => &mut s.binding,
        ProbeKind::ChangeIpPort => &mut s.change_both,
        ProbeKind::ChangePort => &mut s.change_port,
        ProbeKind::MappingBinding => &mut s.map_primary,
        ProbeKind::AltIp => &mut s.map_alt_ip,
        ProbeKind::AltIpPort => &mut s.map_alt_both,
        ProbeKind::AltPort => &mut s.map_alt_port,
        ProbeKind::VerifyIpPort => &mut s.verify_both,
        ProbeKind::VerifyPort => &mut s.verify_port,
        ProbeKind::OpenPath => &mut s.open_path,
        ProbeKind::OpenCheck => &mut s.open_check,
        ProbeKind::OpenPath2 => &mut s.open_path2,
        ProbeKind::ConfirmIpPort => &mut s.confirm_both,
        ProbeKind::ConfirmPort => &mut s.confirm_port,
    }
}

#[cfg(test)]
#[path = "prober_tests.rs"]
mod tests;
