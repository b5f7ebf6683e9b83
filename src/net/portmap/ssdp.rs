//! SSDP discovery of an Internet Gateway Device (UPnP Device Architecture 1.1 §1.3):
//! the M-SEARCH requests a client sends and a parser for the answers. Pure text in,
//! text out; the socket and the waiting live in `probe.rs`.
//!
//! Gateways answer in odd ways, so the parser is lenient where it costs nothing: header
//! names in any case, any amount of space after the colon, a reply from a port other
//! than 1900, and a device that names itself only in `USN` (or only in `ST`). A gateway
//! may send several answers with different `LOCATION`s (a media server first, the IGD
//! later): the probe keeps every location, not only the first.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The SSDP port (UDA 1.1 §1.1.2).
pub const PORT: u16 = 1900;
/// The IPv4 SSDP multicast group.
pub const MULTICAST_V4: Ipv4Addr = Ipv4Addr::new(239, 255, 255, 250);
/// The IPv6 link-local SSDP multicast group.
pub const MULTICAST_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0xc);

/// The search targets asked for: the IGD device types of IGD v1 and v2.
pub const IGD_TARGETS: [&str; 2] = [
    "urn:schemas-upnp-org:device:InternetGatewayDevice:1",
    "urn:schemas-upnp-org:device:InternetGatewayDevice:2",
];

/// Names that mark a reply as coming from (a part of) an IGD.
const IGD_MARKERS: [&str; 4] = [
    "InternetGatewayDevice",
    "WANIPConnection",
    "WANPPPConnection",
    "WANConnectionDevice",
];

/// The multicast group for the family of `gateway`.
pub fn multicast_for(gateway: IpAddr) -> SocketAddr {
    match gateway {
        IpAddr::V4(_) => SocketAddr::new(MULTICAST_V4.into(), PORT),
        IpAddr::V6(_) => SocketAddr::new(MULTICAST_V6.into(), PORT),
    }
}

/// An M-SEARCH for `target` sent to `to`. A multicast search carries `MX: 1` (devices
/// may wait up to that many seconds, at random, before answering); a unicast one has
/// no MX, so the device answers at once (UDA 1.1 §1.3.2).
pub fn search_request(to: SocketAddr, target: &str) -> String {
    let multicast = to.ip().is_multicast();
    let mx = if multicast { "MX: 1\r\n" } else { "" };
    format!(
        "M-SEARCH * HTTP/1.1\r\nHOST: {to}\r\nMAN: \"ssdp:discover\"\r\n{mx}ST: {target}\r\n\r\n"
    )
}

/// Why a datagram is not an answer to a search.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("not an SSDP answer (first line {0:?})")]
    NotResponse(String),
    #[error("SSDP answer with status {0}")]
    Status(u16),
    #[error("SSDP answer without LOCATION")]
    NoLocation,
}

/// One answer to an M-SEARCH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchResponse {
    pub location: String,
    pub st: Option<String>,
    pub usn: Option<String>,
    pub server: Option<String>,
}

impl SearchResponse {
    /// Whether the answer names an IGD or one of its WAN services.
    pub fn is_igd(&self) -> bool {
        [&self.st, &self.usn]
            .into_iter()
            .flatten()
            .any(|v| IGD_MARKERS.iter().any(|m| v.contains(m)))
    }
}

/// Parses the text of a datagram as an answer to a search (`HTTP/1.1 200 OK` with
/// headers). Header names are matched without regard to case.
pub fn parse_response(bytes: &[u8]) -> Result<SearchResponse, Error> {
    let text = String::from_utf8_lossy(bytes);
    let mut lines = text.split('\n').map(|l| l.trim_end_matches('\r'));
    let first = lines.next().unwrap_or_default();
    let mut parts = first.split_whitespace();
    let (Some(version), Some(status)) = (parts.next(), parts.next()) else {
        return Err(Error::NotResponse(first.chars().take(40).collect()));
    };
    if !version.to_ascii_uppercase().starts_with("HTTP/") {
        return Err(Error::NotResponse(first.chars().take(40).collect()));
    }
    let status: u16 = status
        .parse()
        .map_err(|_| Error::NotResponse(first.chars().take(40).collect()))?;
    if status != 200 {
        return Err(Error::Status(status));
    }
    let mut out = SearchResponse {
        location: String::new(),
        st: None,
        usn: None,
        server: None,
    };
    for line in lines {
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim().to_string();
        match name.trim().to_ascii_lowercase().as_str() {
            "location" if out.location.is_empty() => out.location = value,
            "st" => out.st = Some(value),
            "usn" => out.usn = Some(value),
            "server" => out.server = Some(value),
            _ => {}
        }
    }
    if out.location.is_empty() {
        return Err(Error::NoLocation);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Captured from miniupnpd 2.3.1 (unicast and multicast answers are the same).
    const MINIUPNPD: &str = "HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\nUSN: uuid:3d3cec3a-8cf0-11e0-98ee-001a6bd2d07b::urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\nEXT:\r\nSERVER: Debian/6.18.44-fc-v1045 UPnP/1.1 MiniUPnPd/2.3.1\r\nLOCATION: http://10.77.0.1:5000/rootDesc.xml\r\nOPT: \"http://schemas.upnp.org/upnp/1/0/\"; ns=01\r\n01-NLS: 1796302122\r\nBOOTID.UPNP.ORG: 1796302122\r\nCONFIGID.UPNP.ORG: 1337\r\n\r\n";

    #[test]
    fn miniupnpd_answer() {
        let r = parse_response(MINIUPNPD.as_bytes()).expect("parses");
        assert_eq!(r.location, "http://10.77.0.1:5000/rootDesc.xml");
        assert!(r.is_igd());
        assert_eq!(
            r.server.as_deref(),
            Some("Debian/6.18.44-fc-v1045 UPnP/1.1 MiniUPnPd/2.3.1")
        );
    }

    /// Lower-case names, no space after the colon, bare LF line ends, IGD named only in
    /// USN (a consumer router answering `ST: upnp:rootdevice`).
    #[test]
    fn sloppy_router_answer() {
        let text = "HTTP/1.1 200 OK\ncache-control:max-age=1800\nlocation:http://192.168.1.1:49152/gatedesc.xml\nst:upnp:rootdevice\nusn:uuid:75802409-bccb-40e7-8e6c-fa095ecce13e::urn:schemas-upnp-org:device:InternetGatewayDevice:1\n\n";
        let r = parse_response(text.as_bytes()).expect("parses");
        assert_eq!(r.location, "http://192.168.1.1:49152/gatedesc.xml");
        assert!(r.is_igd());
    }

    /// A media server answering the same search is not an IGD.
    #[test]
    fn other_devices_are_not_igds() {
        let text = "HTTP/1.1 200 OK\r\nST: urn:schemas-upnp-org:device:MediaServer:1\r\nUSN: uuid:1::urn:schemas-upnp-org:device:MediaServer:1\r\nLOCATION: http://10.77.0.5:8200/rootDesc.xml\r\n\r\n";
        assert!(!parse_response(text.as_bytes()).expect("parses").is_igd());
    }

    #[test]
    fn non_answers_are_errors() {
        let search = search_request("10.77.0.1:1900".parse().unwrap(), IGD_TARGETS[0]);
        assert!(matches!(
            parse_response(search.as_bytes()),
            Err(Error::NotResponse(_))
        ));
        assert_eq!(
            parse_response(b"HTTP/1.1 404 Not Found\r\n\r\n"),
            Err(Error::Status(404))
        );
        assert_eq!(
            parse_response(b"HTTP/1.1 200 OK\r\nST: x\r\n\r\n"),
            Err(Error::NoLocation)
        );
        assert!(parse_response(b"").is_err());
        assert!(parse_response(&[0, 128, 0, 3]).is_err());
        assert!(parse_response(b"HTTP/1.1 abc").is_err());
    }

    #[test]
    fn search_requests() {
        let uni = search_request("10.77.0.1:1900".parse().unwrap(), IGD_TARGETS[1]);
        assert_eq!(
            uni,
            "M-SEARCH * HTTP/1.1\r\nHOST: 10.77.0.1:1900\r\nMAN: \"ssdp:discover\"\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:2\r\n\r\n"
        );
        let multi = search_request(multicast_for("10.77.0.1".parse().unwrap()), IGD_TARGETS[0]);
        assert!(multi.contains("HOST: 239.255.255.250:1900\r\n"));
        assert!(multi.contains("MX: 1\r\n"));
        let v6 = search_request(multicast_for("fe80::1".parse().unwrap()), IGD_TARGETS[0]);
        assert!(v6.contains("HOST: [ff02::c]:1900\r\n"));
    }
}
