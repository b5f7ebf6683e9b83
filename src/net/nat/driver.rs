//! The tokio shell around [`Prober`]: binds the sockets it asks for, gives each a reader
//! task feeding one channel, sends what it says, sleeps until it wants to be woken, and
//! hands the observations to the pure `classify`. No decisions live here.
//!
//! Also the entry points: [`load_nat`] (servers as addresses) and [`load_nat_named`]
//! (servers as configured, some of which may not have resolved), both bounded by
//! [`NatOptions::timeout`] (the opt-in lifetime measurement excepted), and never failing:
//! what could not be tested is said in the report.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::classify::classify;
use super::copies::SilenceRule;
use super::lifetime::{MappingLifetime, mapping_lifetime};
use super::prober::{Claim, Prober, ProberOptions, SocketId, Target};
use super::report::NatReport;
use super::server_kind::{ServerKind, ServerReport};
use super::types::NatType;
use super::window::WindowRule;
use crate::net::address::{self, ResolveOptions};
use crate::net::config::StunServer;
use crate::net::ip_range::Family;
use crate::net::stun;

/// How `load_nat` probes. `Default` gives the values named on each field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NatOptions {
    /// Bound on the whole run (lifetime measurement excepted). Default 3 s.
    pub timeout: Duration,
    /// First gap between copies while a server's RTT is unknown, doubled per copy
    /// (RFC 5389 §7.2.1's RTO). Default 100 ms (`stun::DEFAULT_RTO`).
    pub rto: Duration,
    /// The lifetime measurement's listening window, in RTTs. Default 3.
    pub rtt_factor: u32,
    /// Silence never counts before a test's start plus one RTT plus this. Default 40 ms
    /// (so a complete answer, whose last tests start one RTT in, lands within 2 RTT +
    /// 50 ms).
    pub floor: Duration,
    /// Silence counts after this long whatever else. Default 2 s (P2PD's receive timeout).
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
            floor: Duration::from_millis(40),
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
    fn prober(&self) -> ProberOptions {
        ProberOptions {
            timeout: self.timeout,
            rule: SilenceRule {
                margin: self.floor,
                ceiling: self.ceiling,
                rto: self.rto,
                ..SilenceRule::default()
            },
            delta_tests: self.delta_tests,
            hairpin: self.hairpin,
            seed: getrandom::u64().unwrap_or(0x2545_f491_4f6c_dd1d),
        }
    }
}

/// One configured server: its name, what it resolved to (or why not), and what its
/// source claims it can do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedServer {
    pub name: String,
    pub resolved: Result<SocketAddr, String>,
    pub claim: Claim,
}

/// Classifies the NAT between `local_ip` and `servers` (any mix of RFC 5780, RFC 3489 and
/// plain RFC 5389 servers; servers of the other IP family are left out). See
/// [`load_nat_named`].
pub async fn load_nat(local_ip: IpAddr, servers: &[SocketAddr], opts: NatOptions) -> NatReport {
    let named = servers
        .iter()
        .map(|s| NamedServer {
            name: s.to_string(),
            resolved: Ok(*s),
            claim: Claim::Unknown,
        })
        .collect();
    load_nat_named(local_ip, named, opts).await
}

/// Classifies the NAT between `local_ip` and the configured servers. Never fails: with no
/// server to ask the report says why nothing was tested; with no answer it says blocked
/// (7), within `opts.timeout`. An unspecified `local_ip` is replaced by the source address
/// the OS would use towards the first server.
pub async fn load_nat_named(
    local_ip: IpAddr,
    servers: Vec<NamedServer>,
    opts: NatOptions,
) -> NatReport {
    let started = Instant::now();
    let family = Family::of(&local_ip);
    let mut targets: Vec<Target> = Vec::new();
    let mut left_out: Vec<ServerReport> = Vec::new();
    for s in &servers {
        match &s.resolved {
            Ok(addr) if Family::of(&addr.ip()) == family => {
                if !targets.iter().any(|t| t.addr == *addr) {
                    targets.push(Target {
                        name: s.name.clone(),
                        addr: *addr,
                        claim: s.claim,
                    });
                }
            }
            Ok(addr) => left_out.push(left_out_report(s, Some(*addr), ServerKind::OtherFamily)),
            Err(why) => left_out.push(left_out_report(
                s,
                None,
                ServerKind::Unresolved(why.clone()),
            )),
        }
    }
    let local_ip = concrete_ip(local_ip, targets.first().map(|t| t.addr));
    // Port mapping: asked at once, on its own socket; only when the servers are reached
    // through a gateway (never for a test on loopback). Bounded by its grace (250 ms): a
    // gateway on the LAN answers well within it, and a silent one must not hold the NAT
    // answer up; `load_portmap()` waits its full second.
    let through_gateway =
        !local_ip.is_loopback() && targets.iter().any(|t| !t.addr.ip().is_loopback());
    let port_mapping = opts.port_mapping.filter(|_| through_gateway).map(|gw| {
        let defaults = crate::net::portmap::ProbeOptions::default();
        let bounded = crate::net::portmap::ProbeOptions {
            timeout: defaults.grace,
            ..defaults
        };
        tokio::spawn(crate::net::portmap::probe(gw, bounded))
    });
    let mut report = if targets.is_empty() {
        let mut r = NatReport::empty(local_ip);
        r.untested = Some(untested_reason(&servers, family, &left_out));
        r
    } else {
        run(local_ip, &targets, opts).await
    };
    report.stun.extend(left_out);
    if let Some(task) = port_mapping {
        report.port_mapping = task.await.ok();
    }
    if opts.lifetime {
        report.lifetime = measure_lifetime(local_ip, &report, opts).await;
    }
    report.elapsed = started.elapsed();
    report
}

fn left_out_report(s: &NamedServer, address: Option<SocketAddr>, kind: ServerKind) -> ServerReport {
    ServerReport {
        name: s.name.clone(),
        address,
        kind,
        alternate: None,
        mapped: None,
        rtt: None,
        software: None,
    }
}

/// Resolves `servers` for `family`, concurrently, within `timeout`, in their order; a name
/// that does not resolve is kept with its cause, for the report.
pub async fn resolve_named(
    servers: Vec<StunServer>,
    family: Family,
    timeout: Duration,
) -> Vec<NamedServer> {
    // The resolver `start()` uses for the same servers (hosts file, one budget).
    let opts = Arc::new(ResolveOptions {
        timeout,
        ..ResolveOptions::default()
    });
    let mut lookups = JoinSet::new();
    for (order, server) in servers.into_iter().enumerate() {
        let opts = Arc::clone(&opts);
        lookups.spawn(async move {
            let resolved = address::resolve(&server.host, server.port, family, &opts)
                .await
                .map(|a| a.socket_addr())
                .map_err(|e| e.cause());
            let named = NamedServer {
                name: server.to_string(),
                resolved,
                claim: server.claim,
            };
            (order, named)
        });
    }
    let mut found = lookups.join_all().await;
    found.sort_by_key(|(order, _)| *order);
    found.into_iter().map(|(_, named)| named).collect()
}

/// "no STUN server could be asked: 8 configured, 8 names did not resolve".
fn untested_reason(servers: &[NamedServer], family: Family, left_out: &[ServerReport]) -> String {
    if servers.is_empty() {
        return "no STUN servers are configured".to_string();
    }
    let unresolved = left_out
        .iter()
        .filter(|s| matches!(s.kind, ServerKind::Unresolved(_)))
        .count();
    let other = left_out.len() - unresolved;
    let mut causes = Vec::new();
    if unresolved > 0 {
        let names = if unresolved == 1 { "name" } else { "names" };
        causes.push(format!("{unresolved} {names} did not resolve"));
    }
    if other > 0 {
        causes.push(format!("{other} not {family}"));
    }
    format!(
        "no STUN server could be asked: {} configured, {}",
        servers.len(),
        causes.join(", ")
    )
}

/// A datagram a reader task passed on.
struct Arrival {
    socket: SocketId,
    from: SocketAddr,
    bytes: Vec<u8>,
    at: Instant,
}

/// Runs the prober to its end over real sockets.
async fn run(local_ip: IpAddr, targets: &[Target], opts: NatOptions) -> NatReport {
    let mut prober = Prober::new(Instant::now(), local_ip, targets, opts.prober());
    let (tx, mut rx) = mpsc::channel::<Arrival>(1024);
    let mut sockets: Vec<Option<Arc<UdpSocket>>> = Vec::new();
    // Reader tasks own a handle each; aborting them closes every socket of the run.
    let mut readers = JoinSet::new();
    loop {
        while let Some(bind) = prober.poll_bind() {
            let socket = UdpSocket::bind(bind.addr).await.ok().map(Arc::new);
            let local = socket.as_ref().and_then(|s| s.local_addr().ok());
            if let Some(s) = &socket {
                readers.spawn(read_into(Arc::clone(s), bind.socket, tx.clone()));
            }
            let slot = bind.socket.0;
            if sockets.len() <= slot {
                sockets.resize(slot + 1, None);
            }
            sockets[slot] = socket;
            prober.handle_bound(Instant::now(), bind.socket, local);
        }
        while let Some(t) = prober.poll_transmit(Instant::now()) {
            if let Some(Some(s)) = sockets.get(t.socket.0) {
                // A failed send is a lost copy: the silence rules account for it.
                let _ = s.send_to(&t.contents, t.destination).await;
            }
        }
        if prober.is_done() {
            break;
        }
        let now = Instant::now();
        let Some(wake) = prober.poll_timeout(now) else {
            break;
        };
        tokio::select! {
            arrival = rx.recv() => {
                // A burst of replies is taken whole, then judged once.
                let mut next = arrival;
                while let Some(a) = next {
                    prober.handle_datagram(a.at, a.socket, a.from, &a.bytes);
                    next = rx.try_recv().ok();
                }
            }
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(wake)) => {}
        }
        prober.handle_timeout(Instant::now());
    }
    // Replies already read but not yet handed over still count (as answered copies).
    while let Ok(a) = rx.try_recv() {
        prober.handle_datagram(a.at, a.socket, a.from, &a.bytes);
    }
    readers.abort_all();
    classify(&prober.observations(Instant::now()))
}

/// Passes every datagram of `socket` on, stamped with its arrival time.
async fn read_into(socket: Arc<UdpSocket>, id: SocketId, tx: mpsc::Sender<Arrival>) {
    let mut buf = vec![0u8; 2048];
    loop {
        match socket.recv_from(&mut buf).await {
            Ok((n, from)) => {
                let arrival = Arrival {
                    socket: id,
                    from,
                    bytes: buf.get(..n).unwrap_or(&[]).to_vec(),
                    at: Instant::now(),
                };
                if tx.send(arrival).await.is_err() {
                    return;
                }
            }
            // ICMP errors surface on some systems; they are not a reply.
            Err(e) if crate::net::icmp::is_transient(&e) => {}
            Err(_) => return,
        }
    }
}

/// The lifetime of a mapping towards the first server that changes address (or the first
/// that answered), when there is state to expire.
async fn measure_lifetime(
    local_ip: IpAddr,
    report: &NatReport,
    opts: NatOptions,
) -> Option<MappingLifetime> {
    if !report.tested()
        || matches!(
            report.nat_type(),
            NatType::OpenInternet | NatType::BlockedNat
        )
    {
        return None;
    }
    let server = report
        .stun
        .iter()
        .filter(|s| s.rtt.is_some() && s.kind.believed())
        .min_by_key(|s| s.kind.changes_address() != Some(true))?;
    let window = WindowRule {
        rtt_factor: opts.rtt_factor,
        floor: opts.floor,
        ceiling: opts.ceiling,
    }
    .window(server.rtt?);
    mapping_lifetime(
        local_ip,
        server.address?,
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
