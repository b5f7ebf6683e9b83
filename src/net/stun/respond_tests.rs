//! Table tests of `respond`: which socket answers each change request, classic vs RFC 5389
//! attributes, single-address refusals, error replies and silence.

use super::*;
use crate::net::stun::RequestOptions;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

const CLIENT: &str = "198.51.100.5:40000";

fn four() -> ServerConfig {
    ServerConfig::new(addr("203.0.113.1:3478"), Some(addr("203.0.113.2:3479")))
}

fn request(opts: RequestOptions) -> Vec<u8> {
    opts.to_repr().unwrap().to_bytes().unwrap()
}

/// What the first of `four()` sockets answers to `bytes` from CLIENT over UDP.
fn answer(bytes: &[u8]) -> Option<Reply> {
    respond(
        bytes,
        addr(CLIENT),
        addr("203.0.113.1:3478"),
        &four(),
        Transport::Udp,
    )
}

/// A binding request followed by 8 raw bytes of attributes.
fn request_with_attributes(raw: [u8; 8]) -> Vec<u8> {
    let mut b = request(RequestOptions::binding());
    b.extend_from_slice(&raw);
    b[3] = 8;
    b
}

fn parse(bytes: &[u8]) -> Repr {
    Repr::parse(&Packet::new_checked(bytes).unwrap()).unwrap()
}

#[test]
fn four_sockets_in_documented_order() {
    let addrs: Vec<String> = four().local_addrs().iter().map(|a| a.to_string()).collect();
    assert_eq!(
        addrs,
        [
            "203.0.113.1:3478",
            "203.0.113.1:3479",
            "203.0.113.2:3478",
            "203.0.113.2:3479"
        ]
    );
}

#[test]
fn every_change_request_answers_from_the_right_socket() {
    let cfg = four();
    // (received on, change, expected source)
    let table = [
        ("203.0.113.1:3478", ChangeRequest::NONE, "203.0.113.1:3478"),
        ("203.0.113.1:3478", ChangeRequest::PORT, "203.0.113.1:3479"),
        ("203.0.113.1:3478", ChangeRequest::IP, "203.0.113.2:3478"),
        ("203.0.113.1:3478", ChangeRequest::BOTH, "203.0.113.2:3479"),
        ("203.0.113.2:3479", ChangeRequest::BOTH, "203.0.113.1:3478"),
        ("203.0.113.2:3478", ChangeRequest::PORT, "203.0.113.2:3479"),
        ("203.0.113.1:3479", ChangeRequest::IP, "203.0.113.2:3479"),
    ];
    for (local, change, expect) in table {
        for classic in [false, true] {
            let mut opts = RequestOptions::change(change);
            opts.classic = classic;
            let reply = respond(
                &request(opts),
                addr(CLIENT),
                addr(local),
                &cfg,
                Transport::Udp,
            )
            .unwrap();
            assert_eq!(
                reply.from,
                addr(expect),
                "{local} {change:?} classic={classic}"
            );
            assert_eq!(reply.to, addr(CLIENT));
            let r = parse(&reply.bytes);
            assert_eq!(r.class, Class::SuccessResponse);
            assert_eq!(r.mapped(), Some(addr(CLIENT)));
            assert_eq!(r.origin(), Some(addr(expect)));
            // OTHER-ADDRESS / CHANGED-ADDRESS: differs from the receiving socket in both parts.
            assert_eq!(r.alternate(), cfg.changed(addr(local), ChangeRequest::BOTH));
            if classic {
                assert!(r.xor_mapped_address.is_none() && r.response_origin.is_none());
                assert!(r.source_address.is_some() && r.changed_address.is_some());
            } else {
                assert!(
                    r.xor_mapped_address.is_some() && r.other_address.is_some() && r.fingerprint
                );
                assert!(r.source_address.is_none() && r.changed_address.is_none());
            }
        }
    }
}

#[test]
fn single_address_serves_bindings_and_refuses_changes() {
    let cfg = ServerConfig::new(addr("203.0.113.1:3478"), None);
    let local = addr("203.0.113.1:3478");
    let r = respond(
        &request(RequestOptions::binding()),
        addr(CLIENT),
        local,
        &cfg,
        Transport::Udp,
    )
    .unwrap();
    let m = parse(&r.bytes);
    assert_eq!(
        (r.from, m.mapped(), m.other_address),
        (local, Some(addr(CLIENT)), None)
    );
    assert_eq!(m.response_origin, Some(local));
    let r = respond(
        &request(RequestOptions::change(ChangeRequest::PORT)),
        addr(CLIENT),
        local,
        &cfg,
        Transport::Udp,
    )
    .unwrap();
    let m = parse(&r.bytes);
    assert_eq!(m.class, Class::ErrorResponse);
    assert_eq!(m.error_code.unwrap().code, 420);
    assert_eq!(m.unknown_attributes, [0x0003]);
}

#[test]
fn tcp_ignores_change_request() {
    let local = addr("203.0.113.1:3478");
    let r = respond(
        &request(RequestOptions::change(ChangeRequest::BOTH)),
        addr(CLIENT),
        local,
        &four(),
        Transport::Tcp,
    )
    .unwrap();
    assert_eq!(r.from, local);
    assert_eq!(parse(&r.bytes).response_origin, Some(local));
}

#[test]
fn response_port_redirects_reply() {
    let mut opts = RequestOptions::binding();
    opts.response_port = Some(5555);
    let r = answer(&request(opts)).unwrap();
    assert_eq!(r.to, addr("198.51.100.5:5555"));
}

#[test]
fn unknown_required_attributes_get_420_listing_them() {
    let r = answer(&request_with_attributes([
        0x7f, 0x01, 0, 0, 0x00, 0x77, 0, 0,
    ]))
    .unwrap();
    let m = parse(&r.bytes);
    assert_eq!(m.error_code.unwrap().code, 420);
    assert_eq!(m.unknown_attributes, [0x7f01, 0x0077]);
}

#[test]
fn silence_for_non_requests_and_garbage() {
    assert!(answer(b"GET / HTTP/1.1\r\n\r\n").is_none());
    let success = Repr::binding_success(TransactionId::random().unwrap())
        .to_bytes()
        .unwrap();
    assert!(answer(&success).is_none());
    let mut fp = Repr::binding_request(TransactionId::random().unwrap());
    fp.fingerprint = true;
    let mut b = fp.to_bytes().unwrap();
    let last = b.len() - 1;
    b[last] ^= 1;
    assert!(answer(&b).is_none());
}

#[test]
fn malformed_known_attribute_gets_400() {
    // CHANGE-REQUEST with a 2-byte value.
    let r = answer(&request_with_attributes([
        0x00, 0x03, 0x00, 0x02, 0, 0, 0, 0,
    ]))
    .unwrap();
    assert_eq!(parse(&r.bytes).error_code.unwrap().code, 400);
}
