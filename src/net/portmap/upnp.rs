//! UPnP IGD over the network: one HTTP exchange per call on a fresh TCP connection
//! (`Connection: close`), bounded by a deadline. The texts and their meaning are in
//! `http.rs` and `igd.rs`; this file only moves bytes.

use std::net::SocketAddr;
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::http::{self, HttpUrl};
use super::igd::{self, MapArgs, SoapError, WanService};
use super::probe::UpnpFound;

/// Sends `request` to `to` and reads one response, all before `deadline`.
pub async fn exchange(
    to: SocketAddr,
    request: &[u8],
    deadline: Instant,
) -> Result<http::Response, String> {
    let deadline = tokio::time::Instant::from_std(deadline);
    let run = async {
        let mut stream = TcpStream::connect(to)
            .await
            .map_err(|e| format!("cannot connect to {to}: {e}"))?;
        stream
            .write_all(request)
            .await
            .map_err(|e| format!("cannot send to {to}: {e}"))?;
        let mut buf = Vec::with_capacity(4096);
        let mut chunk = [0u8; 4096];
        loop {
            let n = stream
                .read(&mut chunk)
                .await
                .map_err(|e| format!("reading from {to}: {e}"))?;
            buf.extend_from_slice(&chunk[..n]);
            match http::parse_response(&buf, n == 0) {
                Ok(Some(r)) => return Ok(r),
                Ok(None) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
    };
    match tokio::time::timeout_at(deadline, run).await {
        Ok(r) => r,
        Err(_) => Err(format!("no HTTP answer from {to} in time")),
    }
}

/// Fetches the description at `location`, finds the WAN service and asks for the
/// external address. Nothing is created on the gateway.
pub async fn discover(location: HttpUrl, deadline: Instant) -> Result<UpnpFound, String> {
    let r = exchange(location.addr, &http::get_request(&location), deadline).await?;
    if r.status != 200 {
        return Err(format!(
            "description request answered with HTTP status {}",
            r.status
        ));
    }
    let service = igd::parse_description(&r.body, &location).map_err(|e| e.to_string())?;
    if service.control.addr.ip() != location.addr.ip() {
        return Err(format!(
            "the control URL {} points away from the gateway",
            service.control
        ));
    }
    let answer = call(
        &service,
        "GetExternalIPAddress",
        igd::get_external_ip(&service),
        deadline,
    )
    .await
    .map_err(|e| format!("GetExternalIPAddress: {e}"))?;
    let external_ip = answer
        .arg("NewExternalIPAddress")
        .and_then(|t| t.parse().ok())
        .filter(|ip: &std::net::IpAddr| !ip.is_unspecified());
    Ok(UpnpFound {
        location,
        service,
        external_ip,
    })
}

/// Why a SOAP call failed: the gateway's error, or no usable answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    Soap(SoapError),
    Transport(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Soap(e) => e.fmt(f),
            CallError::Transport(e) => f.write_str(e),
        }
    }
}

async fn call(
    service: &WanService,
    action: &str,
    request: Vec<u8>,
    deadline: Instant,
) -> Result<igd::ActionResult, CallError> {
    let r = exchange(service.control.addr, &request, deadline)
        .await
        .map_err(CallError::Transport)?;
    igd::parse_action(&r, action).map_err(CallError::Soap)
}

/// `AddAnyPortMapping` on IGD:2 (the gateway may pick another port), else
/// `AddPortMapping`. Returns the external port granted.
pub async fn add(
    service: &WanService,
    args: &MapArgs,
    deadline: Instant,
) -> Result<u16, CallError> {
    if service.has_add_any() {
        let answer = call(
            service,
            "AddAnyPortMapping",
            igd::add_any_port_mapping(service, args),
            deadline,
        )
        .await;
        match answer {
            Ok(a) => {
                return Ok(a
                    .arg("NewReservedPort")
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(args.external_port));
            }
            // 401: a gateway claiming :2 without the action; fall back to :1's.
            Err(CallError::Soap(SoapError::Upnp { code: 401, .. })) => {}
            Err(e) => return Err(e),
        }
    }
    call(
        service,
        "AddPortMapping",
        igd::add_port_mapping(service, args),
        deadline,
    )
    .await
    .map(|_| args.external_port)
}

pub async fn delete(
    service: &WanService,
    proto: crate::net::pipe::Proto,
    external_port: u16,
    deadline: Instant,
) -> Result<(), CallError> {
    call(
        service,
        "DeletePortMapping",
        igd::delete_port_mapping(service, proto, external_port),
        deadline,
    )
    .await
    .map(|_| ())
}
