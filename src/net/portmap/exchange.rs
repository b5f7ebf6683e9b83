//! The requests a mapping makes of the gateway, one protocol at a time: create (with
//! the IGD:1 fallback to a permanent lease), renew and delete, each bounded by
//! [`REQUEST_TIMEOUT`]. NAT-PMP and PCP go over a fresh UDP socket with RFC 6886's
//! retransmission schedule; UPnP over SOAP (`upnp`).

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;

use super::driver::bind_udp;
use super::gateway::Gateway;
use super::igd::{MapArgs, WanService};
use super::mapping::MapSpec;
use super::report::{PortmapReport, Protocol};
use super::{natpmp, pcp, upnp};

/// How long one request (create, renew or delete) may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(1);
/// NAT-PMP/PCP retransmission start (RFC 6886 §3.1), doubled per copy.
const RTO: Duration = Duration::from_millis(250);

/// How the mapping was made, with what that protocol needs to renew and delete it.
#[derive(Debug, Clone)]
pub(super) enum Via {
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
pub(super) struct Granted {
    pub external: SocketAddr,
    /// `external`'s IP is only known when the protocol said it.
    pub ip_known: bool,
    pub lifetime: Duration,
    pub at: Instant,
}

impl Granted {
    fn known_ip(&self) -> Option<IpAddr> {
        self.ip_known.then_some(self.external.ip())
    }
}

/// A PCP MAP request for `spec` suggesting `external` (port, and IP when known);
/// lifetime zero deletes.
fn pcp_map(
    nonce: [u8; 12],
    spec: MapSpec,
    client: IpAddr,
    external: (u16, Option<IpAddr>),
    lifetime: Duration,
) -> pcp::MapRequest {
    pcp::MapRequest {
        nonce,
        proto: spec.proto,
        internal_port: spec.internal_port,
        external_port: external.0,
        external_ip: external.1.unwrap_or(unspecified(client)),
        lifetime,
        client,
    }
}

impl Via {
    pub fn protocol(&self) -> Protocol {
        match self {
            Via::Pcp { .. } => Protocol::Pcp,
            Via::Pmp => Protocol::Pmp,
            Via::Upnp { .. } => Protocol::Upnp,
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
pub(super) async fn grant(
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
pub(super) async fn request(
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
            let known = current.and_then(|g| g.known_ip());
            let req = pcp_map(*nonce, spec, client, (suggested, known), lifetime);
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
            let r = pmp_map(gateway, client, spec, (suggested, lifetime), deadline).await?;
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

pub(super) async fn delete(
    via: &Via,
    gateway: Gateway,
    client: IpAddr,
    spec: MapSpec,
    g: Granted,
) -> Result<(), String> {
    let deadline = Instant::now() + REQUEST_TIMEOUT;
    match via {
        Via::Pcp { nonce } => {
            let external = (g.external.port(), g.known_ip());
            let req = pcp_map(*nonce, spec, client, external, Duration::ZERO);
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
            let r = pmp_map(gateway, client, spec, (0, Duration::ZERO), deadline).await?;
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

/// A NAT-PMP map request for `spec` (suggested external port, lifetime; zero deletes)
/// and the gateway's answer for that protocol.
async fn pmp_map(
    gateway: Gateway,
    client: IpAddr,
    spec: MapSpec,
    (external_port, lifetime): (u16, Duration),
    deadline: Instant,
) -> Result<natpmp::Response, String> {
    let req = natpmp::map_request(spec.proto, spec.internal_port, external_port, lifetime);
    udp_request(
        gateway,
        client,
        &req,
        deadline,
        |b| match natpmp::parse_response(b) {
            Ok(r @ natpmp::Response::Map { proto, .. }) if proto == spec.proto => Some(r),
            _ => None,
        },
    )
    .await
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
