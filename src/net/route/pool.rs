//! `RoutePool`: an interface's routes for one family, addressable host by host across every
//! external range (inventory §3.3). `pool[i]` is a new single-external-host route, so a
//! server can hand out "the next external address" with [`RoutePool::pop`].
//!
//! P2PD's constructor meant to drop duplicates but did not; duplicates are kept here too so
//! indexes match P2PD's.

use serde_json::Value;

use super::{Error, Route};
use crate::net::ip_range::{IpRange, py_slice};

/// Routes of one family (each carrying the NIC's IPv6 link-locals).
#[derive(Debug, Clone, Default)]
pub struct RoutePool {
    routes: Vec<Route>,
    /// Next host `pop` hands out.
    pop_pointer: u128,
}

impl RoutePool {
    pub fn new(routes: Vec<Route>) -> RoutePool {
        RoutePool {
            routes,
            pop_pointer: 0,
        }
    }

    /// The routes in order; `routes()[0]` is what `Interface::route` returns.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The NIC's IPv6 link-locals, as the routes carry them.
    pub fn link_locals(&self) -> &[IpRange] {
        self.routes
            .iter()
            .map(Route::link_local_ips)
            .find(|l| !l.is_empty())
            .unwrap_or_default()
    }

    /// Total external hosts across all routes (not the number of routes), as P2PD's `len`.
    pub fn len(&self) -> u128 {
        self.routes
            .iter()
            .fold(0u128, |n, r| n.saturating_add(r.len()))
    }

    /// True when no route has an external host.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `pool[i]`: a route for the i-th external host (negative counts from the end), or None
    /// past the end.
    pub fn get(&self, i: i128) -> Option<Route> {
        let len = self.len();
        if len == 0 {
            return None;
        }
        let mut rel = if i < 0 {
            // Python's `i % len` for a negative i.
            let m = i.unsigned_abs() % len;
            if m == 0 { 0 } else { len - m }
        } else {
            i.unsigned_abs()
        };
        for route in &self.routes {
            let n = route.len();
            if rel < n {
                return Some(self.host_route(route, rel));
            }
            rel -= n;
        }
        None
    }

    fn host_route(&self, route: &Route, rel: u128) -> Route {
        let mut out = route.clone();
        if let Some(ext) = route.ext_ips().first() {
            // `rel` < len <= i128::MAX for any real prefix, so the index is exact.
            let host = ext.get(i128::try_from(rel).unwrap_or(i128::MAX));
            out.ext_ips = vec![IpRange::host(host)];
        }
        out.bound = None;
        out
    }

    /// `pool[(a, b, ...)]`; indexes past the end are skipped.
    pub fn get_many(&self, indexes: &[i128]) -> Vec<Route> {
        indexes.iter().filter_map(|&i| self.get(i)).collect()
    }

    /// `pool[start:stop]` with Python's clamping.
    pub fn slice(&self, start: Option<i128>, stop: Option<i128>) -> PoolIter<'_> {
        let (front, back) = py_slice(start, stop, self.len());
        PoolIter {
            pool: self,
            front,
            back,
        }
    }

    /// Host by host; `.rev()` walks backwards.
    pub fn iter(&self) -> PoolIter<'_> {
        PoolIter {
            pool: self,
            front: 0,
            back: self.len(),
        }
    }

    /// Hands out host 0, 1, 2 ... then fails with "No more routes.".
    pub fn pop(&mut self) -> Result<Route, Error> {
        let i = i128::try_from(self.pop_pointer).map_err(|_| Error::NoMoreRoutes)?;
        if self.pop_pointer >= self.len() {
            return Err(Error::NoMoreRoutes);
        }
        let route = self.get(i).ok_or(Error::NoMoreRoutes)?;
        self.pop_pointer += 1;
        Ok(route)
    }

    /// The first route equal to `other` (external ranges intersect).
    pub fn locate<T>(&self, other: &T) -> Option<&Route>
    where
        Route: PartialEq<T>,
    {
        self.routes.iter().find(|r| *r == other)
    }

    pub fn contains<T>(&self, other: &T) -> bool
    where
        Route: PartialEq<T>,
    {
        self.locate(other).is_some()
    }

    /// Up to `limit` single-host routes whose external address differs from `route` and from
    /// every exclusion (P2PD's `route.alt`). Routes wholly covered by `route` or an
    /// exclusion are skipped without walking their hosts, so huge IPv6 ranges stay cheap.
    pub fn alt(&self, route: &Route, limit: usize, exclusions: &[Route]) -> Vec<Route> {
        let blocked = |r: &Route| r == route || exclusions.iter().any(|e| r == e);
        let mut out = Vec::new();
        for r in &self.routes {
            let Some(ext) = r.ext_ips().first() else {
                continue;
            };
            let covered = std::iter::once(route).chain(exclusions).any(|e| {
                e.ext_ips().first().is_some_and(|x| {
                    let (a, b) = (x.bounds(), ext.bounds());
                    x.family() == ext.family() && a.0 <= b.0 && b.1 <= a.1
                })
            });
            if covered {
                continue;
            }
            let hosts = (0..ext.len()).map(|k| self.host_route(r, k));
            for h in hosts.filter(|h| !blocked(h)) {
                if out.len() >= limit {
                    return out;
                }
                out.push(h);
            }
        }
        out
    }

    /// The first route with a different external address (P2PD's `~route`).
    pub fn other_than(&self, route: &Route) -> Option<Route> {
        self.alt(route, 1, &[]).pop()
    }

    /// A JSON list of route dicts.
    pub fn to_value(&self) -> Value {
        Value::Array(self.routes.iter().map(Route::to_value).collect())
    }

    /// Reads a list of route dicts; link-locals are taken from the first route that has them.
    pub fn from_value(v: &Value) -> Result<RoutePool, Error> {
        let items = v.as_array().ok_or_else(|| {
            Error::Json(format!(
                "route pool must be a list, got {}",
                crate::text::cut(&v.to_string())
            ))
        })?;
        let routes: Vec<Route> = items
            .iter()
            .map(Route::from_value)
            .collect::<Result<_, _>>()?;
        Ok(RoutePool::new(routes))
    }
}

/// Iterator over a pool's external hosts as single-host routes.
#[derive(Debug, Clone)]
pub struct PoolIter<'a> {
    pool: &'a RoutePool,
    front: u128,
    back: u128,
}

impl Iterator for PoolIter<'_> {
    type Item = Route;

    fn next(&mut self) -> Option<Route> {
        if self.front >= self.back {
            return None;
        }
        let r = self.pool.get(i128::try_from(self.front).ok()?);
        self.front += 1;
        r
    }
}

impl DoubleEndedIterator for PoolIter<'_> {
    fn next_back(&mut self) -> Option<Route> {
        if self.front >= self.back {
            return None;
        }
        self.back -= 1;
        self.pool.get(i128::try_from(self.back).ok()?)
    }
}
