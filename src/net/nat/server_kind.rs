//! What each STUN server turned out to be in a run: the NAT report lists it, so a user sees
//! which servers were believed, which were not, and why. The verdicts are reached in
//! `classify.rs`; this file only names them.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use super::observations::Implausible;

/// One server's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerKind {
    /// Answered a change request from its alternate address: RFC 5780/3489, verified.
    Changes,
    /// Claims an alternate that answers; its change replies cannot pass this NAT, so its
    /// support is taken on trust (RFC 5780 server with a working alternate).
    ChangesUnverified,
    /// Claims an alternate but answered a change request from `from`: it ignores
    /// CHANGE-REQUEST, so its replies say nothing about filtering.
    IgnoresChange { from: SocketAddr },
    /// Its change requests went unanswered although nothing on the path could have
    /// stopped the replies: it does not change address.
    SilentOnChange,
    /// Refused CHANGE-REQUEST with this error code (420: a plain server).
    RefusesChange(u16),
    /// The alternate it claims never answered.
    DeadAlternate(SocketAddr),
    /// The alternate it claims was not contacted.
    BadAlternate(SocketAddr, Implausible),
    /// No alternate address: a plain RFC 5389 server (mapping votes and start-up only).
    Plain,
    /// Every reply carried a mapped address of the wrong family or an unspecified one.
    BadMapped(SocketAddr),
    /// Reported a mapping the other servers contradict.
    Disagrees { reported: SocketAddr },
    /// Answered from another address than the one asked.
    Strays { from: SocketAddr },
    /// No reply in the whole run.
    Silent,
    /// Given up once faster servers had answered.
    Cut,
    /// Not probed: its name did not resolve, with the reason.
    Unresolved(String),
    /// Not probed: no address of the probed family.
    OtherFamily,
}

impl ServerKind {
    /// Whether the run used this server's answers.
    pub fn believed(&self) -> bool {
        matches!(
            self,
            ServerKind::Changes
                | ServerKind::ChangesUnverified
                | ServerKind::Plain
                | ServerKind::RefusesChange(_)
                | ServerKind::IgnoresChange { .. }
                | ServerKind::SilentOnChange
                | ServerKind::DeadAlternate(_)
                | ServerKind::BadAlternate(..)
        )
    }

    /// Whether it is a verified (or trusted) change-capable server.
    pub fn changes_address(&self) -> Option<bool> {
        match self {
            ServerKind::Changes => Some(true),
            ServerKind::ChangesUnverified => None,
            ServerKind::Silent
            | ServerKind::Cut
            | ServerKind::Unresolved(_)
            | ServerKind::OtherFamily => None,
            _ => Some(false),
        }
    }

    /// A short machine-readable name for JSON.
    pub fn code(&self) -> &'static str {
        match self {
            ServerKind::Changes => "changes",
            ServerKind::ChangesUnverified => "changes_unverified",
            ServerKind::IgnoresChange { .. } => "ignores_change",
            ServerKind::SilentOnChange => "silent_on_change",
            ServerKind::RefusesChange(_) => "refuses_change",
            ServerKind::DeadAlternate(_) => "dead_alternate",
            ServerKind::BadAlternate(..) => "bad_alternate",
            ServerKind::Plain => "plain",
            ServerKind::BadMapped(_) => "bad_mapped",
            ServerKind::Disagrees { .. } => "disagrees",
            ServerKind::Strays { .. } => "strays",
            ServerKind::Silent => "silent",
            ServerKind::Cut => "cut",
            ServerKind::Unresolved(_) => "unresolved",
            ServerKind::OtherFamily => "other_family",
        }
    }
}

impl fmt::Display for ServerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerKind::Changes => write!(f, "changes address (verified)"),
            ServerKind::ChangesUnverified => {
                write!(
                    f,
                    "claims to change address (alternate answers; not verifiable through this NAT)"
                )
            }
            ServerKind::IgnoresChange { from } => write!(
                f,
                "ignores CHANGE-REQUEST (answered from {from}): not believed for filtering"
            ),
            ServerKind::SilentOnChange => {
                write!(
                    f,
                    "claims an alternate but never answers change requests: not believed for filtering"
                )
            }
            ServerKind::RefusesChange(code) => {
                write!(f, "plain (refuses CHANGE-REQUEST, error {code})")
            }
            ServerKind::DeadAlternate(a) => {
                write!(f, "claims alternate {a}, which never answered")
            }
            ServerKind::BadAlternate(a, why) => {
                write!(f, "claims alternate {a}, {}: not contacted", why.text())
            }
            ServerKind::Plain => write!(f, "plain (no alternate address)"),
            ServerKind::BadMapped(m) => {
                write!(f, "sent an unusable mapped address {m}: not believed")
            }
            ServerKind::Disagrees { reported } => {
                write!(
                    f,
                    "reported {reported}, which the other servers contradict: not believed"
                )
            }
            ServerKind::Strays { from } => {
                write!(f, "answered from {from}, not the address asked: not used")
            }
            ServerKind::Silent => write!(f, "no reply"),
            ServerKind::Cut => write!(f, "no reply before faster servers settled the answer"),
            ServerKind::Unresolved(why) => write!(f, "not probed: {why}"),
            ServerKind::OtherFamily => write!(f, "not probed: no address of this family"),
        }
    }
}

/// One configured server as the report shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerReport {
    /// As configured (`stun.example.org:3478`).
    pub name: String,
    /// What it resolved to, if it did.
    pub address: Option<SocketAddr>,
    pub kind: ServerKind,
    /// The alternate it claimed (OTHER-ADDRESS / CHANGED-ADDRESS), as claimed.
    pub alternate: Option<SocketAddr>,
    /// Our address as it saw it (its first usable answer).
    pub mapped: Option<SocketAddr>,
    /// Fastest answered round trip.
    pub rtt: Option<Duration>,
    pub software: Option<String>,
}
