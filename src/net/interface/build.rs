//! Building an interface's routes from its addresses and what an external lookup (STUN)
//! reports for each source address: the tutorial's grouping (basics.rst "Routes to the
//! rescue", inventory §3.4), as a pure function plus a small concurrent driver.
//!
//! Grouping, per family:
//! - IPv6 link-locals (`fe80::/10`) are not looked up; they go to every route's
//!   `link_local_ips`. (P2PD also put `fd..` ULAs there; here a ULA is an ordinary private
//!   address.)
//! - All private addresses form one route, looked up from the first of them (or reusing the
//!   default source address's answer). Every public address gets its own lookup and route.
//! - Routes are sorted by external address, as P2PD does; routes whose lookup failed keep
//!   an empty external list and go last, so a machine without STUN still has routes to bind.
//!
//! The lookup is injected ([`ExternalLookup`]) because the STUN client lives elsewhere and
//! tests answer from a table. Every lookup runs concurrently and is cut off by `timeout`.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use crate::net::ip_range::{Family, IpRange};
use crate::net::route::{IfRef, Route, RoutePool};

/// Finds the external address seen when sending from `local` (port 0 = any).
pub trait ExternalLookup: Sync {
    fn external(
        &self,
        local: SocketAddr,
        timeout: Duration,
    ) -> impl Future<Output = Result<IpAddr, String>> + Send;
}

impl<F, Fut> ExternalLookup for F
where
    F: Fn(SocketAddr, Duration) -> Fut + Sync,
    Fut: Future<Output = Result<IpAddr, String>> + Send,
{
    fn external(
        &self,
        local: SocketAddr,
        timeout: Duration,
    ) -> impl Future<Output = Result<IpAddr, String>> + Send {
        self(local, timeout)
    }
}

/// NIC addresses of one family sorted into P2PD's buckets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Buckets {
    pub link_locals: Vec<IpAddr>,
    pub private: Vec<IpAddr>,
    pub public: Vec<IpAddr>,
}

/// Sorts addresses (deduplicated, order kept) into link-local, private and public.
pub fn buckets(addrs: &[IpAddr]) -> Buckets {
    let mut b = Buckets::default();
    for &ip in addrs {
        let r = IpRange::host(ip);
        let list = if r.is_link_local() {
            &mut b.link_locals
        } else if r.is_private() {
            &mut b.private
        } else {
            &mut b.public
        };
        if !list.contains(&ip) {
            list.push(ip);
        }
    }
    b
}

/// Source addresses to look up: every public one, the first private one, and the default
/// source address when it belongs to this NIC.
pub fn lookup_sources(addrs: &[IpAddr], default_src: Option<IpAddr>) -> Vec<IpAddr> {
    let b = buckets(addrs);
    let mut out = b.public.clone();
    out.extend(b.private.first());
    if let Some(d) = default_src.filter(|d| addrs.contains(d) && !out.contains(d)) {
        out.push(d);
    }
    out
}

/// Routes of one family with the warnings met while building them.
#[derive(Debug, Clone, Default)]
pub struct Built {
    pub pool: RoutePool,
    pub warnings: Vec<String>,
}

/// The grouping itself: NIC addresses and lookup results (source -> external address or
/// error) in, routes out. Sources missing from `results` count as failed lookups.
pub fn build_routes(
    family: Family,
    addrs: &[IpAddr],
    default_src: Option<IpAddr>,
    results: &BTreeMap<IpAddr, Result<IpAddr, String>>,
    iface: Option<&IfRef>,
) -> Built {
    let addrs: Vec<IpAddr> = addrs
        .iter()
        .copied()
        .filter(|a| Family::of(a) == family)
        .collect();
    let b = buckets(&addrs);
    let mut warnings = Vec::new();
    let mut ext_of = |src: IpAddr| -> Option<IpRange> {
        match results.get(&src) {
            Some(Ok(ext)) if Family::of(ext) == family && !ext.is_unspecified() => {
                let r = IpRange::host(*ext);
                if r.is_private() {
                    warnings.push(format!(
                        "{family} external address {ext} seen from {src} is not public"
                    ));
                }
                Some(r)
            }
            Some(Ok(ext)) => {
                warnings.push(format!(
                    "{family} lookup from {src} gave unusable address {ext}"
                ));
                None
            }
            Some(Err(e)) => {
                warnings.push(format!("{family} lookup from {src} failed: {e}"));
                None
            }
            None => {
                warnings.push(format!("{family} lookup from {src} gave no answer"));
                None
            }
        }
    };
    let default_ext = default_src
        .filter(|d| addrs.contains(d))
        .and_then(&mut ext_of);
    let mut routes: Vec<Route> = Vec::new();
    let mut push = |nic: Vec<IpAddr>, ext: Option<IpRange>| {
        let nic = nic.into_iter().map(IpRange::host).collect();
        if let Ok(r) = Route::new(family, nic, ext.into_iter().collect()) {
            routes.push(r);
        }
    };
    for &ip in &b.public {
        let ext = if Some(ip) == default_src {
            default_ext
        } else {
            ext_of(ip)
        };
        push(vec![ip], ext);
    }
    if let Some(&first) = b.private.first() {
        // P2PD prefers the default source's answer for the private group.
        let own = if Some(first) == default_src {
            None
        } else {
            ext_of(first)
        };
        push(b.private.clone(), default_ext.or(own));
    }
    // Lowest external address first (P2PD); unresolved routes last, stable otherwise.
    routes.sort_by_key(|r| match r.ext_ips().first() {
        Some(e) => (0, e.bounds().0),
        None => (1, 0),
    });
    let link_locals: Vec<IpRange> = b.link_locals.iter().copied().map(IpRange::host).collect();
    let routes = routes
        .into_iter()
        .filter_map(|r| r.with_link_locals(link_locals.clone()).ok())
        .map(|r| r.with_interface(iface.cloned()))
        .collect();
    Built {
        pool: RoutePool::new(routes),
        warnings,
    }
}

/// Polls every future until all are done (a dependency-free `join_all`).
async fn join_all<F: Future>(futs: Vec<F>) -> Vec<F::Output> {
    let mut futs: Vec<Pin<Box<F>>> = futs.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (fut, slot) in futs.iter_mut().zip(out.iter_mut()) {
            if slot.is_none() {
                match fut.as_mut().poll(cx) {
                    Poll::Ready(v) => *slot = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}

/// Looks up every source concurrently, each cut off at `timeout`, then groups.
pub async fn resolve_family<L: ExternalLookup>(
    family: Family,
    addrs: &[IpAddr],
    default_src: Option<IpAddr>,
    lookup: &L,
    timeout: Duration,
    iface: Option<&IfRef>,
) -> Built {
    let fam_addrs: Vec<IpAddr> = addrs
        .iter()
        .copied()
        .filter(|a| Family::of(a) == family)
        .collect();
    let sources = lookup_sources(&fam_addrs, default_src);
    let tasks = sources.iter().map(|&src| async move {
        let answer =
            tokio::time::timeout(timeout, lookup.external(SocketAddr::new(src, 0), timeout))
                .await
                .unwrap_or_else(|_| Err(format!("timed out after {timeout:?}")));
        (src, answer)
    });
    let results: BTreeMap<IpAddr, Result<IpAddr, String>> =
        join_all(tasks.collect()).await.into_iter().collect();
    build_routes(family, &fam_addrs, default_src, &results, iface)
}

#[cfg(test)]
mod tests;
