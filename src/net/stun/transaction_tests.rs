//! Fake-clock tests of `Transaction`: every wait is an explicit `Instant`, so the full
//! retransmit-then-give-up sequence runs in microseconds.

use super::*;

const SERVER: &str = "203.0.113.1:3478";
const ALT: &str = "203.0.113.2:3479";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The server's answer to `request`, as a real server would build it.
fn reply_to(request: &[u8], id_override: Option<TransactionId>) -> Vec<u8> {
    let req = Repr::parse(&Packet::new_checked(request).unwrap()).unwrap();
    let mut r = Repr::binding_success(id_override.unwrap_or(req.transaction_id));
    r.mapped_address = Some(addr("198.51.100.7:5000"));
    if !req.transaction_id.is_classic() {
        r.xor_mapped_address = r.mapped_address;
    }
    r.to_bytes().unwrap()
}

/// A binding request to SERVER started at `t0`: first RTO 100 ms, giving up after `limit`.
fn binding(t0: Instant, limit: Duration) -> Transaction {
    Transaction::new(
        t0,
        addr(SERVER),
        RequestOptions::binding(),
        Timing::new(ms(100), limit),
    )
    .unwrap()
}

/// Runs the machine with no replies, returning the send times (offsets from t0) and the end.
fn run_silent(tx: &mut Transaction, t0: Instant) -> (Vec<Duration>, Duration) {
    let mut now = t0;
    let mut sends = Vec::new();
    loop {
        while let Some(t) = tx.poll_transmit(now) {
            assert_eq!(t.destination, addr(SERVER));
            sends.push(now - t0);
        }
        match tx.poll_timeout() {
            Some(t) => {
                now = t;
                tx.handle_timeout(now);
            }
            None => return (sends, now - t0),
        }
    }
}

#[test]
fn reply_ends_transaction_with_rtt() {
    let t0 = Instant::now();
    let mut tx = binding(t0, ms(5000));
    let req = tx.poll_transmit(t0).unwrap();
    assert!(
        tx.poll_transmit(t0).is_none(),
        "second copy only after the RTO"
    );
    assert!(tx.handle_datagram(t0 + ms(7), addr(SERVER), &reply_to(&req.contents, None)));
    let r = tx.outcome().unwrap().as_ref().unwrap();
    assert_eq!(r.rtt, ms(7));
    assert_eq!(r.message.mapped(), Some(addr("198.51.100.7:5000")));
    assert_eq!(tx.poll_timeout(), None);
    assert!(tx.poll_transmit(t0 + ms(500)).is_none());
}

#[test]
fn wrong_txid_reply_is_ignored() {
    let t0 = Instant::now();
    let mut tx = binding(t0, ms(5000));
    let req = tx.poll_transmit(t0).unwrap();
    let other = TransactionId::random().unwrap();
    assert!(!tx.handle_datagram(
        t0 + ms(1),
        addr(SERVER),
        &reply_to(&req.contents, Some(other))
    ));
    assert!(tx.outcome().is_none());
    // Garbage and our own request echoed back are ignored too.
    assert!(!tx.handle_datagram(t0 + ms(1), addr(SERVER), b"hello"));
    assert!(!tx.handle_datagram(t0 + ms(1), addr(SERVER), &req.contents));
    assert!(tx.handle_datagram(t0 + ms(2), addr(SERVER), &reply_to(&req.contents, None)));
}

#[test]
fn spoofed_source_is_ignored() {
    let t0 = Instant::now();
    let mut tx = binding(t0, ms(5000));
    let req = tx.poll_transmit(t0).unwrap();
    let reply = reply_to(&req.contents, None);
    assert!(!tx.handle_datagram(t0, addr("198.51.100.66:3478"), &reply));
    assert!(!tx.handle_datagram(t0, addr("203.0.113.1:3479"), &reply));
    assert!(tx.outcome().is_none());
    assert!(tx.handle_datagram(t0, addr(SERVER), &reply));
}

#[test]
fn change_request_reply_must_come_from_changed_address() {
    let t0 = Instant::now();
    let timing = Timing::new(ms(100), ms(5000));
    let cases = [
        (
            ChangeRequest::BOTH,
            "203.0.113.2:3479",
            ["203.0.113.1:3478", "203.0.113.2:3478", "203.0.113.1:3479"],
        ),
        (
            ChangeRequest::PORT,
            "203.0.113.1:3479",
            ["203.0.113.1:3478", "203.0.113.2:3478", "203.0.113.2:3479"],
        ),
        (
            ChangeRequest::IP,
            "203.0.113.2:3478",
            ["203.0.113.1:3478", "203.0.113.1:3479", "203.0.113.2:3479"],
        ),
    ];
    for (change, good, bads) in cases {
        let mut tx =
            Transaction::new(t0, addr(SERVER), RequestOptions::change(change), timing).unwrap();
        let req = tx.poll_transmit(t0).unwrap();
        let sent = Repr::parse(&Packet::new_checked(&req.contents[..]).unwrap()).unwrap();
        assert_eq!(sent.change_request, Some(change));
        let reply = reply_to(&req.contents, None);
        for bad in bads {
            assert!(
                !tx.handle_datagram(t0, addr(bad), &reply),
                "{change:?} from {bad}"
            );
        }
        assert!(
            tx.handle_datagram(t0, addr(good), &reply),
            "{change:?} from {good}"
        );
    }
    // An explicit alternate address overrides the inference.
    let opts = RequestOptions::change(ChangeRequest::BOTH).accept(Accept::Exactly(addr(ALT)));
    let mut tx = Transaction::new(t0, addr(SERVER), opts, timing).unwrap();
    let req = tx.poll_transmit(t0).unwrap();
    let reply = reply_to(&req.contents, None);
    assert!(!tx.handle_datagram(t0, addr("203.0.113.9:1"), &reply));
    assert!(tx.handle_datagram(t0, addr(ALT), &reply));
}

#[test]
fn retransmits_on_rfc5389_schedule_then_gives_up() {
    let t0 = Instant::now();
    let mut tx = binding(t0, ms(60_000));
    let (sends, end) = run_silent(&mut tx, t0);
    // RFC 5389 §7.2.1 with RTO 100 ms: 0, 100, 300, 700, 1500, 3100, 6300, give up 1600 later.
    assert_eq!(sends, [0, 100, 300, 700, 1500, 3100, 6300].map(ms));
    assert_eq!(end, ms(7900));
    assert_eq!(
        tx.outcome(),
        Some(&Err(TimedOut {
            transmits: 7,
            elapsed: ms(7900)
        }))
    );
}

#[test]
fn deadline_cuts_the_schedule_short() {
    let t0 = Instant::now();
    let mut tx = binding(t0, ms(1000));
    let (sends, end) = run_silent(&mut tx, t0);
    assert_eq!(sends, [0, 100, 300, 700].map(ms));
    assert_eq!(end, ms(1000));
}

#[test]
fn single_transmit_for_reliable_transports() {
    let t0 = Instant::now();
    let timing = Timing {
        max_transmits: 1,
        ..Timing::new(ms(100), ms(2000))
    };
    let mut tx = Transaction::new(t0, addr(SERVER), RequestOptions::binding(), timing).unwrap();
    let (sends, end) = run_silent(&mut tx, t0);
    assert_eq!(sends, [ms(0)]);
    assert_eq!(end, ms(1600));
}

#[test]
fn late_reply_after_timeout_is_ignored() {
    let t0 = Instant::now();
    let mut tx = binding(t0, ms(250));
    let req = tx.poll_transmit(t0).unwrap();
    tx.handle_timeout(t0 + ms(250));
    assert!(matches!(tx.outcome(), Some(Err(_))));
    assert!(!tx.handle_datagram(t0 + ms(260), addr(SERVER), &reply_to(&req.contents, None)));
}

#[test]
fn classic_request_has_no_cookie() {
    let t0 = Instant::now();
    let opts = RequestOptions::change(ChangeRequest::PORT).classic();
    let mut tx = Transaction::new(t0, addr(SERVER), opts, Timing::new(ms(100), ms(1000))).unwrap();
    assert!(tx.transaction_id().is_classic());
    let req = tx.poll_transmit(t0).unwrap();
    assert!(
        !Packet::new_checked(&req.contents[..])
            .unwrap()
            .has_magic_cookie()
    );
    assert!(tx.handle_datagram(t0, addr("203.0.113.1:3479"), &reply_to(&req.contents, None)));
}
