//! Runs a [`Probe`] on one UDP socket: sends what it asks, feeds it what arrives, sleeps
//! until its next timeout, and runs each UPnP LOCATION's HTTP part as a task of its
//! own. Every decision is the probe's.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;

use socket2::{Domain, Protocol as SockProto, Socket, Type};
use tokio::net::UdpSocket;
use tokio::task::JoinSet;

use super::gateway::Gateway;
use super::probe::{Probe, ProbeOptions};
use super::report::PortmapReport;
use super::upnp;

/// The source address the OS uses towards the gateway (a connected UDP socket sends
/// nothing).
pub fn source_towards(gateway: &Gateway) -> std::io::Result<IpAddr> {
    let any: SocketAddr = match gateway.ip {
        IpAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        IpAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let s = std::net::UdpSocket::bind(any)?;
    s.connect(gateway.at(super::natpmp::SERVER_PORT))?;
    Ok(s.local_addr()?.ip())
}

/// A UDP socket on `client`, any port, whose multicast leaves by `client`'s interface.
pub fn bind_udp(client: IpAddr) -> std::io::Result<UdpSocket> {
    let domain = if client.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    };
    let socket = Socket::new(domain, Type::DGRAM, Some(SockProto::UDP))?;
    if let IpAddr::V4(v4) = client {
        socket.set_multicast_if_v4(&v4)?;
        // UDA 1.1 §1.1.2: TTL 2 for SSDP.
        socket.set_multicast_ttl_v4(2)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&SocketAddr::new(client, 0).into())?;
    UdpSocket::from_std(socket.into())
}

/// Probes `gateway` for UPnP IGD, NAT-PMP and PCP. Never fails: a socket that cannot be
/// made, or a gateway that is not there, gives a report where nothing answered.
pub async fn probe(gateway: Gateway, opts: ProbeOptions) -> PortmapReport {
    let client = source_towards(&gateway).unwrap_or(match gateway.ip {
        IpAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        IpAddr::V6(_) => std::net::Ipv6Addr::UNSPECIFIED.into(),
    });
    probe_from(client, gateway, opts).await
}

/// [`probe`] from a given local address.
pub async fn probe_from(client: IpAddr, gateway: Gateway, opts: ProbeOptions) -> PortmapReport {
    let started = Instant::now();
    let mut probe = Probe::new(started, gateway.ip, client, opts);
    let Ok(socket) = bind_udp(client) else {
        // Nothing can be sent: the probe's own timeout says "no answer".
        return finish_silent(probe, started + opts.timeout).await;
    };
    let deadline = started + opts.timeout;
    let mut fetches = JoinSet::new();
    let mut buf = vec![0u8; 2048];
    loop {
        while let Some(t) = probe.poll_transmit() {
            // SSDP multicast from a loopback gateway would leave by a real interface:
            // a loopback "gateway" is a test and gets unicast only.
            if t.to.ip().is_multicast() && gateway.ip.is_loopback() {
                continue;
            }
            let _ = socket.send_to(&t.bytes, gateway.with_scope(t.to)).await;
        }
        while let Some(location) = probe.poll_location() {
            fetches.spawn(async move {
                let r = upnp::discover(location.clone(), deadline).await;
                (location, r)
            });
        }
        let Some(at) = probe.poll_timeout() else {
            break;
        };
        tokio::select! {
            r = socket.recv_from(&mut buf) => {
                if let Ok((n, from)) = r {
                    probe.handle_datagram(Instant::now(), from, &buf[..n]);
                }
            }
            Some(joined) = fetches.join_next(), if !fetches.is_empty() => {
                if let Ok((location, r)) = joined {
                    probe.handle_upnp(Instant::now(), &location, r);
                }
            }
            _ = tokio::time::sleep_until(at.into()) => probe.handle_timeout(Instant::now()),
        }
    }
    fetches.abort_all();
    probe.report(Instant::now())
}

async fn finish_silent(mut probe: Probe, deadline: Instant) -> PortmapReport {
    while probe.poll_transmit().is_some() {}
    tokio::time::sleep_until(deadline.into()).await;
    probe.handle_timeout(deadline);
    probe.report(deadline)
}
