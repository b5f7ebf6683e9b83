//! The port-mapping probe as a state machine: which datagrams to send when, what each
//! answer means, and when the probe is over. No socket and no clock: time comes in as
//! `now`, datagrams come in through [`Probe::handle_datagram`], and the driver
//! (`driver.rs`) does the sending, the sleeping and the UPnP HTTP exchanges.
//!
//! At the start it sends, from one socket: NAT-PMP's external-address request and PCP's
//! ANNOUNCE to gateway:5351, and SSDP M-SEARCHes for IGD:1 and IGD:2, unicast to
//! gateway:1900 and to the multicast group. None of them creates anything on the
//! gateway. Silent protocols are asked again after 250 ms and 750 ms (RFC 6886 §3.1's
//! schedule).
//!
//! The probe ends as soon as every protocol has concluded. A protocol that has not
//! answered concludes "absent" at `grace` (250 ms) after the start if anything else has
//! answered by then (the gateway is up and fast, so silence means absence), else at
//! `timeout` (1 s). A UPnP exchange that is under way (an SSDP answer came, the HTTP
//! part has not) may run until `timeout`.
//!
//! Answers are believed only from the gateway: NAT-PMP/PCP from gateway:5351, SSDP from
//! any port (some gateways answer from an ephemeral one) of any LAN host, but only when
//! the `LOCATION` names the host that answered.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::http::HttpUrl;
use super::igd::WanService;
use super::report::{Outcome, PortmapReport, Protocol};
use super::{natpmp, pcp, ssdp};

/// How the probe waits. `Default` gives the values named on each field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeOptions {
    /// Longest probe, when nothing answers. Default 1 s.
    pub timeout: Duration,
    /// When something has answered, silent protocols are given up this long after the
    /// start. Default 250 ms.
    pub grace: Duration,
    /// First retransmission; later ones double. Default 250 ms.
    pub rto: Duration,
    pub upnp: bool,
    pub pmp: bool,
    pub pcp: bool,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        ProbeOptions {
            timeout: Duration::from_secs(1),
            grace: Duration::from_millis(250),
            rto: Duration::from_millis(250),
            upnp: true,
            pmp: true,
            pcp: true,
        }
    }
}

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub to: SocketAddr,
    pub bytes: Vec<u8>,
}

/// What the driver found at a LOCATION: the WAN service and the external address
/// `GetExternalIPAddress` gave (`None` when the gateway left it empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpnpFound {
    pub location: HttpUrl,
    pub service: WanService,
    pub external_ip: Option<IpAddr>,
}

/// One protocol's progress.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    NotTested,
    /// Asked, nothing heard yet.
    Waiting,
    Done(Outcome),
}

/// The probe of one gateway from one local address.
#[derive(Debug)]
pub struct Probe {
    gateway: IpAddr,
    client: IpAddr,
    opts: ProbeOptions,
    started: Instant,
    /// When the next round of (re)transmissions is due, and the gap after it.
    next_send: Option<Instant>,
    gap: Duration,
    queue: Vec<Transmit>,
    pmp: State,
    pcp: State,
    upnp: State,
    /// LOCATIONs seen in SSDP answers, in order, and how many the driver has taken.
    locations: Vec<HttpUrl>,
    handed_out: usize,
    /// LOCATIONs whose HTTP part failed, with why.
    failed_locations: Vec<String>,
    found_upnp: Option<UpnpFound>,
    first_answer: Option<Instant>,
    rtt: Option<Duration>,
    pmp_external: Option<IpAddr>,
    /// Datagrams dropped as foreign or malformed, for the report's details.
    ignored: usize,
}

fn state(enabled: bool) -> State {
    if enabled {
        State::Waiting
    } else {
        State::NotTested
    }
}

impl Probe {
    /// `client` is the source address the probe's socket is bound to (PCP carries it);
    /// NAT-PMP is IPv4 only, so it is not tested towards an IPv6 gateway, and neither is
    /// UPnP (IGD maps IPv4 ports).
    pub fn new(now: Instant, gateway: IpAddr, client: IpAddr, opts: ProbeOptions) -> Probe {
        let v4 = gateway.is_ipv4();
        let mut probe = Probe {
            gateway,
            client,
            opts,
            started: now,
            next_send: Some(now),
            gap: opts.rto,
            queue: Vec::new(),
            pmp: state(opts.pmp && v4),
            pcp: state(opts.pcp),
            upnp: state(opts.upnp && v4),
            locations: Vec::new(),
            handed_out: 0,
            failed_locations: Vec::new(),
            found_upnp: None,
            first_answer: None,
            rtt: None,
            pmp_external: None,
            ignored: 0,
        };
        probe.handle_timeout(now);
        probe
    }

    fn deadline(&self) -> Instant {
        self.started + self.opts.timeout
    }

    /// When silent protocols are given up: `grace` after the start once something has
    /// answered, else the deadline.
    fn silence_cut(&self) -> Instant {
        match self.first_answer {
            Some(_) => (self.started + self.opts.grace).min(self.deadline()),
            None => self.deadline(),
        }
    }

    fn upnp_in_progress(&self) -> bool {
        self.upnp == State::Waiting && self.failed_locations.len() < self.locations.len()
    }

    fn queue_round(&mut self) {
        let gw = |port| SocketAddr::new(self.gateway, port);
        if self.pmp == State::Waiting {
            self.queue.push(Transmit {
                to: gw(natpmp::SERVER_PORT),
                bytes: natpmp::external_address_request().to_vec(),
            });
        }
        if self.pcp == State::Waiting {
            self.queue.push(Transmit {
                to: gw(natpmp::SERVER_PORT),
                bytes: pcp::announce_request(self.client),
            });
        }
        if self.upnp == State::Waiting && self.locations.is_empty() {
            for to in [gw(ssdp::PORT), ssdp::multicast_for(self.gateway)] {
                for target in ssdp::IGD_TARGETS {
                    self.queue.push(Transmit {
                        to,
                        bytes: ssdp::search_request(to, target).into_bytes(),
                    });
                }
            }
        }
    }

    /// The next datagram to send, if any is due.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        if self.queue.is_empty() {
            None
        } else {
            Some(self.queue.remove(0))
        }
    }

    /// When `handle_timeout` must be called next; `None` once the probe is over.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.is_done() {
            return None;
        }
        let cut = if self.upnp_in_progress() {
            self.deadline()
        } else {
            self.silence_cut()
        };
        Some(self.next_send.map_or(cut, |s| s.min(cut)))
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if now >= self.deadline() {
            self.give_up_all();
            return;
        }
        // Giving up first: a round due at the cut would only be wasted.
        if now >= self.silence_cut() {
            self.give_up_silent();
        }
        if let Some(at) = self.next_send
            && now >= at
        {
            self.queue_round();
            let next = at + self.gap;
            self.gap *= 2;
            self.next_send = Some(next).filter(|n| *n < self.deadline());
        }
    }

    fn give_up_silent(&mut self) {
        if self.pmp == State::Waiting {
            self.pmp = State::Done(Outcome::Silent);
        }
        if self.pcp == State::Waiting {
            self.pcp = State::Done(Outcome::Silent);
        }
        if self.upnp == State::Waiting && !self.upnp_in_progress() {
            self.upnp = State::Done(self.upnp_failure());
        }
        self.next_send = None;
    }

    fn give_up_all(&mut self) {
        self.give_up_silent();
        if self.upnp == State::Waiting {
            self.upnp = State::Done(Outcome::Failed(
                "the gateway's HTTP server did not answer in time".into(),
            ));
        }
    }

    fn upnp_failure(&self) -> Outcome {
        if self.failed_locations.is_empty() {
            Outcome::Silent
        } else {
            Outcome::Failed(self.failed_locations.join("; "))
        }
    }

    fn answered(&mut self, now: Instant) {
        if self.first_answer.is_none() {
            self.first_answer = Some(now);
            self.rtt = Some(now.saturating_duration_since(self.started));
        }
    }

    /// Feeds a datagram that arrived on the probe's socket.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        let from_gateway = from.ip() == self.gateway;
        if from_gateway && from.port() == natpmp::SERVER_PORT {
            self.handle_5351(now, bytes);
        } else if bytes.len() >= 5 && bytes[..5].eq_ignore_ascii_case(b"HTTP/") {
            self.handle_ssdp(now, from, bytes);
        } else {
            self.ignored += 1;
        }
    }

    fn handle_5351(&mut self, now: Instant, bytes: &[u8]) {
        match bytes.first() {
            Some(&natpmp::VERSION) => match natpmp::parse_response(bytes) {
                // A NAT-PMP-only server rejecting our PCP request.
                Ok(r) if r.result() == natpmp::ResultCode::UnsupportedVersion => {
                    self.answered(now);
                    if self.pcp == State::Waiting {
                        self.pcp = State::Done(Outcome::NotSpoken(
                            "the gateway speaks NAT-PMP only".into(),
                        ));
                    }
                }
                Ok(natpmp::Response::ExternalAddress { result, ip, .. }) => {
                    self.answered(now);
                    if self.pmp == State::Waiting {
                        self.pmp = State::Done(match ip {
                            Some(ip) if result == natpmp::ResultCode::Success => {
                                self.pmp_external = Some(IpAddr::V4(ip));
                                Outcome::Available {
                                    external_ip: Some(IpAddr::V4(ip)),
                                    rtt: now.saturating_duration_since(self.started),
                                    note: String::new(),
                                }
                            }
                            _ => Outcome::Refused(result.to_string()),
                        });
                    }
                }
                _ => self.ignored += 1,
            },
            Some(&pcp::VERSION) => match pcp::parse_response(bytes) {
                // A PCP server that does not speak NAT-PMP rejecting our NAT-PMP request.
                Ok(r) if r.result == pcp::ResultCode::UnsupportedVersion => {
                    self.answered(now);
                    if self.pmp == State::Waiting {
                        self.pmp =
                            State::Done(Outcome::NotSpoken("the gateway speaks PCP only".into()));
                    }
                }
                Ok(r) if r.is_announce() => {
                    self.answered(now);
                    if self.pcp == State::Waiting {
                        self.pcp = State::Done(if r.result == pcp::ResultCode::Success {
                            Outcome::Available {
                                external_ip: None,
                                rtt: now.saturating_duration_since(self.started),
                                note: format!("epoch {} s", r.epoch),
                            }
                        } else {
                            Outcome::Refused(r.result.to_string())
                        });
                    }
                }
                _ => self.ignored += 1,
            },
            _ => self.ignored += 1,
        }
    }

    fn handle_ssdp(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        let Ok(answer) = ssdp::parse_response(bytes) else {
            self.ignored += 1;
            return;
        };
        if !answer.is_igd() {
            return;
        }
        let Ok(location) = HttpUrl::parse(&answer.location) else {
            self.ignored += 1;
            return;
        };
        // Only a host describing itself is followed.
        if location.addr.ip() != from.ip() {
            self.ignored += 1;
            return;
        }
        self.answered(now);
        if self.upnp == State::Waiting && !self.locations.contains(&location) {
            // The gateway's own description is tried first.
            let gateway = self.gateway;
            let at = match location.addr.ip() == gateway {
                true => self.locations[self.handed_out..]
                    .iter()
                    .position(|l| l.addr.ip() != gateway)
                    .map_or(self.locations.len(), |i| i + self.handed_out),
                false => self.locations.len(),
            };
            self.locations.insert(at, location);
        }
    }

    /// The next LOCATION to fetch (description, then `GetExternalIPAddress`).
    pub fn poll_location(&mut self) -> Option<HttpUrl> {
        if self.upnp != State::Waiting {
            return None;
        }
        let next = self.locations.get(self.handed_out).cloned();
        if next.is_some() {
            self.handed_out += 1;
        }
        next
    }

    /// The outcome of fetching one LOCATION. The first success wins.
    pub fn handle_upnp(
        &mut self,
        now: Instant,
        location: &HttpUrl,
        result: Result<UpnpFound, String>,
    ) {
        if self.upnp != State::Waiting {
            return;
        }
        match result {
            Ok(found) => {
                let note = format!(
                    "IGD v{} ({}) at {}",
                    found.service.igd_version,
                    found.service.short_type(),
                    found.location
                );
                let note = if found.external_ip.is_none() {
                    format!("{note}; the gateway reports no external address")
                } else {
                    note
                };
                self.upnp = State::Done(Outcome::Available {
                    external_ip: found.external_ip,
                    rtt: now.saturating_duration_since(self.started),
                    note,
                });
                self.found_upnp = Some(found);
            }
            Err(why) => {
                self.failed_locations.push(format!("{location}: {why}"));
                if !self.upnp_in_progress() && now >= self.silence_cut() {
                    self.upnp = State::Done(self.upnp_failure());
                }
            }
        }
    }

    pub fn is_done(&self) -> bool {
        [&self.pmp, &self.pcp, &self.upnp]
            .iter()
            .all(|s| !matches!(s, State::Waiting))
    }

    /// The report so far (complete once `is_done`).
    pub fn report(&self, now: Instant) -> PortmapReport {
        let outcome = |s: &State| match s {
            State::NotTested => None,
            State::Waiting => Some(Outcome::Silent),
            State::Done(o) => Some(o.clone()),
        };
        let upnp = outcome(&self.upnp);
        let pmp = outcome(&self.pmp);
        let pcp = outcome(&self.pcp);
        let upnp_ip = self.found_upnp.as_ref().and_then(|f| f.external_ip);
        PortmapReport {
            gateway: self.gateway,
            client: self.client,
            external_ip: self.pmp_external.or(upnp_ip),
            rtt: self.rtt,
            elapsed: now.saturating_duration_since(self.started),
            timeout: self.opts.timeout,
            outcomes: [
                (Protocol::Upnp, upnp),
                (Protocol::Pmp, pmp),
                (Protocol::Pcp, pcp),
            ],
            upnp_service: self.found_upnp.as_ref().map(|f| f.service.clone()),
            ignored: self.ignored,
        }
    }
}

#[cfg(test)]
#[path = "probe_tests.rs"]
mod tests;
