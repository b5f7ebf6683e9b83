//! The NAT probe driver: [`load_nat`] sends the RFC 5780 §4.3/§4.4 (RFC 3489 §10.1)
//! probes, P2PD's delta lookups and a hairpin probe, records what came back in
//! [`Observations`] and hands them to the pure [`classify`]; every decision about what the
//! answers *mean* stays there. This file decides only what is sent, from which socket, in
//! what order, and how long silence is awaited.
//!
//! # Servers and addresses
//!
//! One RFC 5780 server (OTHER-ADDRESS) or RFC 3489 server (CHANGED-ADDRESS) gives four
//! addresses: primary P = (ip1, port1), changed port (ip1, port2), alternate IP
//! (ip2, port1) and alternate (ip2, port2). The alternate comes from test I's reply, never
//! from a list (P2PD's lists go stale, inventory §9.14). If the reply has no alternate, or
//! one that does not differ from P in both IP and port, the change and mapping tests are
//! not sent: those fields stay `None` and `classify` reports what it can. Every server
//! given (of the local IP's family) is probed at once on sockets of its own; `select.rs`
//! says which run decides, so dead, broken or lying servers cost at most one silence
//! window once another server has given a complete answer.
//!
//! # Order and isolation
//!
//! The filtering tests conclude on silence, so nothing may open the filter for the
//! address a reply is expected from before that reply's window closes. A request to the
//! alternate IP from the filtering socket would let the change-IP reply through an
//! address-dependent filter and a restricted cone would read as a full cone (the classify
//! test `mapping_tests_first_on_one_socket_fake_a_full_cone` shows it). NATs keep filter
//! state per mapping, so separate sockets isolate the test groups and they run at once:
//!
//! 1. Socket F (filtering), bound to the concrete local IP: test I (binding) to P, which
//!    yields the mapping, the alternate address and the RTT the windows are built from.
//!    Then tests II (change IP and port) and III (change port) together, both sent to P,
//!    so neither opens the filter for the other's reply. F sends nothing else.
//! 2. Socket M (mapping), concurrently: binding to P, then alternate IP and alternate
//!    IP+port together (nothing concludes on their silence, so they may overlap). M's
//!    traffic to ip2 touches only M's mapping.
//! 3. Hairpin, on M once its mapping tests are done (so the probe's datagrams cannot be
//!    taken by the STUN client reading M): socket H sends a random nonce to M's external
//!    address, M reports the source of the first copy that arrives. H's packets go to our
//!    own public IP, never to a server, so no filter that F depends on is touched.
//! 4. Delta (`delta_probe.rs`), on sockets of its own, started as soon as any server has
//!    answered test I (so a dead network costs no lookups), against that server.
//!
//! A run is therefore one RTT plus one silence window (plus one more window for a slow
//! server), where P2PD waits 0.5 s per phase.
//!
//! # Silence windows
//!
//! `window.rs`: `clamp(k * rtt, floor, ceiling)`, with the request resent inside the
//! window. The RTT is test I's on the same socket to the same server, measured from the
//! *first* transmission (Karn: if test I needed a retransmission the sample is ambiguous,
//! and the longer reading only lengthens windows). Test I itself has no RTT to go on: it
//! follows RFC 5389 §7.2.1 (initial RTO a parameter, doubling), bounded by the overall
//! timeout; if it never answers nothing else is sent to that server, and when no server
//! answers `classify` says blocked (7) when the timeout ends, as P2PD's fast_nat_test
//! intends but its load_nat never delivers (inventory §9.11). Replies are checked for
//! transaction ID; their origin is recorded and `classify` checks it, so a server that
//! ignores CHANGE-REQUEST is never taken for an open filter, and one that refuses it
//! (420) leaves the filtering test untested rather than silent.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::classify::classify;
use super::delta_probe::collect_delta;
use super::lifetime::{MappingLifetime, mapping_lifetime};
use super::observations::{HairpinProbe, MappingSocket, Observations, Probe};
use super::report::NatReport;
use super::select::choose;
use super::types::NatType;
use super::window::{WindowRule, window_sends, window_timing};
use crate::net::stun::{self, BindingResponse, ChangeRequest, ClientError, RequestOptions};

/// How `load_nat` probes. `Default` gives the values named on each field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NatOptions {
    /// Bound on the whole run (lifetime measurement excepted). Default 3 s.
    pub timeout: Duration,
    /// Initial retransmission timeout of test I, doubled per copy (RFC 5389 §7.2.1).
    /// Default 100 ms (`stun::DEFAULT_RTO`, suited to LANs; 500 ms is RFC 5389's value
    /// for the Internet).
    pub rto: Duration,
    /// `k`: a silence window is this many RTTs. Default 3.
    pub rtt_factor: u32,
    /// Shortest silence window. Default 50 ms.
    pub floor: Duration,
    /// Longest silence window. Default 2 s (P2PD's receive timeout).
    pub ceiling: Duration,
    /// Lookups per delta round; 0 skips the delta test. Default 12 (P2PD's).
    pub delta_tests: usize,
    /// Send the hairpin probe. Default true.
    pub hairpin: bool,
    /// Also measure the UDP mapping lifetime (slow; outside `timeout`). Default false.
    pub lifetime: bool,
    /// Longest idle time the lifetime measurement waits. Default 120 s (RFC 4787 REQ-5's
    /// minimum lifetime).
    pub lifetime_max: Duration,
    /// Idle times checked, halving down from `lifetime_max`. Default 8.
    pub lifetime_checks: usize,
    /// Port mapping (`net::portmap`): the gateway to probe alongside the STUN probes, its
    /// answer shown as the report's `Port mapping:` line. Default `None`: not tested.
    pub port_mapping: Option<crate::net::portmap::Gateway>,
}

impl Default for NatOptions {
    fn default() -> Self {
        NatOptions {
            timeout: Duration::from_secs(3),
            rto: stun::DEFAULT_RTO,
            rtt_factor: 3,
            floor: Duration::from_millis(50),
            ceiling: Duration::from_secs(2),
            delta_tests: super::P2PD_DELTA_TESTS,
            hairpin: true,
            lifetime: false,
            lifetime_max: Duration::from_secs(120),
            lifetime_checks: 8,
            port_mapping: None,
        }
    }
}

impl NatOptions {
    fn windows(&self) -> WindowRule {
        WindowRule {
            rtt_factor: self.rtt_factor,
            floor: self.floor,
            ceiling: self.ceiling,
        }
    }
}

/// Classifies the NAT between `local_ip` and the change-capable STUN `servers` (RFC 5780
/// or RFC 3489; one is enough, more are probed at once and cross-checked). Servers of the
/// other IP family are ignored. Never fails: with no usable server, no socket or no
/// answer the report says blocked (7), within `opts.timeout`. An unspecified `local_ip`
/// is replaced by the source address the OS would use towards the first server.
pub async fn load_nat(local_ip: IpAddr, servers: &[SocketAddr], opts: NatOptions) -> NatReport {
    let started = Instant::now();
    let deadline = started + opts.timeout;
    let mut usable: Vec<SocketAddr> = Vec::new();
    for s in servers {
        if s.is_ipv4() == local_ip.is_ipv4() && !usable.contains(s) {
            usable.push(*s);
        }
    }
    let local_ip = concrete_ip(local_ip, usable.first().copied());
    let rule = opts.windows();
    // Port mapping: asked at once, on its own socket, bounded by its own 1 s; only when
    // the servers are reached through a gateway (not for a test on loopback).
    let through_gateway = !local_ip.is_loopback() && usable.iter().any(|s| !s.ip().is_loopback());
    let port_mapping = opts
        .port_mapping
        .filter(|_| through_gateway)
        .map(|gw| tokio::spawn(crate::net::portmap::probe(gw, Default::default())));

    // The delta test starts when the first server answers test I (see module docs).
    let (first_tx, mut first_rx) = watch::channel(None::<(SocketAddr, Duration)>);
    let first_tx = Arc::new(first_tx);
    let delta = tokio::spawn(async move {
        let started = tokio::time::timeout_at(
            tokio::time::Instant::from_std(deadline),
            first_rx.wait_for(Option::is_some),
        )
        .await;
        // Copied out at once: the watch guard must not live across an await.
        let Some((server, rtt)) = started.ok().and_then(|r| r.ok().and_then(|v| *v)) else {
            return Default::default();
        };
        if opts.delta_tests == 0 {
            return Default::default();
        }
        let window = rule.window_within(rtt, left(deadline));
        collect_delta(local_ip, server, opts.delta_tests, window).await
    });

    let mut runs = JoinSet::new();
    for (i, server) in usable.iter().copied().enumerate() {
        let first = Arc::clone(&first_tx);
        runs.spawn(async move {
            (
                i,
                probe_server(local_ip, server, opts, deadline, &first).await,
            )
        });
    }
    drop(first_tx);
    let mut observed: Vec<Observations> = usable
        .iter()
        .map(|&s| {
            let mut obs = Observations::new(SocketAddr::new(local_ip, 0));
            obs.binding = Some(Probe::silent(s));
            obs
        })
        .collect();
    // Once one server has answered, the others get two more windows: time for a server
    // of similar RTT to wait out its own silence window even when the first answer came
    // without one (no alternate address, or a server answering change requests wrongly
    // at once). Dead servers then cost no more than that.
    let mut cutoff: Option<Instant> = None;
    loop {
        let next = match cutoff {
            Some(c) => tokio::time::timeout_at(c.into(), runs.join_next())
                .await
                .ok()
                .flatten(),
            None => runs.join_next().await,
        };
        let Some(joined) = next else { break };
        let Ok((i, (obs, window))) = joined else {
            continue;
        };
        if cutoff.is_none() && obs.binding.is_some_and(|b| b.reply.is_some()) {
            cutoff = Some(Instant::now() + window * 2);
        }
        if let Some(slot) = observed.get_mut(i) {
            *slot = obs;
        }
    }
    runs.abort_all();

    let chosen = choose(&observed).unwrap_or(0);
    let mut decisive = if observed.is_empty() {
        Observations::new(SocketAddr::new(local_ip, 0))
    } else {
        observed.swap_remove(chosen)
    };
    decisive.delta = tokio::time::timeout_at(
        tokio::time::Instant::from_std(deadline + opts.ceiling),
        delta,
    )
    .await
    .ok()
    .and_then(Result::ok)
    .unwrap_or_default();
    decisive.elapsed = started.elapsed();
    let mut report = classify(&decisive);
    // The other servers were used too: list them and their answers after the decisive one.
    for other in &observed {
        let r = classify(other);
        for s in r.servers {
            if !report.servers.contains(&s) {
                report.servers.push(s);
            }
        }
        report.rtts.extend(r.rtts);
    }
    if let Some(task) = port_mapping {
        report.port_mapping = task.await.ok();
    }
    if opts.lifetime {
        report.lifetime = measure_lifetime(local_ip, &decisive, &report, opts).await;
    }
    report.elapsed = started.elapsed();
    report
}

/// The lifetime of a mapping towards the decisive server, when there is state to expire.
async fn measure_lifetime(
    local_ip: IpAddr,
    decisive: &Observations,
    report: &NatReport,
    opts: NatOptions,
) -> Option<MappingLifetime> {
    if matches!(
        report.nat_type(),
        NatType::OpenInternet | NatType::BlockedNat
    ) {
        return None;
    }
    let binding = decisive.binding?;
    let rtt = binding.reply?.rtt;
    let window = opts.windows().window(rtt);
    mapping_lifetime(
        local_ip,
        binding.server,
        opts.lifetime_max,
        opts.lifetime_checks,
        opts.rto,
        window,
    )
    .await
}

/// `ip`, or when it is unspecified the source address the OS picks towards `server`
/// (a connected UDP socket sends nothing). The mapped address is compared with the
/// local one, so a wildcard would always look like a NAT.
fn concrete_ip(ip: IpAddr, server: Option<SocketAddr>) -> IpAddr {
    if !ip.is_unspecified() {
        return ip;
    }
    let found = server.and_then(|server| {
        let socket = std::net::UdpSocket::bind(SocketAddr::new(ip, 0)).ok()?;
        socket.connect(server).ok()?;
        socket.local_addr().ok().map(|a| a.ip())
    });
    found.unwrap_or(ip)
}

fn left(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

/// What a probe's result says: an answer, silence, or (error response, send failure)
/// nothing either way.
fn probe_of(server: SocketAddr, result: &Result<BindingResponse, ClientError>) -> Option<Probe> {
    match result {
        Ok(r) => Some(Probe::answered(server, r.mapped, r.from, r.rtt)),
        Err(ClientError::Timeout { .. }) => Some(Probe::silent(server)),
        Err(_) => None,
    }
}

/// Attempts at test I (and M's binding) per socket role, each from a fresh socket.
const FIRST_BINDING_ATTEMPTS: usize = 3;

/// The outcome of test I (or M's binding) and the socket that made it.
struct FirstBinding {
    /// The last socket tried; `None` if none could be bound.
    socket: Option<UdpSocket>,
    local: SocketAddr,
    probe: Option<Probe>,
    reply: Option<BindingResponse>,
}

/// Test I (or M's binding) to `server` from a fresh socket: the RFC 5389 schedule,
/// bounded by the run's deadline, until the sibling socket (F for M, M for F) has an
/// answer from the same server. The path's RTT is then known, and this socket gets one
/// silence window more; if it is still unanswered, its flow is presumed dropped (a NAT
/// that failed to create the mapping: the lab's hash NATs do this on a port clash) and a
/// fresh socket, with a new local port and so a new mapping, tries again. Without this a
/// single lost flow would cost the whole timeout. The RTT is counted from the attempt's
/// first transmission (Karn, see module docs) and published to `sibling` and `first`.
async fn first_binding(
    local_ip: IpAddr,
    server: SocketAddr,
    opts: &NatOptions,
    deadline: Instant,
    sibling: &watch::Sender<Option<Duration>>,
    first: &watch::Sender<Option<(SocketAddr, Duration)>>,
) -> FirstBinding {
    let any = SocketAddr::new(local_ip, 0);
    let rule = opts.windows();
    let mut last = FirstBinding {
        socket: None,
        local: any,
        probe: None,
        reply: None,
    };
    for _ in 0..FIRST_BINDING_ATTEMPTS {
        if left(deadline).is_zero() {
            break;
        }
        let Ok(socket) = UdpSocket::bind(any).await else {
            break;
        };
        let local = socket.local_addr().unwrap_or(any);
        let sent = Instant::now();
        let known: Option<Duration> = *sibling.borrow();
        let result = match known {
            Some(rtt) => {
                let t = window_timing(rule.window_within(rtt, left(deadline)));
                let request = RequestOptions::binding();
                Some(stun::binding(&socket, server, request, t.rto, t.deadline).await)
            }
            None => {
                let mut rx = sibling.subscribe();
                let give_up = async {
                    let rtt: Option<Duration> =
                        rx.wait_for(Option::is_some).await.ok().and_then(|r| *r);
                    match rtt {
                        Some(rtt) => tokio::time::sleep(rule.window(rtt)).await,
                        None => std::future::pending().await,
                    }
                };
                let request = RequestOptions::binding();
                tokio::select! {
                    r = stun::binding(&socket, server, request, opts.rto, left(deadline)) => Some(r),
                    _ = give_up => None,
                }
            }
        };
        let rtt = sent.elapsed();
        let retry = match &result {
            Some(Ok(reply)) => {
                sibling.send_if_modified(|s| s.is_none() && s.replace(rtt).is_none());
                first.send_if_modified(|s| s.is_none() && s.replace((server, rtt)).is_none());
                let probe = Probe::answered(server, reply.mapped, reply.from, rtt);
                return FirstBinding {
                    socket: Some(socket),
                    local,
                    probe: Some(probe),
                    reply: Some(reply.clone()),
                };
            }
            // Silent for a whole window on a path known to answer: try a fresh socket.
            Some(Err(ClientError::Timeout { .. })) => known.is_some(),
            Some(Err(_)) => false,
            None => true,
        };
        last = FirstBinding {
            socket: Some(socket),
            local,
            probe: result
                .as_ref()
                .map_or(Some(Probe::silent(server)), |r| probe_of(server, r)),
            reply: None,
        };
        if !retry {
            break;
        }
    }
    last
}

/// The server's alternate address from a reply, if it can serve the change tests: it
/// must differ from the primary in IP and port and be of the same family.
fn alternate_of(server: SocketAddr, reply: &BindingResponse) -> Option<SocketAddr> {
    let alt = reply.other_address?;
    let usable =
        alt.is_ipv4() == server.is_ipv4() && alt.ip() != server.ip() && alt.port() != server.port();
    usable.then_some(alt)
}

/// Requests that all listen for the same silence `window`, on one socket.
async fn within_window(
    socket: &UdpSocket,
    requests: &[(SocketAddr, RequestOptions)],
    window: Duration,
) -> Vec<Option<Probe>> {
    let timing = window_timing(window);
    let results = stun::bindings(socket, requests, timing.rto, timing.deadline).await;
    requests
        .iter()
        .zip(&results)
        .map(|((server, _), result)| probe_of(*server, result))
        .collect()
}

/// Everything sent to one server: F's tests I-III and M's mapping tests and hairpin.
/// Returns the observations (without delta and elapsed) and the silence window used.
async fn probe_server(
    local_ip: IpAddr,
    server: SocketAddr,
    opts: NatOptions,
    deadline: Instant,
    first: &watch::Sender<Option<(SocketAddr, Duration)>>,
) -> (Observations, Duration) {
    let mut obs = Observations::new(SocketAddr::new(local_ip, 0));
    let rule = opts.windows();
    let (sibling, _) = watch::channel(None::<Duration>);

    let filtering = async {
        let test_i = first_binding(local_ip, server, &opts, deadline, &sibling, first).await;
        let (f, binding) = (test_i.socket, test_i.probe);
        let (Some(f), Some(reply)) = (f, test_i.reply) else {
            return (test_i.local, binding, None, None, opts.floor);
        };
        let local = test_i.local;
        let rtt = binding.and_then(|b| b.reply).map_or(reply.rtt, |r| r.rtt);
        let window = rule.window_within(rtt, left(deadline));
        if alternate_of(server, &reply).is_none() {
            return (local, binding, None, None, window);
        }
        // Accept::Any: the origin is recorded and checked by `classify`, so a server that
        // answers from the wrong address reads as "not tested", not as silence.
        let change = |c| (server, RequestOptions::change(c).accept(stun::Accept::Any));
        let mut heard = within_window(
            &f,
            &[change(ChangeRequest::BOTH), change(ChangeRequest::PORT)],
            window,
        )
        .await
        .into_iter();
        let (both, port) = (heard.next().flatten(), heard.next().flatten());
        (local, binding, both, port, window)
    };
    let mapping = async {
        let m_binding = first_binding(local_ip, server, &opts, deadline, &sibling, first).await;
        let (m, m_local) = (m_binding.socket, m_binding.local);
        let mapping_socket = MappingSocket {
            local: m_local,
            binding: m_binding.probe,
        };
        let (Some(m), Some(reply)) = (m, m_binding.reply) else {
            return (mapping_socket, None, None, None);
        };
        let binding = m_binding.probe;
        let rtt = binding.and_then(|b| b.reply).map_or(reply.rtt, |r| r.rtt);
        let window = rule.window_within(rtt, left(deadline));
        let (mut alt_ip, mut alt_both) = (None, None);
        if let Some(alt) = alternate_of(server, &reply) {
            let to = [SocketAddr::new(alt.ip(), server.port()), alt];
            let requests = to.map(|a| (a, RequestOptions::binding()));
            let mut heard = within_window(&m, &requests, window).await.into_iter();
            (alt_ip, alt_both) = (heard.next().flatten(), heard.next().flatten());
        }
        let behind_nat = reply.mapped.ip().to_canonical() != m_local.ip().to_canonical();
        let hairpin = if opts.hairpin && behind_nat {
            hairpin(&m, reply.mapped, local_ip, window).await
        } else {
            None
        };
        (mapping_socket, alt_ip, alt_both, hairpin)
    };
    let (
        (local, binding, change_ip_port, change_port, window),
        (mapping_socket, alt_ip, alt_ip_port, hp),
    ) = tokio::join!(filtering, mapping);
    obs.local = local;
    obs.binding = binding;
    obs.change_ip_port = change_ip_port;
    obs.change_port = change_port;
    obs.mapping_socket = Some(mapping_socket);
    obs.alt_ip = alt_ip;
    obs.alt_ip_port = alt_ip_port;
    obs.hairpin = hp;
    (obs, window)
}

/// Sends a nonce from a new socket to `target` (the external address of `listener`) at the
/// window's resend offsets and reports where the first copy came from, if one arrived.
/// `None` when no socket could be made (not tested).
async fn hairpin(
    listener: &UdpSocket,
    target: SocketAddr,
    local_ip: IpAddr,
    window: Duration,
) -> Option<HairpinProbe> {
    let sender = UdpSocket::bind(SocketAddr::new(local_ip, 0)).await.ok()?;
    let mut nonce = *b"p2pd-hairpin-nonce-0000";
    let tail = nonce.len() - 4;
    let random = getrandom::u32().unwrap_or(0x5eed);
    if let Some(slot) = nonce.get_mut(tail..) {
        slot.copy_from_slice(&random.to_le_bytes());
    }
    let started = tokio::time::Instant::now();
    let sends = async {
        for offset in window_sends(window) {
            tokio::time::sleep_until(started + offset).await;
            // A failed send is one lost copy; the window decides.
            let _ = sender.send_to(&nonce, target).await;
        }
        std::future::pending::<()>().await;
    };
    let hears = async {
        let mut buf = [0u8; 64];
        loop {
            if let Ok((n, from)) = listener.recv_from(&mut buf).await
                && buf.get(..n) == Some(&nonce[..])
            {
                return from;
            }
        }
    };
    let seen_from = tokio::select! {
        from = hears => Some(from),
        _ = sends => None,
        _ = tokio::time::sleep_until(started + window) => None,
    };
    Some(HairpinProbe { target, seen_from })
}
