//! What the NAT probes saw, recorded without judgement: the input of `classify`.
//!
//! The prober (`prober.rs`) fills an [`Observations`] and `classify` reads it; nothing here
//! touches a socket or a clock, so any network (servers that lie, NATs of every kind) can
//! be described as data in a unit test. One run probes every server of the local address's
//! family at once; per server it records:
//! - on the server's own filtering socket F (which sends to the server's primary address
//!   and nowhere else): test I (binding) and RFC 5780 §4.4 tests II (change IP and port)
//!   and III (change port);
//! - on the one mapping socket M shared by all servers: a binding to the primary (so the
//!   mappings different servers see from one socket can be compared, plain servers
//!   included), bindings to the server's claimed alternate addresses (RFC 5780 §4.3), and
//!   change requests sent after those, whose replies pass M's filter only if the server
//!   really answers from its alternate (a check that the server changes address at all);
//! - without a NAT, two RESPONSE-PORT requests (RFC 5780 §7.5): one aimed at a socket that
//!   never sent anything (does anything unsolicited get in?), one at F (does the server
//!   honour RESPONSE-PORT?).
//!
//! Which replies count is decided once, here, by [`Expect`], so the prober (which must
//! know when a test is over) and `classify` (which judges it) cannot disagree.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::copies::LossCount;
use crate::net::ip_range::python_is_private;

/// A reply as received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply {
    /// (XOR-)MAPPED-ADDRESS, already checked to be usable ([`usable_mapped`]).
    pub mapped: SocketAddr,
    /// Where the datagram really came from.
    pub origin: SocketAddr,
    /// From the answered copy's transmission to its reply.
    pub rtt: Duration,
}

/// How one test ended (or where it stands while the run goes on).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Outcome {
    /// Never sent: not applicable, or nothing to send it to.
    #[default]
    NotSent,
    /// Sent, no verdict yet.
    Pending,
    /// Answered by a reply the test was waiting for.
    Heard(Reply),
    /// Enough copies had time to come back and none did (`copies.rs`).
    Silent,
    /// The run ended (done, deadline, or this server was given up) before a verdict.
    Unfinished,
    /// An error response, with its code (420 for a server that does not do changes).
    Refused(u16),
    /// Answered, but from an address (or to a socket) the test did not ask for: a change
    /// request answered from the address it was sent to, a binding from elsewhere.
    Strayed(Reply),
    /// Answered with a mapped address of the wrong family or unspecified: no answer.
    Unusable(SocketAddr),
}

impl Outcome {
    pub fn heard(&self) -> Option<Reply> {
        match self {
            Outcome::Heard(r) => Some(*r),
            _ => None,
        }
    }

    /// True once the test can no longer change.
    pub fn is_final(&self) -> bool {
        !matches!(self, Outcome::Pending)
    }
}

/// Which replies a request waits for, judged on their origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Exactly from the address the request was sent to.
    SameAddress,
    /// From another IP and another port (CHANGE-REQUEST IP+port).
    OtherIpAndPort,
    /// From the same IP and another port (CHANGE-REQUEST port).
    OtherPort,
}

impl Expect {
    /// Whether a reply from `origin` to a request sent to `dest` is the one expected.
    pub fn accepts(self, dest: SocketAddr, origin: SocketAddr) -> bool {
        let (d, o) = (canonical(dest), canonical(origin));
        match self {
            Expect::SameAddress => d == o,
            Expect::OtherIpAndPort => d.ip() != o.ip() && d.port() != o.port(),
            Expect::OtherPort => d.ip() == o.ip() && d.port() != o.port(),
        }
    }
}

/// A mapped address is only an answer if it is of the local socket's family and a real
/// unicast address: an IPv6 or 0.0.0.0 mapping for an IPv4 probe is a broken or lying
/// server, in every probe.
pub fn usable_mapped(local: IpAddr, mapped: SocketAddr) -> bool {
    let ip = mapped.ip().to_canonical();
    ip.is_ipv4() == local.to_canonical().is_ipv4()
        && !ip.is_unspecified()
        && !ip.is_multicast()
        && ip != IpAddr::from([255, 255, 255, 255])
        && mapped.port() != 0
}

/// Why a claimed alternate address is not contacted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Implausible {
    OtherFamily,
    /// The primary's IP or port again: not an alternate that can test anything.
    NotDifferent,
    /// Unspecified, multicast or broadcast.
    NotUnicast,
    /// Loopback, while the server is not.
    Loopback,
    /// Private or link-local, while the server is public.
    Private,
}

impl Implausible {
    pub fn text(self) -> &'static str {
        match self {
            Implausible::OtherFamily => "of the other IP family",
            Implausible::NotDifferent => "not different from the server in both IP and port",
            Implausible::NotUnicast => "not a unicast address",
            Implausible::Loopback => "a loopback address (the server is not)",
            Implausible::Private => "a private address (the server is public)",
        }
    }
}

/// Checks an alternate address a server claims (OTHER-ADDRESS or CHANGED-ADDRESS) before
/// anything is sent to it, so a server cannot aim the client's packets elsewhere.
pub fn plausible_alternate(server: SocketAddr, alt: SocketAddr) -> Result<(), Implausible> {
    let (s, a) = (canonical(server), canonical(alt));
    let (sip, aip) = (s.ip(), a.ip());
    if sip.is_ipv4() != aip.is_ipv4() {
        return Err(Implausible::OtherFamily);
    }
    if aip.is_unspecified() || aip.is_multicast() || aip == IpAddr::from([255, 255, 255, 255]) {
        return Err(Implausible::NotUnicast);
    }
    if sip == aip || s.port() == a.port() || a.port() == 0 {
        return Err(Implausible::NotDifferent);
    }
    if aip.is_loopback() && !sip.is_loopback() {
        return Err(Implausible::Loopback);
    }
    if python_is_private(aip) && !python_is_private(sip) {
        return Err(Implausible::Private);
    }
    Ok(())
}

/// IPv4-mapped IPv6 (from a dual-stack socket) compared as the IPv4 it is.
pub fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

/// Which request a test sends, and where (RFC 5780 §4.3/§4.4 names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProbeKind {
    /// Test I on F: binding to the primary.
    Binding,
    /// Test II on F: change IP and port.
    ChangeIpPort,
    /// Test III on F: change port.
    ChangePort,
    /// M's binding to the primary.
    MappingBinding,
    /// M's binding to (alternate IP, primary port).
    AltIp,
    /// M's binding to the alternate address.
    AltIpPort,
    /// M's binding to (primary IP, alternate port).
    AltPort,
    /// Change IP and port, sent from M.
    VerifyIpPort,
    /// Change port, sent from M.
    VerifyPort,
    /// RESPONSE-PORT aimed at a socket that never sent.
    OpenPath,
    /// RESPONSE-PORT aimed at F.
    OpenCheck,
    /// RESPONSE-PORT aimed at a second socket that never sent (confirms `OpenPath`).
    OpenPath2,
    /// Tests II and III again from a second filtering socket, once F heard a change
    /// reply: stale NAT state from an earlier run can open one socket's filter, never
    /// two new ones at once.
    ConfirmIpPort,
    ConfirmPort,
}

impl ProbeKind {
    /// Short name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            ProbeKind::Binding => "binding",
            ProbeKind::ChangeIpPort => "change ip+port",
            ProbeKind::ChangePort => "change port",
            ProbeKind::MappingBinding => "mapping binding",
            ProbeKind::AltIp => "alt ip",
            ProbeKind::AltIpPort => "alt ip+port",
            ProbeKind::AltPort => "alt port",
            ProbeKind::VerifyIpPort => "verify change ip+port",
            ProbeKind::VerifyPort => "verify change port",
            ProbeKind::OpenPath => "open path",
            ProbeKind::OpenCheck => "response-port check",
            ProbeKind::OpenPath2 => "open path (second socket)",
            ProbeKind::ConfirmIpPort => "change ip+port (second socket)",
            ProbeKind::ConfirmPort => "change port (second socket)",
        }
    }
}

/// Everything seen of one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerObs {
    /// The primary address (resolved from the configured name).
    pub primary: SocketAddr,
    /// The configured name, for the report.
    pub name: String,
    /// Local address of this server's filtering socket F, once bound.
    pub filter_local: Option<SocketAddr>,
    /// Test I on F.
    pub binding: Outcome,
    /// Tests II and III on F.
    pub change_both: Outcome,
    pub change_port: Outcome,
    /// OTHER-ADDRESS (RFC 5780) or CHANGED-ADDRESS (RFC 3489) as the server claimed it.
    pub claimed_alternate: Option<SocketAddr>,
    /// SOFTWARE, if sent.
    pub software: Option<String>,
    /// M's binding to the primary.
    pub map_primary: Outcome,
    /// M's bindings to (alt IP, primary port), (alt IP, alt port), (primary IP, alt port).
    pub map_alt_ip: Outcome,
    pub map_alt_both: Outcome,
    pub map_alt_port: Outcome,
    /// Change requests from M, after M contacted the alternates.
    pub verify_both: Outcome,
    pub verify_port: Outcome,
    /// Without a NAT: RESPONSE-PORT aimed at a socket that never sent (reply heard there:
    /// the path is open) and at F (reply heard there: RESPONSE-PORT works).
    pub open_path: Outcome,
    pub open_check: Outcome,
    /// The open-path test aimed at a second socket that never sent.
    pub open_path2: Outcome,
    /// Tests II and III from a second filtering socket, sent once F heard a change reply.
    pub confirm_both: Outcome,
    pub confirm_port: Outcome,
    /// Given up because faster servers had answered and this one had not.
    pub cut: bool,
}

impl ServerObs {
    pub fn new(name: impl Into<String>, primary: SocketAddr) -> ServerObs {
        ServerObs {
            primary,
            name: name.into(),
            filter_local: None,
            binding: Outcome::NotSent,
            change_both: Outcome::NotSent,
            change_port: Outcome::NotSent,
            claimed_alternate: None,
            software: None,
            map_primary: Outcome::NotSent,
            map_alt_ip: Outcome::NotSent,
            map_alt_both: Outcome::NotSent,
            map_alt_port: Outcome::NotSent,
            verify_both: Outcome::NotSent,
            verify_port: Outcome::NotSent,
            open_path: Outcome::NotSent,
            open_check: Outcome::NotSent,
            open_path2: Outcome::NotSent,
            confirm_both: Outcome::NotSent,
            confirm_port: Outcome::NotSent,
            cut: false,
        }
    }

    /// Test II as the two filtering sockets saw it together: heard only if both heard it
    /// (when the second was asked), silent or unsettled if either was.
    pub fn both_sockets(first: Outcome, second: Outcome) -> Outcome {
        match (first, second) {
            (o, Outcome::NotSent) => o,
            (Outcome::Heard(r), Outcome::Heard(_)) => Outcome::Heard(r),
            (Outcome::Heard(_), other) => other,
            (o, _) => o,
        }
    }

    /// Test II, confirmed by the second filtering socket when it ran.
    pub fn filter_both(&self) -> Outcome {
        Self::both_sockets(self.change_both, self.confirm_both)
    }

    /// Test III, confirmed likewise.
    pub fn filter_port(&self) -> Outcome {
        Self::both_sockets(self.change_port, self.confirm_port)
    }

    /// The alternate, if claimed and plausible.
    pub fn alternate(&self) -> Option<SocketAddr> {
        let alt = self.claimed_alternate?;
        plausible_alternate(self.primary, alt).ok().map(|()| alt)
    }

    /// The addresses M's mapping tests go to, with their outcomes: the primary, then
    /// (alt IP, primary port), (alt IP, alt port), (primary IP, alt port).
    pub fn mapping_tests(&self) -> Vec<(SocketAddr, Outcome)> {
        let mut out = vec![(self.primary, self.map_primary)];
        if let Some(alt) = self.alternate() {
            let p = self.primary;
            out.push((SocketAddr::new(alt.ip(), p.port()), self.map_alt_ip));
            out.push((alt, self.map_alt_both));
            out.push((SocketAddr::new(p.ip(), alt.port()), self.map_alt_port));
        }
        out
    }

    /// Every test with the kind and the address it is sent to, in RFC 5780 order.
    pub fn tests(&self) -> Vec<(ProbeKind, SocketAddr, Outcome)> {
        let p = self.primary;
        let alt = self.alternate().unwrap_or(p);
        vec![
            (ProbeKind::Binding, p, self.binding),
            (ProbeKind::ChangeIpPort, p, self.change_both),
            (ProbeKind::ChangePort, p, self.change_port),
            (ProbeKind::MappingBinding, p, self.map_primary),
            (
                ProbeKind::AltIp,
                SocketAddr::new(alt.ip(), p.port()),
                self.map_alt_ip,
            ),
            (ProbeKind::AltIpPort, alt, self.map_alt_both),
            (
                ProbeKind::AltPort,
                SocketAddr::new(p.ip(), alt.port()),
                self.map_alt_port,
            ),
            (ProbeKind::VerifyIpPort, p, self.verify_both),
            (ProbeKind::VerifyPort, p, self.verify_port),
            (ProbeKind::OpenPath, p, self.open_path),
            (ProbeKind::OpenCheck, p, self.open_check),
            (ProbeKind::OpenPath2, p, self.open_path2),
            (ProbeKind::ConfirmIpPort, p, self.confirm_both),
            (ProbeKind::ConfirmPort, p, self.confirm_port),
        ]
    }

    /// Whether any request to this server was answered (with a usable address).
    pub fn answered(&self) -> bool {
        self.binding.heard().is_some() || self.map_primary.heard().is_some()
    }

    /// The first usable answer's reply (test I, else M's binding).
    pub fn first_reply(&self) -> Option<Reply> {
        self.binding.heard().or(self.map_primary.heard())
    }

    /// The fastest RTT seen to this server, over every answered test.
    pub fn rtt(&self) -> Option<Duration> {
        [
            self.binding,
            self.map_primary,
            self.change_both,
            self.change_port,
            self.map_alt_ip,
            self.map_alt_both,
            self.map_alt_port,
        ]
        .iter()
        .filter_map(Outcome::heard)
        .map(|r| r.rtt)
        .min()
    }
}

/// A second local socket sends a nonce to M's external address (RFC 4787 REQ-9); the
/// reply's origin is where M saw it come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HairpinProbe {
    /// The external address that was sent to.
    pub target: SocketAddr,
    /// `Heard` with the source M saw (the sender's external mapping, ideally), `Silent`,
    /// or `Unfinished`.
    pub outcome: Outcome,
}

/// One delta lookup: a local port and the external port the NAT gave it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortSample {
    pub local: u16,
    pub mapped: u16,
}

/// The two rounds of P2PD's delta test, each in the order the lookups were made.
/// A `None` slot is a lookup that failed; it stays in place because neighbours are
/// compared by slot, as P2PD's concurrent test does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeltaSamples {
    /// Round 1: lookups from random local ports.
    pub random: Vec<Option<PortSample>>,
    /// Round 2: lookups from consecutive local ports start, start+1, ...
    pub consecutive: Vec<Option<PortSample>>,
}

impl DeltaSamples {
    /// Both rounds from (local, mapped) pairs with no failures.
    pub fn from_pairs(random: &[(u16, u16)], consecutive: &[(u16, u16)]) -> DeltaSamples {
        let slots = |pairs: &[(u16, u16)]| {
            pairs
                .iter()
                .map(|&(local, mapped)| Some(PortSample { local, mapped }))
                .collect()
        };
        DeltaSamples {
            random: slots(random),
            consecutive: slots(consecutive),
        }
    }

    /// Successful lookups in both rounds.
    pub fn successes(&self) -> usize {
        self.random
            .iter()
            .chain(&self.consecutive)
            .filter(|s| s.is_some())
            .count()
    }

    /// True when no lookup in either round succeeded.
    pub fn is_empty(&self) -> bool {
        self.successes() == 0
    }
}

/// Everything one run saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observations {
    /// The concrete local IP every socket was bound to.
    pub local_ip: IpAddr,
    /// Local address of the mapping socket M, once bound.
    pub mapping_local: Option<SocketAddr>,
    /// Every server probed, in the caller's order.
    pub servers: Vec<ServerObs>,
    pub hairpin: Option<HairpinProbe>,
    pub delta: DeltaSamples,
    /// Lookups per delta round that were asked for (0: the delta test was turned off).
    pub delta_tests: usize,
    /// Round trips lost on answering paths, as the prober counted them.
    pub loss: LossCount,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// Why nothing was sent, when nothing was (no server of the family, none resolved).
    pub untested: Option<String>,
}

impl Observations {
    /// Nothing observed yet from `local_ip`.
    pub fn new(local_ip: IpAddr) -> Observations {
        Observations {
            local_ip,
            mapping_local: None,
            servers: Vec::new(),
            hairpin: None,
            delta: DeltaSamples::default(),
            delta_tests: 0,
            loss: LossCount::default(),
            elapsed: Duration::ZERO,
            untested: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn origins() {
        let d = a("203.0.113.1:3478");
        assert!(Expect::SameAddress.accepts(d, d));
        assert!(!Expect::SameAddress.accepts(d, a("203.0.113.1:3479")));
        assert!(Expect::OtherIpAndPort.accepts(d, a("203.0.113.2:3479")));
        assert!(!Expect::OtherIpAndPort.accepts(d, a("203.0.113.2:3478")));
        assert!(!Expect::OtherIpAndPort.accepts(d, d));
        assert!(Expect::OtherPort.accepts(d, a("203.0.113.1:3479")));
        assert!(!Expect::OtherPort.accepts(d, a("203.0.113.2:3479")));
        // A dual-stack socket's view of an IPv4 peer.
        assert!(Expect::SameAddress.accepts(d, a("[::ffff:203.0.113.1]:3478")));
    }

    #[test]
    fn mapped_addresses_of_the_wrong_kind_are_no_answer() {
        let v4: IpAddr = "10.77.0.10".parse().unwrap();
        let v6: IpAddr = "2001:db8::10".parse().unwrap();
        assert!(usable_mapped(v4, a("203.0.113.100:40000")));
        assert!(!usable_mapped(v4, a("[2001:db8::1]:40000")));
        assert!(!usable_mapped(v4, a("0.0.0.0:40000")));
        assert!(!usable_mapped(v4, a("255.255.255.255:40000")));
        assert!(!usable_mapped(v4, a("203.0.113.100:0")));
        assert!(usable_mapped(v6, a("[2001:db8::99]:40000")));
        assert!(!usable_mapped(v6, a("[::]:40000")));
        assert!(!usable_mapped(v6, a("203.0.113.100:40000")));
    }

    #[test]
    fn alternates_must_be_plausible() {
        let public = a("8.8.4.4:3478");
        let lab = a("203.0.113.1:3478");
        let lo = a("127.0.0.1:3478");
        assert_eq!(plausible_alternate(lab, a("203.0.113.2:3479")), Ok(()));
        assert_eq!(plausible_alternate(public, a("8.8.8.8:3479")), Ok(()));
        assert_eq!(plausible_alternate(lo, a("127.0.0.2:3479")), Ok(()));
        use Implausible::*;
        for (server, alt, why) in [
            (lab, lab, NotDifferent),
            (lab, a("203.0.113.1:3479"), NotDifferent),
            (lab, a("203.0.113.2:3478"), NotDifferent),
            (lab, a("127.0.0.1:9"), Loopback),
            (public, a("10.0.0.1:3479"), Private),
            (public, a("0.0.0.0:3479"), NotUnicast),
            (public, a("[2001:db8::1]:3479"), OtherFamily),
        ] {
            assert_eq!(plausible_alternate(server, alt), Err(why), "{alt}");
        }
    }
}
