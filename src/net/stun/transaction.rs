//! One STUN client transaction as a sans-IO state machine (quinn style): no socket, no clock.
//! It owns the RFC 5389 §7.2.1 retransmission schedule, the overall deadline, and the rule for
//! which replies count (transaction id AND source address, the latter being how change
//! requests are verified: RFC 5780 §4.4, P2PD's `(txid, expected_addr)` subscription).
//! The tokio driver is `client.rs`; what the request carries is `RequestOptions`.

use super::{ChangeRequest, Class, Error, Method, Packet, Repr, TransactionId};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Initial retransmission timeout suited to a LAN or loopback. RFC 5389 §7.2.1 recommends
/// 500 ms for the Internet; callers facing slow paths pass a larger one.
pub const DEFAULT_RTO: Duration = Duration::from_millis(100);
/// Rc, the number of transmissions (RFC 5389 §7.2.1).
pub const DEFAULT_MAX_TRANSMITS: u32 = 7;
/// Rm: after the last transmission, wait this many initial RTOs (RFC 5389 §7.2.1).
pub const DEFAULT_LAST_WAIT_FACTOR: u32 = 16;

/// Which source addresses a reply may come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Accept {
    /// Without a change request: exactly the server address. With one: an address that differs
    /// from the server's in exactly the parts changed (IP, port, or both), for when the
    /// alternate address is not known in advance.
    #[default]
    Auto,
    /// Exactly this address, e.g. the OTHER-ADDRESS/CHANGED-ADDRESS learnt earlier.
    Exactly(SocketAddr),
    /// Anything with the right transaction id (check `Response::from` yourself).
    Any,
}

/// What a Binding request carries and which replies count.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestOptions {
    /// CHANGE-REQUEST flags; `ChangeRequest::NONE` sends no attribute.
    pub change: ChangeRequest,
    /// RFC 3489 "classic" request: 16-byte transaction id, no magic cookie, so old servers
    /// answer with SOURCE-ADDRESS and CHANGED-ADDRESS.
    pub classic: bool,
    /// RESPONSE-PORT (RFC 5780 §7.5): ask for the reply on another port of ours.
    pub response_port: Option<u16>,
    /// PADDING bytes (RFC 5780 §7.6), to probe fragmentation handling.
    pub padding: Option<u16>,
    pub accept: Accept,
}

impl RequestOptions {
    /// A plain RFC 5389 Binding request.
    pub fn binding() -> Self {
        RequestOptions::default()
    }

    /// A request asking the server to answer from another IP and/or port.
    pub fn change(change: ChangeRequest) -> Self {
        RequestOptions {
            change,
            ..Default::default()
        }
    }

    pub fn classic(mut self) -> Self {
        self.classic = true;
        self
    }

    pub fn accept(mut self, accept: Accept) -> Self {
        self.accept = accept;
        self
    }

    /// Builds the request with a fresh random transaction id.
    pub fn to_repr(&self) -> Result<Repr, Error> {
        let id = if self.classic {
            TransactionId::random_classic()?
        } else {
            TransactionId::random()?
        };
        let mut r = Repr::binding_request(id);
        r.change_request = (!self.change.is_none()).then_some(self.change);
        r.response_port = self.response_port;
        r.padding = self.padding;
        Ok(r)
    }

    fn accepts(&self, server: SocketAddr, from: SocketAddr) -> bool {
        match self.accept {
            Accept::Any => true,
            Accept::Exactly(a) => from == a,
            Accept::Auto => {
                (from.ip() != server.ip()) == self.change.ip
                    && (from.port() != server.port()) == self.change.port
            }
        }
    }
}

/// Retransmission schedule and overall deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Initial RTO; doubled after each transmission.
    pub rto: Duration,
    /// Rc: total transmissions (1 for TCP, where the transport retransmits).
    pub max_transmits: u32,
    /// Rm: wait after the last transmission, in initial RTOs.
    pub last_wait_factor: u32,
    /// Hard limit on the whole transaction, whatever the schedule says.
    pub deadline: Duration,
}

impl Timing {
    /// RFC 5389 defaults with the given initial RTO and overall deadline.
    pub fn new(rto: Duration, deadline: Duration) -> Self {
        Timing {
            rto,
            max_transmits: DEFAULT_MAX_TRANSMITS,
            last_wait_factor: DEFAULT_LAST_WAIT_FACTOR,
            deadline,
        }
    }
}

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub destination: SocketAddr,
    pub contents: Vec<u8>,
}

/// An accepted reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub message: Repr,
    /// Where it really came from (not what the server claims in RESPONSE-ORIGIN).
    pub from: SocketAddr,
    /// From the most recent transmission to the reply. Retransmissions share the transaction
    /// id, so a late answer to an earlier copy can make this an underestimate (Karn's problem).
    pub rtt: Duration,
}

/// The transaction ended without an accepted reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimedOut {
    pub transmits: u32,
    pub elapsed: Duration,
}

/// One request/response exchange. Drive it with `poll_transmit` (send what it returns),
/// `poll_timeout` (wake at that instant and call `handle_timeout`), and `handle_datagram` for
/// every datagram received; `outcome` becomes `Some` when it is over.
#[derive(Debug)]
pub struct Transaction {
    server: SocketAddr,
    options: RequestOptions,
    request: Vec<u8>,
    id: TransactionId,
    timing: Timing,
    started: Instant,
    /// When the next copy is due; `None` once Rc copies are out.
    next_send: Option<Instant>,
    interval: Duration,
    transmits: u32,
    last_sent: Option<Instant>,
    give_up_at: Instant,
    outcome: Option<Result<Response, TimedOut>>,
}

impl Transaction {
    /// A transaction to `server` starting at `now` (its first copy is due at once).
    pub fn new(
        now: Instant,
        server: SocketAddr,
        options: RequestOptions,
        timing: Timing,
    ) -> Result<Transaction, Error> {
        let repr = options.to_repr()?;
        Ok(Transaction {
            server,
            request: repr.to_bytes()?,
            id: repr.transaction_id,
            options,
            timing,
            started: now,
            next_send: Some(now),
            interval: timing.rto,
            transmits: 0,
            last_sent: None,
            give_up_at: now + timing.deadline,
            outcome: None,
        })
    }

    pub fn server(&self) -> SocketAddr {
        self.server
    }

    pub fn transaction_id(&self) -> TransactionId {
        self.id
    }

    /// The next copy of the request, if one is due at `now`.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Transmit> {
        if self.outcome.is_some() || now >= self.give_up_at {
            return None;
        }
        let due = self.next_send?;
        if now < due {
            return None;
        }
        self.transmits += 1;
        self.last_sent = Some(now);
        if self.transmits < self.timing.max_transmits {
            self.next_send = Some(now + self.interval);
            self.interval = self.interval.saturating_mul(2);
        } else {
            self.next_send = None;
            let last_wait = self.timing.rto.saturating_mul(self.timing.last_wait_factor);
            self.give_up_at = self.give_up_at.min(now + last_wait);
        }
        Some(Transmit {
            destination: self.server,
            contents: self.request.clone(),
        })
    }

    /// When `handle_timeout` next needs calling; `None` once finished.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.outcome.is_some() {
            return None;
        }
        Some(
            self.next_send
                .map_or(self.give_up_at, |t| t.min(self.give_up_at)),
        )
    }

    /// Lets time pass: gives up once the deadline or the schedule's end is reached.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.outcome.is_none() && now >= self.give_up_at {
            self.outcome = Some(Err(TimedOut {
                transmits: self.transmits,
                elapsed: now.saturating_duration_since(self.started),
            }));
        }
    }

    /// Offers a received datagram; returns whether it was this transaction's reply. Anything
    /// malformed, with another id, or from an address the rule does not accept is ignored:
    /// one bad packet must not end the transaction.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) -> bool {
        if self.outcome.is_some() {
            return false;
        }
        let Ok(message) = Packet::new_checked(bytes).and_then(|p| Repr::parse(&p)) else {
            return false;
        };
        let is_reply = matches!(message.class, Class::SuccessResponse | Class::ErrorResponse)
            && message.method == Method::Binding
            && message.transaction_id == self.id;
        if !is_reply || !self.options.accepts(self.server, from) {
            return false;
        }
        let sent = self.last_sent.unwrap_or(self.started);
        let rtt = now.saturating_duration_since(sent);
        self.outcome = Some(Ok(Response { message, from, rtt }));
        true
    }

    /// `Some` once the transaction is over.
    pub fn outcome(&self) -> Option<&Result<Response, TimedOut>> {
        self.outcome.as_ref()
    }
}

#[cfg(test)]
#[path = "transaction_tests.rs"]
mod tests;
