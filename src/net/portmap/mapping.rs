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

use tokio::sync::OnceCell;
use tokio::task::JoinHandle;

use super::driver::{probe_from, source_towards};
use super::exchange::{Granted, Via, delete, grant, request};
use super::gateway::Gateway;
use super::probe::ProbeOptions;
use super::report::{PortmapReport, Protocol};
use crate::net::pipe::Proto;

/// The lifetime asked for when none is given.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(600);

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
        Mapping::create_from(client, gateway, spec, opts).await
    }

    /// [`Mapping::create`] for `client`'s port: the address a socket is bound to when the
    /// host has several on the gateway's link.
    pub async fn create_from(
        client: IpAddr,
        gateway: Gateway,
        spec: MapSpec,
        opts: ProbeOptions,
    ) -> Result<(Mapping, PortmapReport), Error> {
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
        self.core().via.protocol()
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
                let text = format!("renewing the {} mapping failed: {why}", self.via.protocol());
                *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(text.clone());
                Err(Error::Refused {
                    gateway: self.gateway.ip,
                    reasons: vec![format!("{}: {why}", self.via.protocol())],
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
                        reasons: vec![format!("{}: deleting failed: {why}", self.via.protocol())],
                    });
                live().retain(|c| c.id != self.id);
                result
            })
            .await
            .clone()
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
