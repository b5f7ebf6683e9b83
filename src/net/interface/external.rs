//! External addresses over STUN: the [`ExternalLookup`] that `Interface::start` uses in real
//! life (inventory §1.4 and §3.4, P2PD's `get_wan_ip_cfab`).
//!
//! For one source address, every configured server gets a Binding request (RFC 5389 §7.2.1
//! retransmissions starting at the LAN-suited [`DEFAULT_RTO`], from a socket bound to the
//! source) and all of them run at once. The first address reported by
//! `min(2, servers)` servers wins ([`Agreement`], pure). Differences from P2PD's
//! `concurrent_first_agree_or_best`, each on purpose:
//! - a failed server is never a vote: in P2PD two quick failures "agreed" on None and the
//!   interface came up without external addresses while slower servers were still answering;
//! - when the deadline passes (or every server is done) without agreement, the most reported
//!   address is still used, with a warning saying it is unconfirmed, as P2PD's "best";
//! - every failure is kept ("stun.l.google.com:19302: no reply within 2.0 s"), and
//!   `Interface.warnings` gets one line per cause ("8 STUN servers: name did not resolve
//!   (no DNS answer)") with the per-server list in `Interface.warning_details`, so an
//!   offline start says what went wrong in a few lines instead of asserting;
//! - a mapped address of the wrong family, or unspecified, is no answer (no vote);
//! - only servers whose list entry says they answer on the source's family are asked.
//!
//! Everything is bounded by the caller's timeout, name resolution included. The lookup keeps
//! its own deadline a little inside it, so the per-server failures are recorded before
//! `build::resolve_family`'s outer timeout could drop the future.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::task::JoinSet;

use super::{Error, ExternalLookup, Interface, NetIfaces};
use crate::net::address::{self, ResolveOptions};
use crate::net::config::{StunConfig, StunServer};
use crate::net::ip_range::Family;
use crate::net::progress::Tally;
use crate::net::stun::{self, ClientError, DEFAULT_RTO, RequestOptions};

/// How many servers must report the same address (P2PD's `min_agree`).
pub const MIN_AGREE: usize = 2;

/// What the servers concluded for one source address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The external address, or why there is none.
    pub value: Result<IpAddr, String>,
    /// One line per failed server and, when the address is unconfirmed, a line saying so.
    pub warnings: Vec<String>,
    /// The failed servers as (server, cause), for grouping by cause.
    pub failures: Vec<(String, String)>,
}

/// Counts answers until one address has a quorum. Pure: answers go in, a verdict comes out.
#[derive(Debug, Clone)]
pub struct Agreement {
    quorum: usize,
    servers: usize,
    outstanding: usize,
    /// (address, votes) in the order first reported, so ties go to the earliest.
    votes: Vec<(IpAddr, usize)>,
    /// (server, cause) of every failed server.
    failures: Vec<(String, String)>,
    decided: Option<IpAddr>,
}

impl Agreement {
    /// Waits for `servers` answers; the quorum is `min(MIN_AGREE, servers)`.
    pub fn new(servers: usize) -> Agreement {
        Agreement {
            quorum: MIN_AGREE.min(servers).max(1),
            servers,
            outstanding: servers,
            votes: Vec::new(),
            failures: Vec::new(),
            decided: None,
        }
    }

    /// Records `server`'s answer; returns the winner as soon as one address has the quorum.
    /// Answers after that, or beyond the expected number, change nothing.
    pub fn handle_answer(
        &mut self,
        server: &str,
        answer: Result<IpAddr, String>,
    ) -> Option<IpAddr> {
        if self.decided.is_some() || self.outstanding == 0 {
            return self.decided;
        }
        self.outstanding -= 1;
        match answer {
            Ok(ip) => {
                let votes = match self.votes.iter_mut().find(|(v, _)| *v == ip) {
                    Some((_, n)) => {
                        *n += 1;
                        *n
                    }
                    None => {
                        self.votes.push((ip, 1));
                        1
                    }
                };
                if votes >= self.quorum {
                    self.decided = Some(ip);
                }
            }
            Err(reason) => self.failures.push((server.to_string(), reason)),
        }
        self.decided
    }

    /// True once there is a winner or no answer is left to wait for.
    pub fn is_finished(&self) -> bool {
        self.decided.is_some() || self.outstanding == 0
    }

    /// The verdict now: the winner, else the most reported address (unconfirmed), else an
    /// error. Servers that have not answered are not counted as failures here; the driver
    /// reports them as silent before calling this.
    pub fn verdict(&self) -> Verdict {
        let mut warnings: Vec<String> = self
            .failures
            .iter()
            .map(|(server, cause)| format!("{server}: {cause}"))
            .collect();
        let failures = self.failures.clone();
        if let Some(ip) = self.decided {
            return Verdict {
                value: Ok(ip),
                warnings,
                failures,
            };
        }
        let best = self
            .votes
            .iter()
            .enumerate()
            .max_by_key(|(i, (_, n))| (*n, std::cmp::Reverse(*i)))
            .map(|(_, v)| *v);
        let value = match best {
            Some((ip, n)) => {
                let seen: Vec<String> = self
                    .votes
                    .iter()
                    .map(|(v, k)| format!("{v} ({k})"))
                    .collect();
                warnings.push(format!(
                    "external address {ip} is unconfirmed: {n} of {} STUN servers reported it, \
                     {} needed (answers: {})",
                    self.servers,
                    self.quorum,
                    seen.join(", ")
                ));
                Ok(ip)
            }
            None if self.servers == 0 => Err("no STUN servers are configured".to_string()),
            None => Err(format!("no STUN server answered ({} tried)", self.servers)),
        };
        Verdict {
            value,
            warnings,
            failures,
        }
    }
}

/// What went wrong during lookups: every line, and the failures to group by cause.
#[derive(Debug, Default)]
struct Troubles {
    details: Vec<String>,
    /// (server, cause).
    failures: Vec<(String, String)>,
}

/// [`ExternalLookup`] over the configured STUN servers. Keeps the failures it met so the
/// caller can add them to `Interface.warnings` ([`StunLookup::take_warnings`]).
#[derive(Debug)]
pub struct StunLookup {
    servers: Vec<StunServer>,
    dns_timeout: Duration,
    rto: Duration,
    troubles: Mutex<Troubles>,
    /// Servers asked and answers had, for a progress display.
    tally: Tally,
}

impl StunLookup {
    /// Uses `config`'s servers and DNS timeout, and the LAN-suited initial RTO.
    pub fn new(config: &StunConfig) -> StunLookup {
        StunLookup {
            servers: config.servers.clone(),
            dns_timeout: config.dns_timeout,
            rto: DEFAULT_RTO,
            troubles: Mutex::new(Troubles::default()),
            tally: Tally::default(),
        }
    }

    /// Counts servers asked and answers had into `tally` as the lookups go.
    pub fn with_tally(mut self, tally: Tally) -> StunLookup {
        self.tally = tally;
        self
    }

    /// A different initial retransmission timeout (RFC 5389 suggests 500 ms on the Internet).
    pub fn with_rto(mut self, rto: Duration) -> StunLookup {
        self.rto = rto;
        self
    }

    /// Everything that went wrong since the last call, in order, without repeats.
    pub fn take_warnings(&self) -> Vec<String> {
        self.take_grouped().1
    }

    /// What went wrong since the last call: one line per cause (`8 STUN servers: name
    /// did not resolve (no DNS answer)`), and every line.
    pub fn take_grouped(&self) -> (Vec<String>, Vec<String>) {
        let t = std::mem::take(&mut *self.troubles.lock().unwrap_or_else(|p| p.into_inner()));
        (group_by_cause(&t.failures), t.details)
    }

    fn record(&self, verdict: &Verdict, from: IpAddr) {
        let mut t = self.troubles.lock().unwrap_or_else(|p| p.into_inner());
        for line in &verdict.warnings {
            let line = format!("{line} (from {from})");
            if !t.details.contains(&line) {
                t.details.push(line);
            }
        }
        for f in &verdict.failures {
            if !t.failures.contains(f) {
                t.failures.push(f.clone());
            }
        }
    }

    /// Asks every server from `local` at once and returns the verdict; `timeout` bounds all
    /// of it, name resolution included.
    pub async fn agree(&self, local: SocketAddr, timeout: Duration) -> Verdict {
        // A margin inside the caller's bound, so silent servers are reported before any
        // outer timeout (the same value) drops this future.
        let margin = (timeout / 20).min(Duration::from_millis(50));
        let budget = timeout.saturating_sub(margin);
        let deadline = tokio::time::Instant::now() + budget;
        let family = Family::of(&local.ip());
        let servers: Vec<&StunServer> = self
            .servers
            .iter()
            .filter(|s| s.families.allows(family))
            .collect();
        let mut agreement = Agreement::new(servers.len());
        self.tally.expect(servers.len());
        let mut tasks = JoinSet::new();
        for (i, server) in servers.iter().enumerate() {
            let (server, dns, rto) = ((*server).clone(), self.dns_timeout, self.rto);
            tasks.spawn(async move {
                let answer = query(&server, local, budget, dns, rto).await;
                (
                    i,
                    answer.map(|l| l.mapped.ip()).map_err(|e| e.reason(timeout)),
                )
            });
        }
        let mut answered = vec![false; servers.len()];
        while !agreement.is_finished() {
            tokio::select! {
                joined = tasks.join_next() => match joined {
                    Some(Ok((i, answer))) => {
                        if let Some(flag) = answered.get_mut(i) {
                            *flag = true;
                        }
                        let name = servers.get(i).map(ToString::to_string).unwrap_or_default();
                        if answer.is_ok() {
                            self.tally.answered();
                        }
                        agreement.handle_answer(&name, answer);
                    }
                    // A panicked or aborted query: its server stays unanswered.
                    Some(Err(_)) => {}
                    None => break,
                },
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
        tasks.abort_all();
        if !agreement.is_finished() {
            for (server, _) in servers.iter().zip(&answered).filter(|(_, a)| !**a) {
                agreement.handle_answer(&server.to_string(), Err(silent(timeout)));
            }
        }
        agreement.verdict()
    }
}

impl ExternalLookup for StunLookup {
    async fn external(&self, local: SocketAddr, timeout: Duration) -> Result<IpAddr, String> {
        let verdict = self.agree(local, timeout).await;
        self.record(&verdict, local.ip());
        verdict.value
    }
}

fn silent(timeout: Duration) -> String {
    format!("no reply within {:.1} s", timeout.as_secs_f64())
}

/// "8 STUN servers: name did not resolve (no DNS answer)": one line per cause, in the
/// order causes were first met; a cause met by one server names it.
pub fn group_by_cause(failures: &[(String, String)]) -> Vec<String> {
    let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
    for (server, cause) in failures {
        match groups.iter_mut().find(|(c, _)| c == cause) {
            Some((_, servers)) => {
                if !servers.contains(&server.as_str()) {
                    servers.push(server);
                }
            }
            None => groups.push((cause, vec![server])),
        }
    }
    groups
        .into_iter()
        .map(|(cause, servers)| match servers.as_slice() {
            [one] => format!("{one}: {cause}"),
            many => format!("{} STUN servers: {cause}", many.len()),
        })
        .collect()
}

/// Why one server gave no address.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The server's name has no address of the source's family, or resolution failed.
    #[error("cannot resolve: {0}")]
    Resolve(address::Error),
    /// The source address cannot be bound (it is not on this machine, or is in use).
    #[error("cannot bind {local}: {source}")]
    Bind {
        local: SocketAddr,
        source: std::io::Error,
    },
    /// The STUN exchange failed (silence, an error response, a broken reply).
    #[error(transparent)]
    Stun(ClientError),
    /// The reply's mapped address is of the other family or unspecified: no answer.
    #[error("sent an unusable mapped address {0}")]
    Unusable(SocketAddr),
}

impl QueryError {
    /// A short reason for warnings; silence is phrased against the caller's `timeout`.
    pub fn reason(&self, timeout: Duration) -> String {
        match self {
            QueryError::Stun(ClientError::Timeout { .. }) => silent(timeout),
            QueryError::Resolve(address::Error::WrongFamily {
                literal, wanted, ..
            }) => format!("is an {literal} address, no use for an {wanted} lookup"),
            QueryError::Resolve(e) => e.cause(),
            QueryError::Stun(ClientError::ErrorResponse { code, reason, .. }) => {
                format!("answered error {code} {reason}")
            }
            QueryError::Stun(ClientError::Io { op, source, .. }) => {
                format!("{op} failed: {source}")
            }
            other => other.to_string(),
        }
    }
}

/// One Binding request to `server` from `local` (port 0 = any): resolves the name for the
/// source's family (within `dns_timeout`), then retransmits from `rto` until `timeout`.
pub async fn query(
    server: &StunServer,
    local: SocketAddr,
    timeout: Duration,
    dns_timeout: Duration,
    rto: Duration,
) -> Result<stun::Lookup, QueryError> {
    let started = tokio::time::Instant::now();
    let opts = ResolveOptions {
        timeout: dns_timeout.min(timeout),
        ..ResolveOptions::default()
    };
    let family = Family::of(&local.ip());
    let dest = address::resolve(&server.host, server.port, family, &opts)
        .await
        .map_err(QueryError::Resolve)?
        .socket_addr();
    let socket = UdpSocket::bind(local)
        .await
        .map_err(|source| QueryError::Bind { local, source })?;
    let left = timeout.saturating_sub(started.elapsed());
    let r = stun::binding(&socket, dest, RequestOptions::binding(), rto, left)
        .await
        .map_err(QueryError::Stun)?;
    if !crate::net::nat::usable_mapped(local.ip(), r.mapped) {
        return Err(QueryError::Unusable(r.mapped));
    }
    Ok(stun::Lookup {
        mapped: r.mapped,
        rtt: r.rtt,
        server: dest,
        local: r.local,
    })
}

impl Interface {
    /// [`Interface::start`] with [`StunLookup`] over `config`'s servers; the failed servers
    /// are added to `warnings`.
    pub async fn start_stun(
        &mut self,
        config: &StunConfig,
        timeout: Duration,
    ) -> Result<(), Error> {
        self.start_stun_tallied(config, timeout, &Tally::default())
            .await
    }

    /// [`Interface::start_stun`], counting servers asked and answered into `tally`.
    pub async fn start_stun_tallied(
        &mut self,
        config: &StunConfig,
        timeout: Duration,
        tally: &Tally,
    ) -> Result<(), Error> {
        let lookup = StunLookup::new(config).with_tally(tally.clone());
        let result = self.start(timeout, &lookup).await;
        let (grouped, details) = lookup.take_grouped();
        self.warning_details = self.warnings.iter().cloned().chain(details).collect();
        self.warnings.extend(grouped);
        result
    }
}

/// P2PD's `load_interfaces`: the usable interfaces of `net` (name rules, inventory §1.5),
/// all started at once, each bounded by `timeout`. Interfaces that fail to start (no
/// address to route from) are left out; the result keeps `net`'s order. STUN servers asked
/// and answered are counted into `tally`.
pub async fn load_interfaces(
    net: &NetIfaces,
    config: &StunConfig,
    timeout: Duration,
    tally: &Tally,
) -> Vec<Interface> {
    let names = Interface::list_usable(net);
    start_all(net, &names, config, timeout, tally).await
}

/// Starts the named interfaces of `net` concurrently; unknown names and failures are left out.
pub async fn start_all(
    net: &NetIfaces,
    names: &[String],
    config: &StunConfig,
    timeout: Duration,
    tally: &Tally,
) -> Vec<Interface> {
    let wanted: BTreeSet<&str> = names.iter().map(String::as_str).collect();
    let mut tasks = JoinSet::new();
    for name in net.interfaces() {
        if !wanted.contains(name.as_str()) {
            continue;
        }
        let Ok(mut iface) = Interface::from_netifaces(net, Some(&name)) else {
            continue;
        };
        let (config, tally) = (config.clone(), tally.clone());
        tasks.spawn(async move {
            iface
                .start_stun_tallied(&config, timeout, &tally)
                .await
                .map(|()| iface)
        });
    }
    let mut started: Vec<Interface> = tasks.join_all().await.into_iter().flatten().collect();
    started.sort_by_key(|i| i.netiface_index);
    started
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    #[test]
    fn two_agreeing_servers_win_at_once() {
        let mut a = Agreement::new(5);
        assert_eq!(a.handle_answer("s1", Ok(ip("1.3.3.7"))), None);
        assert_eq!(a.handle_answer("s2", Ok(ip("8.8.8.8"))), None);
        assert!(!a.is_finished());
        assert_eq!(
            a.handle_answer("s3", Ok(ip("1.3.3.7"))),
            Some(ip("1.3.3.7"))
        );
        assert!(a.is_finished());
        // Later answers change nothing.
        assert_eq!(
            a.handle_answer("s4", Ok(ip("8.8.8.8"))),
            Some(ip("1.3.3.7"))
        );
        let v = a.verdict();
        assert_eq!(v.value, Ok(ip("1.3.3.7")));
        assert!(v.warnings.is_empty());
    }

    #[test]
    fn failures_are_never_votes() {
        let mut a = Agreement::new(4);
        a.handle_answer("s1:3478", Err("no reply within 2.0 s".into()));
        a.handle_answer("s2:3478", Err("no reply within 2.0 s".into()));
        assert!(!a.is_finished(), "two failures must not agree on 'nothing'");
        a.handle_answer("s3:3478", Ok(ip("1.3.3.7")));
        assert_eq!(
            a.handle_answer("s4:3478", Ok(ip("1.3.3.7"))),
            Some(ip("1.3.3.7"))
        );
        let v = a.verdict();
        assert_eq!(v.value, Ok(ip("1.3.3.7")));
        assert_eq!(
            v.warnings,
            [
                "s1:3478: no reply within 2.0 s",
                "s2:3478: no reply within 2.0 s"
            ]
        );
    }

    #[test]
    fn one_server_is_its_own_quorum() {
        let mut a = Agreement::new(1);
        assert_eq!(
            a.handle_answer("only", Ok(ip("1.3.3.7"))),
            Some(ip("1.3.3.7"))
        );
        assert!(a.verdict().warnings.is_empty());
    }

    #[test]
    fn no_quorum_uses_the_most_reported_address_with_a_warning() {
        let mut a = Agreement::new(3);
        a.handle_answer("s1", Ok(ip("1.3.3.7")));
        a.handle_answer("s2", Err("cannot resolve: no such host".into()));
        a.handle_answer("s3", Err("no reply within 2.0 s".into()));
        assert!(a.is_finished());
        let v = a.verdict();
        assert_eq!(v.value, Ok(ip("1.3.3.7")));
        assert_eq!(v.warnings.len(), 3);
        assert!(v.warnings[2].contains("unconfirmed"), "{:?}", v.warnings);

        // A tie goes to the address reported first.
        let mut a = Agreement::new(2);
        a.handle_answer("s1", Ok(ip("9.9.9.9")));
        a.handle_answer("s2", Ok(ip("1.3.3.7")));
        assert_eq!(a.verdict().value, Ok(ip("9.9.9.9")));
    }

    #[test]
    fn all_failed_or_none_configured() {
        let mut a = Agreement::new(2);
        a.handle_answer("a:1", Err("x".into()));
        a.handle_answer("b:2", Err("y".into()));
        let v = a.verdict();
        assert_eq!(v.value, Err("no STUN server answered (2 tried)".into()));
        assert_eq!(v.warnings, ["a:1: x", "b:2: y"]);

        let a = Agreement::new(0);
        assert!(a.is_finished());
        assert_eq!(
            a.verdict().value,
            Err("no STUN servers are configured".into())
        );
    }

    #[test]
    fn failures_group_by_cause() {
        let f = |s: &str, c: &str| (s.to_string(), c.to_string());
        let failures = [
            f("a:1", "name did not resolve (no DNS answer)"),
            f("b:1", "name did not resolve (no DNS answer)"),
            f("c:1", "no reply within 2.0 s"),
            f("a:1", "name did not resolve (no DNS answer)"),
        ];
        assert_eq!(
            group_by_cause(&failures),
            [
                "2 STUN servers: name did not resolve (no DNS answer)",
                "c:1: no reply within 2.0 s"
            ]
        );
    }

    #[test]
    fn extra_answers_are_ignored() {
        let mut a = Agreement::new(1);
        a.handle_answer("a", Err("x".into()));
        a.handle_answer("a", Ok(ip("1.3.3.7")));
        assert!(a.verdict().value.is_err());
    }
}
