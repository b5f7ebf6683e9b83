//! A local world for a machine without internet: what the tutorial talks to, on loopback.
//!
//! The tutorial needs STUN servers (for `Interface().start()` and `load_nat()`) and a web
//! server at `www.google.com:80` (for its first networking program). [`LocalWorld`] starts
//! both on loopback aliases, which Linux routes without any configuration:
//! - the built-in STUN server on 127.0.0.1 and 127.0.0.2, each on its own free port: two
//!   IPs times two ports, so RFC 5780's CHANGE-REQUEST tests work as with a real server;
//! - the web stand-in ([`web`]) on 127.0.0.80, port 80 when it can be bound (root, or a
//!   lowered `net.ipv4.ip_unprivileged_port_start`), else a free high port. Either way the
//!   session reaches it through a hosts entry `"www.google.com:80" -> "127.0.0.80:PORT"`,
//!   so the tutorial's `Address("www.google.com", 80, route)` runs unchanged.
//!
//! Whether to use it is [`detect`]'s question. Everything closes when the world is dropped.

pub mod detect;
pub mod web;

use crate::net::stun::StunServer;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// The site the web stand-in answers for, and the port the tutorial uses.
pub const WEB_SITE: (&str, u16) = ("www.google.com", 80);
/// Where the web stand-in listens.
pub const WEB_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 80);
/// The STUN server's two addresses (ports are picked free).
pub const STUN_IPS: [Ipv4Addr; 2] = [Ipv4Addr::new(127, 0, 0, 1), Ipv4Addr::new(127, 0, 0, 2)];

/// The running stand-ins.
pub struct LocalWorld {
    stun: StunServer,
    web: web::StandIn,
}

impl LocalWorld {
    pub async fn start() -> io::Result<LocalWorld> {
        let [primary, alternate] = STUN_IPS.map(|ip| SocketAddr::new(IpAddr::V4(ip), 0));
        let stun = StunServer::start(primary, Some(alternate))
            .await
            .map_err(|e| io::Error::new(e.kind(), format!("the STUN server on {primary}: {e}")))?;
        let web = web::StandIn::start(IpAddr::V4(WEB_IP), &[WEB_SITE.1, 0])
            .await
            .map_err(|e| io::Error::new(e.kind(), format!("the web stand-in on {WEB_IP}: {e}")))?;
        Ok(LocalWorld { stun, web })
    }

    /// The two addresses a client uses: the primary, and the alternate IP and port.
    pub fn stun_servers(&self) -> [SocketAddr; 2] {
        let addrs = self.stun.local_addrs();
        [addrs[0], addrs[addrs.len() - 1]]
    }

    pub fn web_addr(&self) -> SocketAddr {
        self.web.local_addr()
    }

    /// The hosts entries that send the tutorial's site to the stand-in.
    pub fn hosts(&self) -> Vec<(String, String)> {
        let (site, port) = WEB_SITE;
        vec![(format!("{site}:{port}"), self.web_addr().to_string())]
    }

    /// What stands in for what, one line each, for the shell's one-time notice.
    pub fn describe(&self) -> Vec<String> {
        let [a, b] = self.stun_servers();
        let (site, port) = WEB_SITE;
        vec![
            format!("STUN servers: the built-in server on {a} and {b} (RFC 5780: 2 IPs x 2 ports)"),
            format!(
                "{site}:{port}: a local web stand-in on {} that answers like a web server (see hosts())",
                self.web_addr()
            ),
        ]
    }

    /// Stops both servers; their ports are free when this returns.
    pub async fn close(&mut self) {
        self.stun.close().await;
        self.web.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn the_world_serves_stun_and_the_stand_in() {
        let mut world = LocalWorld::start().await.unwrap();
        let [a, b] = world.stun_servers();
        assert_eq!((a.ip(), b.ip()), (STUN_IPS[0].into(), STUN_IPS[1].into()));
        assert_ne!(a.port(), b.port());
        let hosts = world.hosts();
        assert_eq!(hosts[0].0, "www.google.com:80");
        assert_eq!(hosts[0].1, world.web_addr().to_string());

        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let r = crate::net::stun::binding(
            &socket,
            a,
            crate::net::stun::RequestOptions::binding(),
            crate::net::stun::DEFAULT_RTO,
            std::time::Duration::from_secs(2),
        )
        .await
        .unwrap();
        assert_eq!(r.mapped, socket.local_addr().unwrap());

        let mut c = tokio::net::TcpStream::connect(world.web_addr())
            .await
            .unwrap();
        c.write_all(b"Test\r\n\r\n").await.unwrap();
        let mut got = Vec::new();
        c.read_to_end(&mut got).await.unwrap();
        assert!(got.starts_with(b"HTTP/1.0 400 Bad Request"));
        world.close().await;
    }
}
