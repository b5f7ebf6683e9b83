//! STUN client against the built-in server on loopback: 127.0.0.1 and 127.0.0.2 are the two
//! server IPs (both answer on Linux's `lo` without configuration). Checks every CHANGE-REQUEST
//! combination by the real source address and by RESPONSE-ORIGIN/SOURCE-ADDRESS, RFC 3489
//! mode, TCP, one socket shared by concurrent probes, and bounded failure against silence.

use p2pd::net::config::{StunServer as ServerEntry, StunSource};
use p2pd::net::interface::external::{self, QueryError};
use p2pd::net::stun::{
    self, Accept, ChangeRequest, RequestOptions, ServerSockets, StunServer, binding, binding_tcp,
    bindings, client,
};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;

const RTO: Duration = Duration::from_millis(50);
const TIMEOUT: Duration = Duration::from_secs(3);

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

async fn four_address_server() -> StunServer {
    StunServer::start(addr("127.0.0.1:0"), Some(addr("127.0.0.2:0")))
        .await
        .unwrap()
}

async fn client_socket() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").await.unwrap()
}

#[tokio::test]
async fn plain_binding_reports_mapping_origin_and_other_address() {
    let server = four_address_server().await;
    let [primary, _, _, alt] = server.local_addrs() else {
        panic!("expected four addresses")
    };
    assert_eq!(primary.ip().to_string(), "127.0.0.1");
    assert_eq!(alt.ip().to_string(), "127.0.0.2");
    assert_ne!(primary.port(), alt.port());
    let socket = client_socket().await;
    let r = binding(&socket, *primary, RequestOptions::binding(), RTO, TIMEOUT)
        .await
        .unwrap();
    assert_eq!(r.mapped, socket.local_addr().unwrap());
    assert_eq!(r.from, *primary);
    assert_eq!(r.response_origin, Some(*primary));
    assert_eq!(r.other_address, Some(*alt));
    assert_eq!(r.local, socket.local_addr().unwrap());
    assert!(r.message.xor_mapped_address.is_some() && r.message.fingerprint);
}

/// (change, expected source) for a request sent to the primary address.
fn change_table(server: &StunServer) -> Vec<(ChangeRequest, SocketAddr)> {
    let a = server.local_addrs();
    vec![
        (ChangeRequest::NONE, a[0]),
        (ChangeRequest::PORT, a[1]),
        (ChangeRequest::IP, a[2]),
        (ChangeRequest::BOTH, a[3]),
    ]
}

#[tokio::test]
async fn every_change_request_is_answered_from_the_right_address() {
    let server = four_address_server().await;
    let primary = server.local_addrs()[0];
    let socket = client_socket().await;
    for classic in [false, true] {
        for (change, expect) in change_table(&server) {
            let mut opts = RequestOptions::change(change);
            opts.classic = classic;
            // Inferred rule (differs in exactly the changed parts), then the explicit address.
            for accept in [Accept::Auto, Accept::Exactly(expect)] {
                let opts = opts.clone().accept(accept);
                let r = binding(&socket, primary, opts, RTO, TIMEOUT).await.unwrap();
                assert_eq!(r.from, expect, "{change:?} classic={classic}");
                assert_eq!(
                    r.response_origin,
                    Some(expect),
                    "{change:?} classic={classic}"
                );
                assert_eq!(r.mapped, socket.local_addr().unwrap());
                assert_eq!(r.other_address, Some(server.local_addrs()[3]));
            }
        }
    }
}

#[tokio::test]
async fn rfc3489_mode_uses_classic_attributes() {
    let server = four_address_server().await;
    let primary = server.local_addrs()[0];
    let socket = client_socket().await;
    let opts = RequestOptions::change(ChangeRequest::BOTH).classic();
    let r = binding(&socket, primary, opts, RTO, TIMEOUT).await.unwrap();
    assert!(r.message.transaction_id.is_classic());
    assert_eq!(r.message.xor_mapped_address, None);
    assert_eq!(r.message.mapped_address, Some(socket.local_addr().unwrap()));
    assert_eq!(r.message.source_address, Some(server.local_addrs()[3]));
    assert_eq!(r.message.changed_address, Some(server.local_addrs()[3]));
    assert_eq!(r.message.response_origin, None);
}

#[tokio::test]
async fn concurrent_probes_share_one_socket() {
    let server = four_address_server().await;
    let primary = server.local_addrs()[0];
    let socket = client_socket().await;
    let table = change_table(&server);
    let requests: Vec<_> = table
        .iter()
        .map(|(c, _)| (primary, RequestOptions::change(*c)))
        .collect();
    let results = bindings(&socket, &requests, RTO, TIMEOUT).await;
    for ((change, expect), r) in table.iter().zip(results) {
        assert_eq!(r.unwrap().from, *expect, "{change:?}");
    }
}

#[tokio::test]
async fn tcp_binding_on_every_address() {
    let server = four_address_server().await;
    for target in server.local_addrs() {
        let r = binding_tcp(None, *target, RequestOptions::binding(), TIMEOUT)
            .await
            .unwrap();
        assert_eq!(r.from, *target);
        assert_eq!(r.response_origin, Some(*target));
        assert_eq!(r.mapped, r.local, "loopback has no NAT");
    }
    // From a chosen local address; a change request over TCP is answered in place.
    let opts = RequestOptions::change(ChangeRequest::BOTH);
    let r = binding_tcp(
        Some(addr("127.0.0.1:0")),
        server.local_addrs()[0],
        opts,
        TIMEOUT,
    )
    .await
    .unwrap();
    assert_eq!(r.response_origin, Some(server.local_addrs()[0]));
}

#[tokio::test]
async fn silent_server_times_out_in_bounded_time() {
    let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let target = silent.local_addr().unwrap();
    let socket = client_socket().await;
    let started = Instant::now();
    let timeout = Duration::from_millis(400);
    let err = binding(&socket, target, RequestOptions::binding(), RTO, timeout)
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    let client::Error::Timeout {
        server, transmits, ..
    } = err
    else {
        panic!("expected timeout, got {err}")
    };
    assert_eq!(server, target);
    assert!(transmits >= 2, "retransmitted: {transmits}");
    assert!(
        elapsed >= timeout && elapsed < Duration::from_secs(5),
        "{elapsed:?}"
    );
    // The request did arrive: the silence is the server's, not a send failure.
    let mut buf = [0u8; 512];
    let (n, _) = silent.recv_from(&mut buf).await.unwrap();
    assert!(stun::Packet::new_checked(&buf[..n]).is_ok());
}

#[tokio::test]
async fn silent_tcp_server_times_out() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = listener.local_addr().unwrap();
    let hold = tokio::spawn(async move {
        let conn = listener.accept().await;
        tokio::time::sleep(Duration::from_secs(5)).await;
        drop(conn);
    });
    let started = Instant::now();
    let err = binding_tcp(
        None,
        target,
        RequestOptions::binding(),
        Duration::from_millis(300),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, client::Error::Timeout { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(3));
    hold.abort();
}

#[tokio::test]
async fn wrong_source_reply_is_not_accepted() {
    // Ask for a change but accept only the primary address: the reply from the alternate
    // must be ignored, so the transaction times out.
    let server = four_address_server().await;
    let primary = server.local_addrs()[0];
    let socket = client_socket().await;
    let opts = RequestOptions::change(ChangeRequest::BOTH).accept(Accept::Exactly(primary));
    let err = binding(&socket, primary, opts, RTO, Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(matches!(err, client::Error::Timeout { .. }), "{err}");
}

#[tokio::test]
async fn single_address_server_refuses_change_requests() {
    let server = StunServer::start(addr("127.0.0.1:0"), None).await.unwrap();
    assert_eq!(server.local_addrs().len(), 1);
    let target = server.local_addrs()[0];
    let socket = client_socket().await;
    let r = binding(&socket, target, RequestOptions::binding(), RTO, TIMEOUT)
        .await
        .unwrap();
    assert_eq!(
        (r.mapped, r.other_address),
        (socket.local_addr().unwrap(), None)
    );
    let opts = RequestOptions::change(ChangeRequest::PORT).accept(Accept::Any);
    match binding(&socket, target, opts, RTO, TIMEOUT).await {
        Err(client::Error::ErrorResponse { code: 420, .. }) => {}
        other => panic!("expected 420, got {other:?}"),
    }
}

#[tokio::test]
async fn lookup_accepts_names_and_addresses() {
    let server = four_address_server().await;
    let primary = server.local_addrs()[0];
    let query = |entry: String| async move {
        let entry = ServerEntry::parse(&entry, StunSource::Explicit).unwrap();
        external::query(&entry, addr("127.0.0.1:0"), TIMEOUT, TIMEOUT, RTO).await
    };
    let by_addr = query(primary.to_string()).await.unwrap();
    assert_eq!(by_addr.server, primary);
    assert_eq!(by_addr.mapped, by_addr.local);
    let by_name = query(format!("localhost:{}", primary.port()))
        .await
        .unwrap();
    assert_eq!(by_name.server, primary);
    let err = query("name.invalid:3478".into()).await.unwrap_err();
    assert!(matches!(err, QueryError::Resolve(_)), "{err}");
}

#[tokio::test]
async fn close_frees_ports_at_once_and_is_idempotent() {
    let mut server = four_address_server().await;
    let addrs = server.local_addrs().to_vec();
    server.close().await;
    server.close().await;
    assert!(server.is_closed());
    for a in &addrs {
        std::net::UdpSocket::bind(a).unwrap_or_else(|e| panic!("UDP {a} still bound: {e}"));
        std::net::TcpListener::bind(a).unwrap_or_else(|e| panic!("TCP {a} still bound: {e}"));
    }
}

#[tokio::test]
async fn run_until_serves_until_shutdown() {
    let sockets = ServerSockets::bind(addr("127.0.0.1:0"), Some(addr("127.0.0.2:0"))).unwrap();
    let addrs = sockets.local_addrs();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(stun::run_until(sockets, async move {
        let _ = stopped.await;
    }));
    let socket = client_socket().await;
    let r = binding(&socket, addrs[3], RequestOptions::binding(), RTO, TIMEOUT)
        .await
        .unwrap();
    assert_eq!(r.from, addrs[3]);
    stop.send(()).unwrap();
    task.await.unwrap();
    std::net::UdpSocket::bind(addrs[0]).expect("port freed after run_until returned");
}

#[tokio::test]
async fn alternate_must_differ_in_ip_and_port() {
    let err = StunServer::start(addr("127.0.0.1:0"), Some(addr("127.0.0.1:0")))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}
