//! Pipes on loopback, every case on IPv4 (127.0.0.1) and IPv6 (::1): TCP and UDP clients
//! and servers, subscriptions (regex, peer, copies, bounded queues), polling and timeouts,
//! events, linked pipes, closing and re-binding, and the errors callers see.
//! Time bounds are generous: they only tell "returned at once" from "waited".

#[macro_use]
mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use p2pd::net::pipe::{Error, Pipe, PipeEvent, PipeOptions, Proto, echo_server};
use tokio::sync::mpsc::Receiver;

const WAIT: Duration = Duration::from_secs(3);

fn lo(v6: bool) -> SocketAddr {
    let ip = if v6 {
        IpAddr::V6(Ipv6Addr::LOCALHOST)
    } else {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    };
    SocketAddr::new(ip, 0)
}

async fn open(proto: Proto, dest: Option<SocketAddr>, v6: bool) -> Pipe {
    Pipe::open(proto, dest, lo(v6), PipeOptions::default())
        .await
        .expect("open pipe")
}

/// The subscription every client pipe gets at open.
async fn recv_all(pipe: &Pipe) -> (SocketAddr, Vec<u8>) {
    let sub = pipe
        .find_subscription(None, None)
        .expect("automatic subscription");
    pipe.recv(sub, WAIT).await.unwrap().expect("a message")
}

async fn next_event(events: &mut Receiver<PipeEvent>) -> PipeEvent {
    tokio::time::timeout(WAIT, events.recv())
        .await
        .expect("an event in time")
        .expect("event stream open")
}

both_families_async!(
    tcp_client_and_server_exchange,
    udp_client_and_server_exchange,
    regex_and_peer_filters_each_get_copies,
    polling_and_timeouts,
    flood_drops_oldest_and_counts,
    tcp_events_up_message_end,
    udp_events_message_and_end,
    linked_pipes_relay_until_unlinked,
    close_frees_the_port_at_once,
    refused_connection_names_the_address,
    send_after_close_is_an_error,
    address_in_use_is_reported,
    peer_closing_ends_the_pipe,
    echo_servers_echo,
    wrong_family_destination_is_an_error,
    connect_timeout_names_address_and_limit,
    dropping_every_handle_frees_the_port,
    recv_without_observers_reads_the_socket_and_sees_the_end,
    try_recv_works_from_a_plain_thread,
    udp_client_hears_every_sender,
    recv_spin_never_outlasts_the_timeout,
    recv_without_spin_sleeps_until_the_reply,
    a_reply_then_close_is_never_lost,
);

/// A server that answers and closes at once (HTTP/1.0, as the tutorial's web server does):
/// the reply must reach `recv` even when the end of the pipe is seen first, every time.
async fn a_reply_then_close_is_never_lost(v6: bool) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind(lo(v6)).await.unwrap();
    let at = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        loop {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut ask = [0u8; 16];
            if s.read(&mut ask).await.unwrap_or(0) > 0 {
                let _ = s.write_all(b"reply").await;
            }
        }
    });
    for round in 0..200 {
        let client = open(Proto::Tcp, Some(at), v6).await;
        client.send(b"ask").await.unwrap();
        let sub = client.find_subscription(None, None).unwrap();
        let got = client.recv(sub, WAIT).await.unwrap();
        assert_eq!(got.map(|m| m.1), Some(b"reply".to_vec()), "round {round}");
        client.close().await;
    }
    server.abort();
}

/// A UDP echo server and a client opened with `opts`, ready to `recv` on `sub`.
async fn echo_client(v6: bool, opts: PipeOptions) -> (Pipe, Pipe, p2pd::net::pipe::SubId) {
    let server = echo_server(Proto::Udp, lo(v6)).await.unwrap();
    let client = Pipe::open(Proto::Udp, Some(server.local_addr()), lo(v6), opts)
        .await
        .unwrap();
    let sub = client.find_subscription(None, None).unwrap();
    (server, client, sub)
}

async fn recv_spin_never_outlasts_the_timeout(v6: bool) {
    let opts = PipeOptions {
        recv_spin: Duration::from_secs(30),
        ..PipeOptions::default()
    };
    let (_server, client, sub) = echo_client(v6, opts).await;
    let started = Instant::now();
    assert_eq!(
        client.recv(sub, Duration::from_millis(50)).await.unwrap(),
        None
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    // Still spinning when the reply comes: taken at once.
    client.send(b"spun").await.unwrap();
    let (_, got) = client.recv(sub, WAIT).await.unwrap().unwrap();
    assert_eq!(got, b"spun");
}

async fn recv_without_spin_sleeps_until_the_reply(v6: bool) {
    let opts = PipeOptions {
        recv_spin: Duration::ZERO,
        ..PipeOptions::default()
    };
    let (server, client, sub) = echo_client(v6, opts).await;
    let later = {
        let client = client.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            client.send(b"late").await.unwrap();
        })
    };
    let (peer, got) = client.recv(sub, WAIT).await.unwrap().unwrap();
    assert_eq!((peer, got.as_slice()), (server.local_addr(), &b"late"[..]));
    later.await.unwrap();
}

async fn udp_client_hears_every_sender(v6: bool) {
    // P2PD's UDP client is not OS-connected: its destination is only where `send` goes,
    // and a peer it never wrote to is heard too (and can be answered with send_to).
    let dest = echo_server(Proto::Udp, lo(v6)).await.unwrap();
    let stranger = open(Proto::Udp, None, v6).await;
    let client = open(Proto::Udp, Some(dest.local_addr()), v6).await;
    stranger
        .send_to(b"unasked", client.local_addr())
        .await
        .unwrap();
    assert_eq!(
        recv_all(&client).await,
        (stranger.local_addr(), b"unasked".to_vec())
    );
    client.send(b"home").await.unwrap();
    assert_eq!(
        recv_all(&client).await,
        (dest.local_addr(), b"home".to_vec())
    );
    client.close().await;
}

async fn tcp_client_and_server_exchange(v6: bool) {
    let server = open(Proto::Tcp, None, v6).await;
    assert_eq!(server.dest(), None);
    let client = open(Proto::Tcp, Some(server.local_addr()), v6).await;
    assert_eq!(client.dest(), Some(server.local_addr()));
    assert_eq!(client.proto(), Proto::Tcp);
    let accepted = server.accept(WAIT).await.unwrap().expect("accepted client");
    assert_eq!(accepted.dest(), Some(client.local_addr()));
    let by_peer = server.subscribe(None, Some(client.local_addr())).unwrap();

    client.send(b"hello").await.unwrap();
    let (peer, data) = recv_all(&accepted).await;
    assert_eq!(
        (peer, data.as_slice()),
        (client.local_addr(), &b"hello"[..])
    );
    // The server's own subscriptions see what its clients receive.
    let (peer, data) = server.recv(by_peer, WAIT).await.unwrap().unwrap();
    assert_eq!(
        (peer, data.as_slice()),
        (client.local_addr(), &b"hello"[..])
    );

    accepted.send(b"world").await.unwrap();
    assert_eq!(
        recv_all(&client).await,
        (server.local_addr(), b"world".to_vec())
    );
    server
        .send_to(b"via server", client.local_addr())
        .await
        .unwrap();
    assert_eq!(recv_all(&client).await.1, b"via server");
    assert_eq!(server.clients().len(), 1);

    server.close().await;
    client.close().await;
}

async fn udp_client_and_server_exchange(v6: bool) {
    let server = open(Proto::Udp, None, v6).await;
    let all = server.subscribe(None, None).unwrap();
    let client = open(Proto::Udp, Some(server.local_addr()), v6).await;

    client.send(b"ping").await.unwrap();
    let (peer, data) = server.recv(all, WAIT).await.unwrap().unwrap();
    assert_eq!((peer, data.as_slice()), (client.local_addr(), &b"ping"[..]));
    server.send_to(b"pong", peer).await.unwrap();
    assert_eq!(
        recv_all(&client).await,
        (server.local_addr(), b"pong".to_vec())
    );

    // A server has nowhere to `send` by default.
    let e = server.send(b"x").await.unwrap_err();
    assert!(matches!(e, Error::NoDestination { .. }), "{e}");
    server.close().await;
    client.close().await;
}

async fn regex_and_peer_filters_each_get_copies(v6: bool) {
    let server = open(Proto::Udp, None, v6).await;
    let a = open(Proto::Udp, Some(server.local_addr()), v6).await;
    let b = open(Proto::Udp, Some(server.local_addr()), v6).await;
    let all = server.subscribe(None, None).unwrap();
    let hello = server.subscribe(Some(r"^HELLO \d+$"), None).unwrap();
    let from_a = server.subscribe(None, Some(a.local_addr())).unwrap();
    let any_port = SocketAddr::new(a.local_addr().ip(), 0);
    let from_ip = server.subscribe(None, Some(any_port)).unwrap();
    assert_eq!(server.subscribe(Some(r"^HELLO \d+$"), None).unwrap(), hello);

    a.send(b"HELLO 1").await.unwrap();
    assert_eq!(server.recv(all, WAIT).await.unwrap().unwrap().1, b"HELLO 1");
    b.send(b"other HELLO 2").await.unwrap();
    assert_eq!(
        server.recv(all, WAIT).await.unwrap().unwrap().1,
        b"other HELLO 2"
    );

    // Both have been handled now, so polling is enough.
    let poll = |sub| server.recv(sub, Duration::ZERO);
    assert_eq!(poll(hello).await.unwrap().unwrap().1, b"HELLO 1");
    assert_eq!(poll(hello).await.unwrap(), None);
    assert_eq!(poll(from_a).await.unwrap().unwrap().0, a.local_addr());
    assert_eq!(poll(from_a).await.unwrap(), None);
    assert_eq!(poll(from_ip).await.unwrap().unwrap().1, b"HELLO 1");
    assert_eq!(poll(from_ip).await.unwrap().unwrap().1, b"other HELLO 2");
    assert!(matches!(
        server.subscribe(Some("("), None),
        Err(Error::BadRegex { .. })
    ));
    server.close().await;
}

async fn polling_and_timeouts(v6: bool) {
    let server = open(Proto::Udp, None, v6).await;
    let sub = server.subscribe(None, None).unwrap();

    let start = Instant::now();
    assert_eq!(server.recv(sub, Duration::ZERO).await.unwrap(), None);
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "poll must not wait"
    );

    let start = Instant::now();
    assert_eq!(
        server.recv(sub, Duration::from_millis(200)).await.unwrap(),
        None
    );
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(150) && waited < WAIT,
        "{waited:?}"
    );

    assert!(server.unsubscribe(sub));
    let e = server.recv(sub, Duration::ZERO).await.unwrap_err();
    assert!(matches!(e, Error::NoSuchSubscription { .. }), "{e}");
    server.close().await;
}

async fn flood_drops_oldest_and_counts(v6: bool) {
    let opts = PipeOptions {
        queue_capacity: 16,
        ..PipeOptions::default()
    };
    let server = Pipe::open(Proto::Udp, None, lo(v6), opts).await.unwrap();
    let all = server.subscribe(None, None).unwrap();
    let marker = server.subscribe(Some("^end$"), None).unwrap();
    let client = open(Proto::Udp, Some(server.local_addr()), v6).await;
    for i in 0..200u32 {
        client.send(format!("m{i}").as_bytes()).await.unwrap();
    }
    client.send(b"end").await.unwrap();
    // The reader handles datagrams in order: once the marker is queued, all were seen.
    server.recv(marker, WAIT).await.unwrap().expect("marker");

    let mut kept = Vec::new();
    while let Some((_, data)) = server.recv(all, Duration::ZERO).await.unwrap() {
        kept.push(data);
    }
    assert_eq!(kept.len(), 16);
    assert_eq!(kept.last().map(Vec::as_slice), Some(&b"end"[..]));
    assert!(server.dropped() >= 1, "dropped {}", server.dropped());
    server.close().await;
}

async fn tcp_events_up_message_end(v6: bool) {
    let (server, mut events) =
        Pipe::open_with_events(Proto::Tcp, None, lo(v6), PipeOptions::default(), false)
            .await
            .unwrap();
    let client = open(Proto::Tcp, Some(server.local_addr()), v6).await;

    let PipeEvent::Up(accepted) = next_event(&mut events).await else {
        panic!("expected Up");
    };
    assert_eq!(accepted.dest(), Some(client.local_addr()));
    // With an observer from the start, accepted clients get no automatic subscription.
    assert_eq!(accepted.find_subscription(None, None), None);

    client.send(b"hi").await.unwrap();
    let PipeEvent::Message { peer, data, pipe } = next_event(&mut events).await else {
        panic!("expected Message");
    };
    assert_eq!((peer, data.as_slice()), (client.local_addr(), &b"hi"[..]));
    assert!(pipe.same(&accepted));
    pipe.send(b"reply").await.unwrap();
    assert_eq!(recv_all(&client).await.1, b"reply");

    client.close().await;
    let PipeEvent::End(ended) = next_event(&mut events).await else {
        panic!("expected End");
    };
    assert!(ended.same(&accepted));
    assert!(!accepted.is_running());
    server.close().await;
    let PipeEvent::End(ended) = next_event(&mut events).await else {
        panic!("expected End of the server");
    };
    assert!(ended.same(&server));
    // The server owns the observers: closing it ends the stream.
    assert!(
        tokio::time::timeout(WAIT, events.recv())
            .await
            .unwrap()
            .is_none()
    );
}

async fn udp_events_message_and_end(v6: bool) {
    let server = open(Proto::Udp, None, v6).await;
    let mut events = server.events();
    let client = open(Proto::Udp, Some(server.local_addr()), v6).await;
    client.send(b"dgram").await.unwrap();
    let PipeEvent::Message { peer, data, pipe } = next_event(&mut events).await else {
        panic!("expected Message");
    };
    assert_eq!(
        (peer, data.as_slice()),
        (client.local_addr(), &b"dgram"[..])
    );
    pipe.send_to(b"back", peer).await.unwrap();
    assert_eq!(recv_all(&client).await.1, b"back");
    server.close().await;
    assert!(matches!(next_event(&mut events).await, PipeEvent::End(p) if p.same(&server)));
}

async fn linked_pipes_relay_until_unlinked(v6: bool) {
    let sink = open(Proto::Udp, None, v6).await;
    let sink_sub = sink.subscribe(None, None).unwrap();
    let relay_out = open(Proto::Udp, Some(sink.local_addr()), v6).await;
    let front = open(Proto::Udp, None, v6).await;
    front.add_pipe(&relay_out);
    let sender = open(Proto::Udp, Some(front.local_addr()), v6).await;

    sender.send(b"relay me").await.unwrap();
    let (peer, data) = sink.recv(sink_sub, WAIT).await.unwrap().unwrap();
    assert_eq!(
        (peer, data.as_slice()),
        (relay_out.local_addr(), &b"relay me"[..])
    );

    front.del_pipe(&relay_out);
    let front_sub = front.subscribe(None, None).unwrap();
    sender.send(b"not relayed").await.unwrap();
    // Seen at the front, so the relay decision has been made.
    assert!(front.recv(front_sub, WAIT).await.unwrap().is_some());
    assert_eq!(
        sink.recv(sink_sub, Duration::from_millis(200))
            .await
            .unwrap(),
        None
    );
    for pipe in [sink, relay_out, front, sender] {
        pipe.close().await;
    }
}

async fn close_frees_the_port_at_once(v6: bool) {
    // TCP server with a live connection.
    let server = open(Proto::Tcp, None, v6).await;
    let addr = server.local_addr();
    let client = open(Proto::Tcp, Some(addr), v6).await;
    let _accepted = server.accept(WAIT).await.unwrap().unwrap();
    server.close().await;
    server.close().await;
    assert!(!server.is_running());
    let again = Pipe::open(Proto::Tcp, None, addr, PipeOptions::default())
        .await
        .expect("re-bind TCP server port");

    // TCP client re-using its fixed local port for a new connection.
    let local = client.local_addr();
    client.close().await;
    let client2 = Pipe::open(Proto::Tcp, Some(addr), local, PipeOptions::default())
        .await
        .expect("re-bind TCP client port");
    assert_eq!(client2.local_addr(), local);
    client2.close().await;
    again.close().await;

    let udp = open(Proto::Udp, None, v6).await;
    let addr = udp.local_addr();
    udp.close().await;
    let udp2 = Pipe::open(Proto::Udp, None, addr, PipeOptions::default())
        .await
        .expect("re-bind UDP port");
    udp2.close().await;
}

async fn refused_connection_names_the_address(v6: bool) {
    // A port that was just free: nothing listens there.
    let probe = std::net::TcpListener::bind(lo(v6)).unwrap();
    let dead = probe.local_addr().unwrap();
    drop(probe);
    let e = Pipe::open(Proto::Tcp, Some(dead), lo(v6), PipeOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::Refused { addr } if addr == dead),
        "{e:?}"
    );
    assert!(e.to_string().contains(&dead.to_string()), "{e}");
}

async fn send_after_close_is_an_error(v6: bool) {
    let server = open(Proto::Tcp, None, v6).await;
    let tcp = open(Proto::Tcp, Some(server.local_addr()), v6).await;
    tcp.close().await;
    let e = tcp.send(b"late").await.unwrap_err();
    assert!(matches!(e, Error::Closed { .. }), "{e:?}");
    assert!(e.to_string().contains(&tcp.local_addr().to_string()), "{e}");

    let udp = open(Proto::Udp, Some(server.local_addr()), v6).await;
    udp.close().await;
    let e = udp.send_to(b"late", server.local_addr()).await.unwrap_err();
    assert!(matches!(e, Error::Closed { .. }), "{e:?}");
    server.close().await;
}

async fn address_in_use_is_reported(v6: bool) {
    for proto in [Proto::Tcp, Proto::Udp] {
        let first = open(proto, None, v6).await;
        let addr = first.local_addr();
        let e = Pipe::open(proto, None, addr, PipeOptions::default())
            .await
            .unwrap_err();
        assert!(
            matches!(e, Error::AddrInUse { addr: a } if a == addr),
            "{e:?}"
        );
        assert!(e.to_string().contains(&addr.to_string()), "{e}");
        first.close().await;
    }
}

async fn peer_closing_ends_the_pipe(v6: bool) {
    let server = open(Proto::Tcp, None, v6).await;
    let client = open(Proto::Tcp, Some(server.local_addr()), v6).await;
    let mut events = client.events();
    let accepted = server.accept(WAIT).await.unwrap().unwrap();
    accepted.send(b"last words").await.unwrap();
    accepted.close().await;

    assert!(matches!(
        next_event(&mut events).await,
        PipeEvent::Message { .. }
    ));
    assert!(matches!(next_event(&mut events).await, PipeEvent::End(p) if p.same(&client)));
    assert!(!client.is_running());
    // Queued data is still there; after it, recv says the pipe is closed, at once.
    assert_eq!(recv_all(&client).await.1, b"last words");
    let sub = client.find_subscription(None, None).unwrap();
    let start = Instant::now();
    assert!(matches!(
        client.recv(sub, WAIT).await,
        Err(Error::Closed { .. })
    ));
    assert!(start.elapsed() < Duration::from_secs(1));
    assert!(client.send(b"x").await.is_err());
    server.close().await;
}

async fn echo_servers_echo(v6: bool) {
    for proto in [Proto::Tcp, Proto::Udp] {
        let echo = echo_server(proto, lo(v6)).await.unwrap();
        let client = open(proto, Some(echo.local_addr()), v6).await;
        client.send(b"echo me").await.unwrap();
        assert_eq!(
            recv_all(&client).await,
            (echo.local_addr(), b"echo me".to_vec())
        );
        client.close().await;
        echo.close().await;
    }
}

async fn wrong_family_destination_is_an_error(v6: bool) {
    let other = lo(!v6);
    let e = Pipe::open(Proto::Udp, Some(other), lo(v6), PipeOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::FamilyMismatch { .. }), "{e:?}");
    let udp = open(Proto::Udp, None, v6).await;
    let e = udp
        .send_to(b"x", SocketAddr::new(other.ip(), 9))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::FamilyMismatch { .. }), "{e:?}");
    udp.close().await;
}

/// A listener whose accept queue is full drops further SYNs, so connecting hangs: the
/// connect timeout must fire and name the address and the limit.
async fn connect_timeout_names_address_and_limit(v6: bool) {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(lo(v6)),
        socket2::Type::STREAM,
        None,
    )
    .unwrap();
    socket.bind(&lo(v6).into()).unwrap();
    socket.listen(0).unwrap();
    let full: std::net::TcpListener = socket.into();
    let addr = full.local_addr().unwrap();
    let opts = PipeOptions {
        connect_timeout: Duration::from_millis(300),
        ..PipeOptions::default()
    };
    let mut kept = Vec::new();
    let mut timed_out = None;
    for _ in 0..8 {
        match Pipe::open(Proto::Tcp, Some(addr), lo(v6), opts.clone()).await {
            Ok(pipe) => kept.push(pipe),
            Err(e) => {
                timed_out = Some(e);
                break;
            }
        }
    }
    let e = timed_out.expect("a connection beyond the backlog");
    assert!(
        matches!(e, Error::TimedOut { addr: a, .. } if a == addr),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        format!("connect to {addr} timed out after 0.3 s")
    );
}

/// No `close`: dropping the last handle stops the tasks, which own the socket halves.
async fn dropping_every_handle_frees_the_port(v6: bool) {
    for proto in [Proto::Tcp, Proto::Udp] {
        let pipe = open(proto, None, v6).await;
        let addr = pipe.local_addr();
        drop(pipe);
        // Tasks are cancelled asynchronously; allow them a moment, generously.
        let start = Instant::now();
        let again = loop {
            match Pipe::open(proto, None, addr, PipeOptions::default()).await {
                Ok(pipe) => break pipe,
                Err(Error::AddrInUse { .. }) if start.elapsed() < WAIT => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err(e) => panic!("{proto} port {addr} still held after drop: {e}"),
            }
        };
        again.close().await;
    }
}

/// With no observers a `recv` reads the socket itself (the reader task stands aside):
/// messages still arrive in order, other subscriptions still get their copies, and the
/// peer's end of stream still ends the pipe.
async fn recv_without_observers_reads_the_socket_and_sees_the_end(v6: bool) {
    let server = open(Proto::Tcp, None, v6).await;
    let client = open(Proto::Tcp, Some(server.local_addr()), v6).await;
    let only_b = client.subscribe(Some("^b"), None).unwrap();
    let all = client.find_subscription(None, None).unwrap();
    let accepted = server.accept(WAIT).await.unwrap().unwrap();
    for chunk in [&b"a1"[..], b"b2", b"a3"] {
        accepted.send(chunk).await.unwrap();
        // One message per read: let each arrive before the next is sent.
        assert_eq!(client.recv(all, WAIT).await.unwrap().unwrap().1, chunk);
    }
    assert_eq!(client.recv(only_b, WAIT).await.unwrap().unwrap().1, b"b2");
    accepted.close().await;
    let start = Instant::now();
    assert!(matches!(
        client.recv(all, WAIT).await,
        Err(Error::Closed { .. })
    ));
    assert!(start.elapsed() < WAIT);
    assert!(!client.is_running());
    server.close().await;
}

/// `try_recv` takes what is queued without a future, so a plain thread can call it.
async fn try_recv_works_from_a_plain_thread(v6: bool) {
    let server = open(Proto::Udp, None, v6).await;
    let client = open(Proto::Udp, Some(server.local_addr()), v6).await;
    let sub = server.subscribe(None, None).unwrap();
    client.send(b"queued").await.unwrap();
    // Let the datagram reach the server's queue through its reader task.
    let deadline = Instant::now() + WAIT;
    let got = loop {
        let pipe = server.clone();
        let got = std::thread::spawn(move || pipe.try_recv(sub))
            .join()
            .expect("thread")
            .unwrap();
        if got.is_some() || Instant::now() > deadline {
            break got;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(got.expect("a message within the wait").1, b"queued");
    assert_eq!(server.try_recv(sub).unwrap(), None);
    client.close().await;
    server.close().await;
}
