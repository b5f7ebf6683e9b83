//! A server pipe's port mapping (`net::portmap`), owned by the pipe: closing the pipe
//! deletes it on the gateway before the socket goes, dropping the pipe's last handle
//! deletes it in the background, and asking twice gives back the mapping the pipe has.
//! A mapping nothing points at any more is a hole in someone's router, so no path out
//! of a pipe leaves one behind; copies of the `Mapping` a caller kept only see it
//! closed.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{Kind, Pipe, lock};
use crate::net::portmap::{self, Gateway, MapSpec, Mapping, ProbeOptions};

/// Where a pipe keeps its mapping.
#[derive(Default)]
pub(super) struct Slot {
    current: Mutex<Option<Mapping>>,
    /// Held while a mapping is being made, so that two callers at once make one.
    making: tokio::sync::Mutex<()>,
}

impl Slot {
    /// The pipe is being dropped: delete the mapping on `runtime`, in the background.
    pub(super) fn release(&mut self, runtime: &tokio::runtime::Handle) {
        let taken = self
            .current
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(mapping) = taken {
            runtime.spawn(async move {
                let _ = mapping.close().await;
            });
        }
    }
}

/// Why a pipe could not be mapped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MapError {
    /// A client's port only takes answers from its destination: nothing to map.
    #[error("pipe {pipe} is not a server: only a server's port can be mapped")]
    NotAServer { pipe: String },
    #[error("pipe {pipe} is closed")]
    Closed { pipe: String },
    #[error(transparent)]
    Portmap(#[from] portmap::Error),
}

impl MapError {
    /// The error kind scripts branch on.
    pub fn kind(&self) -> &'static str {
        match self {
            MapError::NotAServer { .. } => "not_a_server",
            MapError::Closed { .. } => "closed",
            MapError::Portmap(e) => e.kind(),
        }
    }
}

impl Pipe {
    /// Maps this server's port on `gateway` (PCP, NAT-PMP, then UPnP), asking for
    /// `lifetime` and renewing at half of what the gateway grants, from the pipe's own
    /// address (the route towards the gateway when the pipe is bound to a wildcard).
    /// The pipe keeps the mapping: while it is open, a second call returns it.
    pub async fn map(&self, gateway: Gateway, lifetime: Duration) -> Result<Mapping, MapError> {
        if self.inner.kind != Kind::Server {
            return Err(MapError::NotAServer {
                pipe: self.to_string(),
            });
        }
        let _making = self.inner.mapping.making.lock().await;
        if let Some(mapping) = self.mapping() {
            return Ok(mapping);
        }
        if !self.is_running() {
            return Err(self.map_closed());
        }
        let local = self.local_addr();
        let spec = MapSpec {
            proto: self.proto(),
            internal_port: local.port(),
            external_port: 0,
            lifetime,
        };
        let opts = ProbeOptions::default();
        let (mapping, _) = if local.ip().is_unspecified() {
            Mapping::create(gateway, spec, opts).await?
        } else {
            Mapping::create_from(local.ip(), gateway, spec, opts).await?
        };
        {
            // `close` sets `closed` before it takes the mapping out under this lock, so
            // a mapping stored here is either taken by it or deleted just below.
            let mut current = lock(&self.inner.mapping.current);
            if !self.inner.closed.load(Ordering::SeqCst) {
                *current = Some(mapping.clone());
                return Ok(mapping);
            }
        }
        let _ = mapping.close().await;
        Err(self.map_closed())
    }

    fn map_closed(&self) -> MapError {
        MapError::Closed {
            pipe: self.to_string(),
        }
    }

    /// The pipe's open mapping, if it has one.
    pub fn mapping(&self) -> Option<Mapping> {
        lock(&self.inner.mapping.current)
            .clone()
            .filter(Mapping::is_open)
    }

    /// Where the rest of the internet reaches this pipe through its mapping, when the
    /// gateway said its external IP.
    pub fn external(&self) -> Option<SocketAddr> {
        let mapping = self.mapping()?;
        match mapping.external() {
            (Some(ip), port) => Some(SocketAddr::new(ip, port)),
            (None, _) => None,
        }
    }

    /// Deletes the mapping on the gateway (part of `close`).
    pub(super) async fn unmap(&self) {
        let taken = lock(&self.inner.mapping.current).take();
        if let Some(mapping) = taken {
            let _ = mapping.close().await;
        }
    }
}
