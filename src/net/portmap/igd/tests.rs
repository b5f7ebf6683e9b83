use super::*;

/// miniupnpd 2.3.1's root description (IGD:2), as served in the lab, shortened to the
/// elements that matter (the order and nesting are kept).
const MINIUPNPD_V2: &str = r#"<?xml version="1.0"?>
<root xmlns="urn:schemas-upnp-org:device-1-0" configId="1337"><specVersion><major>1</major><minor>1</minor></specVersion><device><deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:2</deviceType><friendlyName>Debian router</friendlyName><serviceList><service><serviceType>urn:schemas-upnp-org:service:Layer3Forwarding:1</serviceType><serviceId>urn:upnp-org:serviceId:L3Forwarding1</serviceId><SCPDURL>/L3F.xml</SCPDURL><controlURL>/ctl/L3F</controlURL><eventSubURL>/evt/L3F</eventSubURL></service><service><serviceType>urn:schemas-upnp-org:service:DeviceProtection:1</serviceType><serviceId>urn:upnp-org:serviceId:DeviceProtection1</serviceId><SCPDURL>/DP.xml</SCPDURL><controlURL>/ctl/DP</controlURL><eventSubURL>/evt/DP</eventSubURL></service></serviceList><deviceList><device><deviceType>urn:schemas-upnp-org:device:WANDevice:2</deviceType><serviceList><service><serviceType>urn:schemas-upnp-org:service:WANCommonInterfaceConfig:1</serviceType><serviceId>urn:upnp-org:serviceId:WANCommonIFC1</serviceId><SCPDURL>/WANCfg.xml</SCPDURL><controlURL>/ctl/CmnIfCfg</controlURL><eventSubURL>/evt/CmnIfCfg</eventSubURL></service></serviceList><deviceList><device><deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:2</deviceType><serviceList><service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:2</serviceType><serviceId>urn:upnp-org:serviceId:WANIPConn1</serviceId><SCPDURL>/WANIPCn.xml</SCPDURL><controlURL>/ctl/IPConn</controlURL><eventSubURL>/evt/IPConn</eventSubURL></service><service><serviceType>urn:schemas-upnp-org:service:WANIPv6FirewallControl:1</serviceType><serviceId>urn:upnp-org:serviceId:WANIPv6Firewall1</serviceId><SCPDURL>/WANIP6FC.xml</SCPDURL><controlURL>/ctl/IP6FCtl</controlURL><eventSubURL>/evt/IP6FCtl</eventSubURL></service></serviceList></device></deviceList></device></deviceList><presentationURL>http://10.77.0.1/</presentationURL></device></root>"#;

/// An IGD:1 DSL router in the style of many consumer boxes: a URLBase, prefixed tags,
/// only WANPPPConnection, a relative controlURL without a leading slash.
const PPP_V1: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<root xmlns="urn:schemas-upnp-org:device-1-0">
 <URLBase>http://192.168.1.1:49000/</URLBase>
 <device>
  <deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</deviceType>
  <deviceList><device>
   <deviceType>urn:schemas-upnp-org:device:WANDevice:1</deviceType>
   <deviceList><device>
    <deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:1</deviceType>
    <serviceList>
     <service>
      <serviceType>urn:schemas-upnp-org:service:WANPPPConnection:1</serviceType>
      <serviceId>urn:upnp-org:serviceId:WANPPPConnection1</serviceId>
      <controlURL>igdupnp/control/WANPPPConn1</controlURL>
     </service>
    </serviceList>
   </device></deviceList>
  </device></deviceList>
 </device>
</root>"#;

const MEDIA_SERVER: &str = r#"<root><device><deviceType>urn:schemas-upnp-org:device:MediaServer:1</deviceType><serviceList><service><serviceType>urn:schemas-upnp-org:service:ContentDirectory:1</serviceType><controlURL>/ctl/ContentDir</controlURL></service></serviceList></device></root>"#;

fn url(s: &str) -> HttpUrl {
    HttpUrl::parse(s).unwrap()
}

#[test]
fn miniupnpd_igd_v2() {
    let s = parse_description(MINIUPNPD_V2, &url("http://10.77.0.1:5000/rootDesc.xml")).unwrap();
    assert_eq!(
        s.service_type,
        "urn:schemas-upnp-org:service:WANIPConnection:2"
    );
    assert_eq!(s.control.to_string(), "http://10.77.0.1:5000/ctl/IPConn");
    assert_eq!(s.igd_version, 2);
    assert!(s.has_add_any());
    assert_eq!(s.short_type(), "WANIPConnection:2");
}

#[test]
fn ppp_igd_v1_with_url_base() {
    let s = parse_description(PPP_V1, &url("http://192.168.1.1:49000/igddesc.xml")).unwrap();
    assert_eq!(s.short_type(), "WANPPPConnection:1");
    assert_eq!(
        s.control.to_string(),
        "http://192.168.1.1:49000/igdupnp/control/WANPPPConn1"
    );
    assert_eq!(s.igd_version, 1);
    assert!(!s.has_add_any());
}

#[test]
fn ip_connection_preferred_over_ppp() {
    let both = PPP_V1.replace(
        "</serviceList>",
        "<service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</serviceType><controlURL>/ip</controlURL></service></serviceList>",
    );
    let s = parse_description(&both, &url("http://192.168.1.1:49000/")).unwrap();
    assert_eq!(s.short_type(), "WANIPConnection:1");
    assert_eq!(s.control.path, "/ip");
}

#[test]
fn not_a_gateway() {
    assert_eq!(
        parse_description(MEDIA_SERVER, &url("http://10.77.0.5:8200/d.xml")),
        Err(DescriptionError::NoWanService)
    );
    assert_eq!(
        parse_description("", &url("http://10.77.0.5/")),
        Err(DescriptionError::NoWanService)
    );
    // A control URL that points at another scheme is refused, not followed.
    let odd = MINIUPNPD_V2.replace("/ctl/IPConn", "https://10.77.0.1/ctl");
    assert!(matches!(
        parse_description(&odd, &url("http://10.77.0.1:5000/")),
        Err(DescriptionError::Url(_))
    ));
}

fn service() -> WanService {
    parse_description(MINIUPNPD_V2, &url("http://10.77.0.1:5000/rootDesc.xml")).unwrap()
}

#[test]
fn soap_envelopes() {
    let req = String::from_utf8(get_external_ip(&service())).unwrap();
    assert!(req.starts_with("POST /ctl/IPConn HTTP/1.1\r\nHost: 10.77.0.1:5000\r\n"));
    assert!(req.contains(
        "SOAPAction: \"urn:schemas-upnp-org:service:WANIPConnection:2#GetExternalIPAddress\"\r\n"
    ));
    assert!(req.contains(
        "<u:GetExternalIPAddress xmlns:u=\"urn:schemas-upnp-org:service:WANIPConnection:2\"></u:GetExternalIPAddress>"
    ));
    let args = MapArgs {
        proto: Proto::Udp,
        external_port: 4000,
        internal_port: 4001,
        internal_client: "10.77.0.10".parse().unwrap(),
        lease: Duration::from_secs(600),
        description: "p2pd <test>".into(),
    };
    let add = String::from_utf8(add_port_mapping(&service(), &args)).unwrap();
    for part in [
        "<NewRemoteHost></NewRemoteHost>",
        "<NewExternalPort>4000</NewExternalPort>",
        "<NewProtocol>UDP</NewProtocol>",
        "<NewInternalPort>4001</NewInternalPort>",
        "<NewInternalClient>10.77.0.10</NewInternalClient>",
        "<NewEnabled>1</NewEnabled>",
        "<NewPortMappingDescription>p2pd &lt;test&gt;</NewPortMappingDescription>",
        "<NewLeaseDuration>600</NewLeaseDuration>",
    ] {
        assert!(add.contains(part), "{part} missing from {add}");
    }
    let any = String::from_utf8(add_any_port_mapping(&service(), &args)).unwrap();
    assert!(any.contains("#AddAnyPortMapping\"\r\n"));
    let del = String::from_utf8(delete_port_mapping(&service(), Proto::Tcp, 4000)).unwrap();
    assert!(del.contains("<NewProtocol>TCP</NewProtocol>"));
    assert!(del.contains("<NewExternalPort>4000</NewExternalPort>"));
    // The Content-Length header counts the body exactly.
    let (head, body) = del.split_once("\r\n\r\n").unwrap();
    assert!(head.contains(&format!("Content-Length: {}\r\n", body.len())));
}

/// miniupnpd's answer with a documentation-range WAN address: an empty address.
#[test]
fn external_ip_answer() {
    let body = r#"<?xml version="1.0"?>
<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body><u:GetExternalIPAddressResponse xmlns:u="urn:schemas-upnp-org:service:WANIPConnection:2"><NewExternalIPAddress></NewExternalIPAddress></u:GetExternalIPAddressResponse></s:Body></s:Envelope>"#;
    let ok = http::Response {
        status: 200,
        body: body.into(),
    };
    let r = parse_action(&ok, "GetExternalIPAddress").unwrap();
    assert_eq!(r.arg("NewExternalIPAddress").as_deref(), Some(""));
    let filled = body.replace(
        "<NewExternalIPAddress></",
        "<NewExternalIPAddress>203.0.113.100</",
    );
    let r = parse_action(
        &http::Response {
            status: 200,
            body: filled,
        },
        "GetExternalIPAddress",
    )
    .unwrap();
    assert_eq!(
        r.arg("NewExternalIPAddress").as_deref(),
        Some("203.0.113.100")
    );
}

/// miniupnpd's refusal of AddPortMapping (WAN address in a reserved range).
#[test]
fn faults_in_words() {
    let body = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body><s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring><detail><UPnPError xmlns="urn:schemas-upnp-org:control-1-0"><errorCode>501</errorCode><errorDescription>ActionFailed</errorDescription></UPnPError></detail></s:Fault></s:Body></s:Envelope>"#;
    let err = parse_action(
        &http::Response {
            status: 500,
            body: body.into(),
        },
        "AddPortMapping",
    )
    .unwrap_err();
    assert_eq!(err.code(), Some(501));
    assert_eq!(err.to_string(), "action failed (error 501)");
    let conflict = body
        .replace(">501<", ">718<")
        .replace("ActionFailed", "ConflictInMappingEntry");
    let err = parse_action(
        &http::Response {
            status: 500,
            body: conflict,
        },
        "AddPortMapping",
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "conflict in mapping entry (error 718)");
    let vendor = body
        .replace(">501<", ">899<")
        .replace("ActionFailed", "VendorSpecific");
    let err = parse_action(
        &http::Response {
            status: 500,
            body: vendor,
        },
        "X",
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "VendorSpecific (error 899)");
    let err = parse_action(
        &http::Response {
            status: 404,
            body: "nope".into(),
        },
        "X",
    )
    .unwrap_err();
    assert_eq!(err, SoapError::Status(404));
}
