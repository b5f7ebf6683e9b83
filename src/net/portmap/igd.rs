//! UPnP IGD control, pure parts: the device description (which WAN connection service
//! the gateway offers and where its control URL is), the SOAP envelopes of the four
//! actions used (IGD:1 and IGD:2 `WANIPConnection` / `WANPPPConnection`), and UPnP error
//! codes in words. The HTTP exchange is in `upnp.rs`.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use super::http::{self, HttpUrl};
use super::xml;
use crate::net::pipe::Proto;

/// WAN connection services, best first: IGD:2's has `AddAnyPortMapping`.
const WAN_SERVICES: [&str; 3] = [
    "urn:schemas-upnp-org:service:WANIPConnection:2",
    "urn:schemas-upnp-org:service:WANIPConnection:1",
    "urn:schemas-upnp-org:service:WANPPPConnection:1",
];

/// A WAN connection service found in a description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WanService {
    pub service_type: String,
    pub control: HttpUrl,
    /// 1 or 2, from the root device type (IGD:2 devices may list a :1 service).
    pub igd_version: u8,
}

impl WanService {
    /// `AddAnyPortMapping` exists from WANIPConnection:2 on.
    pub fn has_add_any(&self) -> bool {
        self.service_type.ends_with("WANIPConnection:2")
    }

    /// `WANIPConnection:2`, for messages.
    pub fn short_type(&self) -> String {
        let mut parts = self.service_type.rsplitn(3, ':');
        match (parts.next(), parts.next()) {
            (Some(version), Some(name)) => format!("{name}:{version}"),
            _ => self.service_type.clone(),
        }
    }
}

/// Why a description offers nothing usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DescriptionError {
    #[error("the description lists no WAN connection service (not an Internet Gateway Device)")]
    NoWanService,
    #[error(transparent)]
    Url(#[from] http::Error),
}

/// Finds the best WAN connection service in the description fetched from `location`.
/// `controlURL` is resolved against `URLBase` when there is one, else against the
/// location (UDA 1.1 §2.3 allows both).
pub fn parse_description(body: &str, location: &HttpUrl) -> Result<WanService, DescriptionError> {
    let base = match xml::text(body, "URLBase").filter(|b| !b.is_empty()) {
        Some(b) => HttpUrl::parse(&b)?,
        None => location.clone(),
    };
    let root_type = xml::text(body, "deviceType").unwrap_or_default();
    let igd_version = if root_type.ends_with("InternetGatewayDevice:2") {
        2
    } else {
        1
    };
    let services: Vec<(String, String)> = xml::elements(body, "service")
        .into_iter()
        .filter_map(|s| Some((xml::text(s, "serviceType")?, xml::text(s, "controlURL")?)))
        .collect();
    for wanted in WAN_SERVICES {
        if let Some((service_type, control)) = services.iter().find(|(t, _)| t == wanted) {
            return Ok(WanService {
                service_type: service_type.clone(),
                control: base.join(control)?,
                igd_version,
            });
        }
    }
    Err(DescriptionError::NoWanService)
}

/// One SOAP action request: (SOAPAction header value, body).
pub fn soap_request(service_type: &str, action: &str, args: &[(&str, String)]) -> (String, String) {
    let mut inner = String::new();
    for (name, value) in args {
        inner.push_str(&format!("<{name}>{}</{name}>", xml::escape(value)));
    }
    let body = format!(
        "<?xml version=\"1.0\"?>\r\n<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\" \
         s:encodingStyle=\"http://schemas.xmlsoap.org/soap/encoding/\"><s:Body>\
         <u:{action} xmlns:u=\"{service_type}\">{inner}</u:{action}></s:Body></s:Envelope>\r\n"
    );
    (format!("\"{service_type}#{action}\""), body)
}

/// The HTTP request for a SOAP action on `service`.
pub fn soap_http(service: &WanService, action: &str, args: &[(&str, String)]) -> Vec<u8> {
    let (soap_action, body) = soap_request(&service.service_type, action, args);
    http::post_request(
        &service.control,
        &[
            ("Content-Type", "text/xml; charset=\"utf-8\""),
            ("SOAPAction", &soap_action),
        ],
        &body,
    )
}

fn proto_name(proto: Proto) -> String {
    proto.to_string()
}

/// `GetExternalIPAddress` (no arguments). Creates nothing.
pub fn get_external_ip(service: &WanService) -> Vec<u8> {
    soap_http(service, "GetExternalIPAddress", &[])
}

/// What a mapping request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapArgs {
    pub proto: Proto,
    pub external_port: u16,
    pub internal_port: u16,
    pub internal_client: IpAddr,
    /// 0 means "permanent" to IGD:1 gateways.
    pub lease: Duration,
    pub description: String,
}

fn map_args(a: &MapArgs) -> Vec<(&'static str, String)> {
    vec![
        ("NewRemoteHost", String::new()),
        ("NewExternalPort", a.external_port.to_string()),
        ("NewProtocol", proto_name(a.proto)),
        ("NewInternalPort", a.internal_port.to_string()),
        ("NewInternalClient", a.internal_client.to_string()),
        ("NewEnabled", "1".into()),
        ("NewPortMappingDescription", a.description.clone()),
        (
            "NewLeaseDuration",
            a.lease.as_secs().min(u64::from(u32::MAX)).to_string(),
        ),
    ]
}

/// `AddPortMapping` (IGD:1 and :2): the external port is fixed by the request.
pub fn add_port_mapping(service: &WanService, a: &MapArgs) -> Vec<u8> {
    soap_http(service, "AddPortMapping", &map_args(a))
}

/// `AddAnyPortMapping` (WANIPConnection:2): the gateway picks a port if ours is taken.
pub fn add_any_port_mapping(service: &WanService, a: &MapArgs) -> Vec<u8> {
    soap_http(service, "AddAnyPortMapping", &map_args(a))
}

/// `DeletePortMapping`.
pub fn delete_port_mapping(service: &WanService, proto: Proto, external_port: u16) -> Vec<u8> {
    soap_http(
        service,
        "DeletePortMapping",
        &[
            ("NewRemoteHost", String::new()),
            ("NewExternalPort", external_port.to_string()),
            ("NewProtocol", proto_name(proto)),
        ],
    )
}

/// A failed action: the gateway's UPnP error, or an answer that is not one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SoapError {
    /// A SOAP fault with a UPnPError (UDA 1.1 §3.2.2).
    Upnp { code: u16, description: String },
    /// Any other non-200 answer.
    Status(u16),
}

impl SoapError {
    pub fn code(&self) -> Option<u16> {
        match self {
            SoapError::Upnp { code, .. } => Some(*code),
            SoapError::Status(_) => None,
        }
    }
}

/// UPnP error codes of UDA 1.1 §3.2.2 and IGD:2 WANIPConnection §2.5, in words.
pub fn error_words(code: u16) -> &'static str {
    match code {
        401 => "invalid action",
        402 => "invalid arguments",
        501 => "action failed",
        606 => "action not authorized",
        713 => "array index invalid",
        714 => "no such entry",
        715 => "wildcard not permitted in source IP",
        716 => "wildcard not permitted in external port",
        718 => "conflict in mapping entry",
        724 => "same port values required",
        725 => "only permanent leases supported",
        726 => "remote host only supports wildcard",
        727 => "external port only supports wildcard",
        728 => "no port maps available",
        729 => "conflict with other mechanisms",
        732 => "wildcard not permitted in internal port",
        _ => "error",
    }
}

impl fmt::Display for SoapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SoapError::Upnp { code, description } => {
                let words = error_words(*code);
                if words == "error" && !description.is_empty() {
                    write!(f, "{description} (error {code})")
                } else {
                    write!(f, "{words} (error {code})")
                }
            }
            SoapError::Status(s) => write!(f, "HTTP status {s}"),
        }
    }
}

/// Reads an action's answer: the arguments of `<ActionResponse>` on success.
pub fn parse_action(response: &http::Response, action: &str) -> Result<ActionResult, SoapError> {
    if response.status == 200 {
        let wanted = format!("{action}Response");
        let inner = xml::elements(&response.body, &wanted)
            .first()
            .map(|s| s.to_string())
            .unwrap_or_default();
        return Ok(ActionResult { inner });
    }
    let fault = xml::elements(&response.body, "UPnPError")
        .first()
        .map(|s| s.to_string());
    match fault.and_then(|f| {
        let code = xml::text(&f, "errorCode")?.parse().ok()?;
        Some((code, xml::text(&f, "errorDescription").unwrap_or_default()))
    }) {
        Some((code, description)) => Err(SoapError::Upnp { code, description }),
        None => Err(SoapError::Status(response.status)),
    }
}

/// The arguments of a successful action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionResult {
    inner: String,
}

impl ActionResult {
    pub fn arg(&self, name: &str) -> Option<String> {
        xml::text(&self.inner, name)
    }
}

#[cfg(test)]
mod tests;
