//! A live port mapping: made through the first protocol that grants it (PCP, then
//! NAT-PMP, then UPnP, among those the probe found), renewed at half its lifetime while
//! it is open, and deleted on the gateway by [`Mapping::close`], when the last handle
//! is dropped, or by [`close_all`] when the program ends. A mapping left behind is a
//! hole in someone's router: every way out deletes it, and the lifetime asked for is
//! short (10 minutes by default) so that a killed process leaks it for minutes, not
//! hours.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::OnceCell;
use tokio::task::JoinHandle;

use super::driver::{bind_udp, probe_from, source_towards};
use super::gateway::Gateway;
use super::igd::{MapArgs, WanService};
use super::probe::ProbeOptions;
use super::report::{PortmapReport, Protocol};
use super::{natpmp, pcp, upnp};
use crate::net::pipe::Proto;

/// The lifetime asked for when none is given.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(600);
/// How long one request (create, renew or delete) may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(1);
/// NAT-PMP/PCP retransmission start (RFC 6886 §3.1), doubled per copy.
const RTO: Duration = Duration::from_millis(250);

/// What to map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapSpec {
    pub proto: Proto,
    pub internal_port: u16,
    /// 0: let the gateway choose (the internal port is suggested).
    pub external_port: u16,
    pub lifetime: Duration,
}

/// Why a mapping could not be made, renewed or deleted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Nothing answered the probe (the message names gateway and protocols).
    #[error("{0}")]
    NoAnswer(String),
    /// Every protocol that answered refused; one "PROTOCOL: reason" per protocol.
    #[error("no port mapping granted at {gateway}: {}", reasons.join("; "))]
    Refused {
        gateway: IpAddr,
        reasons: Vec<String>,
    },
    /// The local socket could not be made.
    #[error("port mapping: {0}")]
    Io(String),
    #[error("the mapping is closed")]
    Closed,
}

impl Error {
    /// The error kind scripts branch on.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::NoAnswer(_) => "timeout",
            Error::Refused { .. } => "refused",
            Error::Io(_) => "io",
            Error::Closed => "closed",
        }
    }
}

/// How the mapping was made, with what that protocol needs to renew and delete it.
#[derive(Debug, Clone)]
enum Via {
    Pcp {
        nonce: [u8; 12],
    },
    Pmp,
    Upnp {
        service: WanService,
        permanent: bool,
    },
}

#[derive(Debug, Clone, Copy)]
struct Granted {
    external: SocketAddr,
    /// `external`'s IP is only known when the protocol said it.
    ip_known: bool,
    lifetime: Duration,
    at: Instant,
}

/// Shared by the handles, the renewal task and the registry.
#[derive(Debug)]
struct Core {
    gateway: Gateway,
    client: IpAddr,
    spec: MapSpec,
    via: Via,
    granted: Mutex<Granted>,
    renewals: AtomicU64,
    last_error: Mutex<Option<String>>,
    renewer: Mutex<Option<JoinHandle<()>>>,
    closed: OnceCell<Result<(), Error>>,
    id: u64,
}

/// Deletes the mapping when the last [`Mapping`] handle goes.
#[derive(Debug)]
struct Guard {
    core: Arc<Core>,
    runtime: tokio::runtime::Handle,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let core = Arc::clone(&self.core);
        if core.closed.initialized() {
            return;
        }
        self.runtime.spawn(async move {
            let _ = core.close().await;
        });
    }
}

/// A port mapping on the gateway. Clones share it; it is deleted when closed or when
/// the last clone is dropped.
#[derive(Debug, Clone)]
pub struct Mapping {
    guard: Arc<Guard>,
}

static LIVE: Mutex<Vec<Arc<Core>>> = Mutex::new(Vec::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn live() -> std::sync::MutexGuard<'static, Vec<Arc<Core>>> {
    LIVE.lock().unwrap_or_else(|p| p.into_inner())
}

/// Deletes every mapping still open (or being deleted), waiting at most `timeout`.
/// For the end of a program: `p2pd-repl` calls it before it exits.
pub async fn close_all(timeout: Duration) {
    let cores: Vec<Arc<Core>> = live().clone();
    let all = futures_join(cores);
    let _ = tokio::time::timeout(timeout, all).await;
}

async fn futures_join(cores: Vec<Arc<Core>>) {
    let mut set = tokio::task::JoinSet::new();
    for core in cores {
        set.spawn(async move {
            let _ = core.close().await;
        });
    }
    while set.join_next().await.is_some() {}
}

/// How many mappings are open in this process.
pub fn open_count() -> usize {
    live().len()
}

impl Mapping {
    /// Probes `gateway`, then asks the protocols it offers in the order PCP, NAT-PMP,
    /// UPnP until one grants the mapping. `report` may carry a probe just made.
    pub async fn create(
        gateway: Gateway,
        spec: MapSpec,
        opts: ProbeOptions,
    ) -> Result<(Mapping, PortmapReport), Error> {
        let client = source_towards(&gateway)
            .map_err(|e| Error::Io(format!("no route to the gateway {}: {e}", gateway.ip)))?;
        let report = probe_from(client, gateway, opts).await;
        if !report.anything_answered() {
            return Err(Error::NoAnswer(report.silence_message()));
        }
        let mut reasons = Vec::new();
        for protocol in Protocol::MAPPING_ORDER {
            let Some(outcome) = report.outcome(protocol) else {
                continue;
            };
            if !outcome.is_available() {
                reasons.push(format!("{protocol}: {}", short_reason(outcome)));
                continue;
            }
            match grant(protocol, gateway, client, spec, &report).await {
                Ok((via, granted)) => {
                    let mapping = Mapping::start(gateway, client, spec, via, granted);
                    return Ok((mapping, report));
                }
                Err(why) => reasons.push(format!("{protocol}: {why}")),
            }
        }
        Err(Error::Refused {
            gateway: gateway.ip,
            reasons,
        })
    }

    fn start(
        gateway: Gateway,
        client: IpAddr,
        spec: MapSpec,
        via: Via,
        granted: Granted,
    ) -> Mapping {
        let core = Arc::new(Core {
            gateway,
            client,
            spec,
            via,
            granted: Mutex::new(granted),
            renewals: AtomicU64::new(0),
            last_error: Mutex::new(None),
            renewer: Mutex::new(None),
            closed: OnceCell::new(),
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        });
        live().push(Arc::clone(&core));
        let renewer = tokio::spawn(renew_loop(Arc::clone(&core)));
        *core.renewer.lock().unwrap_or_else(|p| p.into_inner()) = Some(renewer);
        Mapping {
            guard: Arc::new(Guard {
                core,
                runtime: tokio::runtime::Handle::current(),
            }),
        }
    }

    fn core(&self) -> &Core {
        &self.guard.core
    }

    fn granted(&self) -> Granted {
        *self
            .core()
            .granted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// The external address; its IP is `None` when the gateway did not say (a UPnP
    /// gateway with an empty `GetExternalIPAddress`).
    pub fn external(&self) -> (Option<IpAddr>, u16) {
        let g = self.granted();
        (g.ip_known.then_some(g.external.ip()), g.external.port())
    }

    pub fn protocol(&self) -> Protocol {
        match self.core().via {
            Via::Pcp { .. } => Protocol::Pcp,
            Via::Pmp => Protocol::Pmp,
            Via::Upnp { .. } => Protocol::Upnp,
        }
    }

    pub fn proto(&self) -> Proto {
        self.core().spec.proto
    }

    pub fn internal(&self) -> SocketAddr {
        SocketAddr::new(self.core().client, self.core().spec.internal_port)
    }

    pub fn gateway(&self) -> IpAddr {
        self.core().gateway.ip
    }

    /// The lifetime the gateway granted; zero for a permanent UPnP lease.
    pub fn lifetime(&self) -> Duration {
        self.granted().lifetime
    }

    /// Renewals done so far (by the timer or by [`Mapping::renew`]).
    pub fn renewals(&self) -> u64 {
        self.core().renewals.load(Ordering::Relaxed)
    }

    /// The last renewal failure, if the last renewal failed.
    pub fn last_error(&self) -> Option<String> {
        self.core()
            .last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn is_open(&self) -> bool {
        !self.core().closed.initialized()
    }

    /// Renews now (the timer also does, at half the lifetime).
    pub async fn renew(&self) -> Result<(), Error> {
        if !self.is_open() {
            return Err(Error::Closed);
        }
        self.guard.core.renew_once().await
    }

    /// Deletes the mapping on the gateway. Idempotent; later calls return the first
    /// call's outcome.
    pub async fn close(&self) -> Result<(), Error> {
        self.guard.core.close().await
    }

    /// Whether two handles are the same mapping.
    pub fn same(&self, other: &Mapping) -> bool {
        self.core().id == other.core().id
    }
}

fn short_reason(o: &super::report::Outcome) -> String {
    use super::report::Outcome::*;
    match o {
        Refused(w) | Failed(w) => w.clone(),
        NotSpoken(w) => format!("not spoken ({w})"),
        Silent => "no answer".into(),
        Available { .. } => "available".into(),
    }
}

impl Core {
    async fn renew_once(&self) -> Result<(), Error> {
        let granted = *self.granted.lock().unwrap_or_else(|p| p.into_inner());
        let result = request(
            &self.via,
            self.gateway,
            self.client,
            self.spec,
            Some(granted),
            self.spec.lifetime,
        )
        .await;
        match result {
            Ok(mut g) => {
                // A renewal keeps the address the gateway gave first when it omits it.
                if !g.ip_known {
                    g.external = SocketAddr::new(granted.external.ip(), g.external.port());
                    g.ip_known = granted.ip_known;
                }
                *self.granted.lock().unwrap_or_else(|p| p.into_inner()) = g;
                self.renewals.fetch_add(1, Ordering::Relaxed);
                *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = None;
                Ok(())
            }
            Err(why) => {
                let text = format!(
                    "renewing the {} mapping failed: {why}",
                    protocol_of(&self.via)
                );
                *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(text.clone());
                Err(Error::Refused {
                    gateway: self.gateway.ip,
                    reasons: vec![format!("{}: {why}", protocol_of(&self.via))],
                })
            }
        }
    }

    async fn close(self: &Arc<Self>) -> Result<(), Error> {
        self.closed
            .get_or_init(|| async {
                if let Some(task) = self
                    .renewer
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .take()
                {
                    task.abort();
                }
                let granted = *self.granted.lock().unwrap_or_else(|p| p.into_inner());
                let result = delete(&self.via, self.gateway, self.client, self.spec, granted)
                    .await
                    .map_err(|why| Error::Refused {
                        gateway: self.gateway.ip,
                        reasons: vec![format!(
                            "{}: deleting failed: {why}",
                            protocol_of(&self.via)
                        )],
                    });
                live().retain(|c| c.id != self.id);
                result
            })
            .await
            .clone()
    }
}

fn protocol_of(via: &Via) -> Protocol {
    match via {
        Via::Pcp { .. } => Protocol::Pcp,
        Via::Pmp => Protocol::Pmp,
        Via::Upnp { .. } => Protocol::Upnp,
    }
}

/// Renews at half the granted lifetime; after a failure, tries again at half of what
/// is left (at least a second apart) until the mapping would have expired.
async fn renew_loop(core: Arc<Core>) {
    loop {
        let g = *core.granted.lock().unwrap_or_else(|p| p.into_inner());
        if g.lifetime.is_zero() {
            return; // permanent: nothing to renew
        }
        let expires = g.at + g.lifetime;
        let mut wait = g.lifetime / 2;
        loop {
            tokio::time::sleep(wait).await;
            if core.renew_once().await.is_ok() {
                break;
            }
            let left = expires.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            wait = (left / 2).max(Duration::from_secs(1)).min(left);
        }
    }
}

fn random_nonce() -> [u8; 12] {
    let mut nonce = [0u8; 12];
    if getrandom::fill(&mut nonce).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        nonce.copy_from_slice(&t.to_le_bytes()[..12]);
    }
    nonce
}

/// Makes the mapping through `protocol` (the probe said it is available).
async fn grant(
    protocol: Protocol,
    gateway: Gateway,
    client: IpAddr,
    spec: MapSpec,
    report: &PortmapReport,
) -> Result<(Via, Granted), String> {
    let via = match protocol {
        Protocol::Pcp => Via::Pcp {
            nonce: random_nonce(),
        },
        Protocol::Pmp => Via::Pmp,
        Protocol::Upnp => Via::Upnp {
            service: report
                .upnp_service
                .clone()
                .ok_or("the probe found no WAN service")?,
            permanent: false,
        },
    };
    let mut g = request(&via, gateway, client, spec, None, spec.lifetime).await;
    let mut via = via;
    // IGD:1 gateways that only know permanent leases: take one, and delete it on close.
    if let (Err(why), Via::Upnp { service, .. }) = (&g, &via)
        && why.contains("(error 725)")
    {
        via = Via::Upnp {
            service: service.clone(),
            permanent: true,
        };
        g = request(&via, gateway, client, spec, None, Duration::ZERO).await;
    }
    let mut g = g?;
    if !g.ip_known
        && let Some(ip) = report.external_ip
    {
        g.external = SocketAddr::new(ip, g.external.port());
        g.ip_known = true;
    }
    Ok((via, g))
}

/// One create-or-renew request. `current` is the grant being renewed.
async fn request(
    via: &Via,
    gateway: Gateway,
    client: IpAddr,
    spec: MapSpec,
    current: Option<Granted>,
    lifetime: Duration,
) -> Result<Granted, String> {
    let suggested = current.map_or(
        if spec.external_port == 0 {
            spec.internal_port
        } else {
            spec.external_port
        },
        |g| g.external.port(),
    );
    let deadline = Instant::now() + REQUEST_TIMEOUT;
    match via {
        Via::Pcp { nonce } => {
            let req = pcp::MapRequest {
                nonce: *nonce,
                proto: spec.proto,
                internal_port: spec.internal_port,
                external_port: suggested,
                external_ip: current
                    .filter(|g| g.ip_known)
                    .map_or(unspecified(client), |g| g.external.ip()),
                lifetime,
                client,
            };
            let r = udp_request(gateway, client, &req.emit(), deadline, |b| {
                pcp::parse_response(b)
                    .ok()
                    .filter(|r| r.is_map() && r.map.is_none_or(|m| m.nonce == *nonce))
            })
            .await?;
            if r.result != pcp::ResultCode::Success {
                return Err(r.result.to_string());
            }
            let m = r.map.ok_or("PCP success without a payload")?;
            Ok(Granted {
                external: SocketAddr::new(m.external_ip, m.external_port),
                ip_known: !m.external_ip.is_unspecified(),
                lifetime: r.lifetime,
                at: Instant::now(),
            })
        }
        Via::Pmp => {
            let req = natpmp::map_request(spec.proto, spec.internal_port, suggested, lifetime);
            let r = udp_request(
                gateway,
                client,
                &req,
                deadline,
                |b| match natpmp::parse_response(b) {
                    Ok(r @ natpmp::Response::Map { proto, .. }) if proto == spec.proto => Some(r),
                    _ => None,
                },
            )
            .await?;
            match r {
                natpmp::Response::Map {
                    result: natpmp::ResultCode::Success,
                    external_port,
                    lifetime,
                    ..
                } => Ok(Granted {
                    external: SocketAddr::new(unspecified(client), external_port),
                    ip_known: false,
                    lifetime,
                    at: Instant::now(),
                }),
                other => Err(other.result().to_string()),
            }
        }
        Via::Upnp { service, permanent } => {
            let lease = if *permanent { Duration::ZERO } else { lifetime };
            let args = MapArgs {
                proto: spec.proto,
                external_port: suggested,
                internal_port: spec.internal_port,
                internal_client: client,
                lease,
                description: format!("p2pd-repl {} {}", spec.proto, spec.internal_port),
            };
            let port = upnp::add(service, &args, deadline)
                .await
                .map_err(|e| e.to_string())?;
            Ok(Granted {
                external: SocketAddr::new(unspecified(client), port),
                ip_known: false,
                lifetime: lease,
                at: Instant::now(),
            })
        }
    }
}

async fn delete(
    via: &Via,
    gateway: Gateway,
    client: IpAddr,
    spec: MapSpec,
    g: Granted,
) -> Result<(), String> {
    let deadline = Instant::now() + REQUEST_TIMEOUT;
    match via {
        Via::Pcp { nonce } => {
            let req = pcp::MapRequest {
                nonce: *nonce,
                proto: spec.proto,
                internal_port: spec.internal_port,
                external_port: g.external.port(),
                external_ip: if g.ip_known {
                    g.external.ip()
                } else {
                    unspecified(client)
                },
                lifetime: Duration::ZERO,
                client,
            };
            let r = udp_request(gateway, client, &req.emit(), deadline, |b| {
                pcp::parse_response(b).ok().filter(|r| r.is_map())
            })
            .await?;
            match r.result {
                pcp::ResultCode::Success => Ok(()),
                other => Err(other.to_string()),
            }
        }
        Via::Pmp => {
            let req = natpmp::map_request(spec.proto, spec.internal_port, 0, Duration::ZERO);
            let r = udp_request(
                gateway,
                client,
                &req,
                deadline,
                |b| match natpmp::parse_response(b) {
                    Ok(r @ natpmp::Response::Map { .. }) => Some(r),
                    _ => None,
                },
            )
            .await?;
            match r.result() {
                natpmp::ResultCode::Success => Ok(()),
                other => Err(other.to_string()),
            }
        }
        Via::Upnp { service, .. } => upnp::delete(service, spec.proto, g.external.port(), deadline)
            .await
            .map_err(|e| e.to_string()),
    }
}

fn unspecified(like: IpAddr) -> IpAddr {
    match like {
        IpAddr::V4(_) => std::net::Ipv4Addr::UNSPECIFIED.into(),
        IpAddr::V6(_) => std::net::Ipv6Addr::UNSPECIFIED.into(),
    }
}

/// Sends `bytes` to gateway:5351 from a fresh socket on `client`, again after 250 ms and
/// then doubling, until `accept` takes an answer from the gateway or `deadline` passes.
async fn udp_request<T>(
    gateway: Gateway,
    client: IpAddr,
    bytes: &[u8],
    deadline: Instant,
    mut accept: impl FnMut(&[u8]) -> Option<T>,
) -> Result<T, String> {
    let socket: UdpSocket = bind_udp(client).map_err(|e| format!("cannot bind {client}: {e}"))?;
    let to = gateway.at(natpmp::SERVER_PORT);
    let mut buf = [0u8; pcp::MAX_MESSAGE];
    let mut next = Instant::now();
    let mut gap = RTO;
    loop {
        if Instant::now() >= next {
            let _ = socket.send_to(bytes, to).await;
            next += gap;
            gap *= 2;
        }
        let wake = next.min(deadline);
        tokio::select! {
            r = socket.recv_from(&mut buf) => {
                if let Ok((n, from)) = r
                    && from.ip() == gateway.ip
                    && from.port() == natpmp::SERVER_PORT
                    && let Some(t) = accept(&buf[..n])
                {
                    return Ok(t);
                }
            }
            _ = tokio::time::sleep_until(wake.into()) => {}
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "no answer from {} within {:.1} s",
                gateway.ip,
                REQUEST_TIMEOUT.as_secs_f64()
            ));
        }
    }
}
