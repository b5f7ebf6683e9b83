//! Design of the NAT probe driver: what gets sent, from which socket, in what order, and
//! how long silence is awaited. Design notes only for now: the driver needs the STUN
//! client (transactions, retransmission, source checks), which is written separately.
//! It will fill an [`Observations`](super::Observations) and call
//! [`classify`](fn@super::classify); every decision about what the answers *mean* stays
//! there.
//!
//! # Shape
//!
//! As the rest of `net`, a sans-IO state machine plus a thin tokio driver. The machine is
//! fed `handle_datagram(now, socket, from, bytes)` and `handle_timeout(now)`, and says
//! what to do through `poll_transmit(now) -> Option<(socket, dest, bytes)>` and
//! `poll_timeout()`; when it is done it hands out the `Observations`. Sockets are named by
//! role (below); the driver owns them and closes them on drop. Wall time is the driver's
//! `Instant` at the end minus the one at the start, passed in, never read inside.
//!
//! # Servers and addresses
//!
//! One RFC 5780 server (OTHER-ADDRESS) or RFC 3489 server (CHANGED-ADDRESS) gives four
//! addresses: primary P = (ip1, port1), changed port (ip1, port2), alternate IP
//! (ip2, port1) and alternate (ip2, port2). The alternate comes from test I's reply, not
//! from a list (P2PD's lists go stale, inventory §9.14). If the reply has no alternate, or
//! the alternate equals P, the change and mapping tests are not run: those fields stay
//! `None` and `classify` reports what it can (e.g. open internet without a filtering
//! verdict). With several servers, each gets its own sockets and its own `Observations`;
//! the first complete set decides and disagreements are reported, not voted away.
//!
//! # Order and isolation
//!
//! The filtering tests conclude on silence, so nothing may open the filter for the
//! address a reply is expected from before that reply's window closes. A request to the
//! alternate IP from the filtering socket would let the change-IP reply through an
//! address-dependent filter and a restricted cone would read as a full cone (the test
//! `mapping_tests_first_on_one_socket_fake_a_full_cone` shows it). Filter state is kept
//! per mapping, so separate sockets isolate each other:
//!
//! 1. Socket F (filtering), bound to the route's concrete NIC IP, port 0; its real local
//!    address goes into `Observations::local` (a wildcard could not be compared with the
//!    mapped address). Test I (binding) to P first: it yields the mapping, the alternate
//!    address and the RTT every later window is built from. Then tests II (change IP and
//!    port) and III (change port) together, both to P. Both requests go to P, so neither
//!    opens the filter for the other's reply. F sends nothing else until both windows
//!    are closed.
//! 2. Socket M (mapping), started together with F: binding to P (recorded as
//!    [`MappingSocket`](super::MappingSocket)), then alternate IP and alternate IP+port,
//!    which may be in flight at once since nothing concludes on their silence. M's
//!    traffic to ip2 touches only M's mapping, so it runs concurrently with step 1.
//!    Fallback for NATs suspected of filtering per internal host: run the mapping tests on
//!    F after step 1 and leave `mapping_socket` as `None`.
//! 3. Hairpin, after step 1 (so its packets cannot touch F's filter while it matters):
//!    socket H sends a few datagrams carrying a random nonce to F's external address; F
//!    reports the source of the first one that arrives, within one window. A NAT that
//!    filters hairpinned packets reads as "no hairpin"; the report says "hairpinning"
//!    as RFC 4787 REQ-9 does, which is what a peer behind the same NAT needs.
//! 4. Delta, concurrently with all of the above, on sockets of its own: P2PD's two rounds
//!    of 12 lookups (random local ports in [4000, 65535), then consecutive ports from a
//!    random start), each one binding request to P from a fresh socket. A round's 12
//!    requests are sent back to back in slot order before any reply is awaited, so a
//!    counting NAT hands out its ports in slot order and the other probes' new flows
//!    rarely land between two samples (a stray one costs one neighbour pair, and the
//!    threshold is 5 of 11). A port that cannot be bound, or a lookup that stays silent,
//!    is a `None` slot kept in place.
//!
//! On the lab (tests/natlab/lab.sh) this makes a whole run one RTT plus one silence window
//! plus the delta rounds, where P2PD waits 0.5 s per phase.
//!
//! # Silence windows
//!
//! A window is how long a probe listens before "no reply" becomes evidence.
//! - RTT: test I's, on the same path (same socket, same server). If test I needed a
//!   retransmission the sample is ambiguous (Karn); use the time since the *first*
//!   transmission, which can only overestimate and so only lengthens windows. Later
//!   answered probes to the same server may refine it (smoothed as RFC 6298 does), but a
//!   window already open is never shortened.
//! - Window: `clamp(k * rtt, floor, ceiling)`, all three parameters, not constants:
//!   `k` = 3 by default, `floor` = 50 ms (scheduler noise dominates loopback and lab RTTs
//!   of ~0.1 ms), `ceiling` = the caller's timeout (2 s by default, P2PD's recv timeout).
//! - Retransmission inside a window: the request goes out at 0, W/3 and 2W/3 with the same
//!   transaction ID from the same socket (same mapping). With k = 3 the last copy still
//!   has a full RTT to come back, and one datagram lost in either direction is not read
//!   as filtering. Any copy's reply counts.
//! - Test I itself has no RTT to go on: it follows RFC 5389 §7.2.1 (initial RTO a
//!   parameter, doubling), bounded by the caller's timeout; if it never answers, the other
//!   tests to that server are not sent and `classify` reports blocked (7), as P2PD's
//!   fast_nat_test intends but load_nat never delivers (inventory §9.11).
//! - A reply that arrives after its window closed is ignored, so the answer depends on
//!   the windows alone and a run can be replayed in a test with a fake clock.
//! - Every reply is checked for transaction ID and for the origin the request asked for
//!   (change IP+port: both differ from P; change port: same IP, other port);
//!   `classify` repeats the origin check, so a non-complying server is never taken for
//!   an open filter.
