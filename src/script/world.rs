//! Where the session's network is: the machine's own, or the local world of
//! `net::offline` (`--offline`, or the tour on a machine without internet).
//!
//! Going offline changes only session settings, the same ones a script could change
//! itself: the STUN servers become the local ones and the hosts table gains the web
//! stand-in's entry. So every binding keeps one code path, and the same script runs
//! unchanged online. One more rule applies offline only: `Interface()` on a machine with
//! no default interface means the loopback interface, instead of failing.
//!
//! `offline()` tells a script which world it is in.

use super::registry::{Help, Registrar};
use crate::net::config::{StunConfig, StunServer as ServerEntry, StunSource};
use crate::net::hosts::HostsTable;
use crate::net::offline::{LocalWorld, detect};
pub use detect::{BUDGET, Reach};
use rhai::{Dynamic, Map};
use std::sync::{Arc, Mutex, RwLock};
use tokio::runtime::Handle;

/// The loopback interface `Interface()` falls back to offline.
pub const LOOPBACK_INTERFACE: &str = "lo";

/// A session's world. Shared by the bindings that depend on it.
pub struct World {
    handle: Handle,
    stun: Arc<RwLock<StunConfig>>,
    hosts: Arc<RwLock<HostsTable>>,
    local: Mutex<Option<Offline>>,
}

struct Offline {
    /// Dropped with the session, which closes every stand-in.
    world: LocalWorld,
    why: String,
}

impl World {
    pub fn new(
        handle: Handle,
        stun: Arc<RwLock<StunConfig>>,
        hosts: Arc<RwLock<HostsTable>>,
    ) -> Self {
        Self {
            handle,
            stun,
            hosts,
            local: Mutex::new(None),
        }
    }

    fn local(&self) -> std::sync::MutexGuard<'_, Option<Offline>> {
        self.local.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn is_offline(&self) -> bool {
        self.local().is_some()
    }

    /// Asks the session's STUN servers whether the internet answers (blocks up to
    /// `detect::BUDGET`). Call it from the script thread, never from the runtime.
    pub fn check(&self) -> detect::Reach {
        let config = self.stun.read().unwrap_or_else(|p| p.into_inner()).clone();
        self.handle.block_on(detect::check(&config, detect::BUDGET))
    }

    /// Starts the local world and makes it the session's; `why` says what made the
    /// session go offline. Returns the notice to show once. Doing it twice is a no-op.
    pub fn go_offline(&self, why: &str) -> Result<String, String> {
        if let Some(o) = self.local().as_ref() {
            return Ok(notice(&o.world, &o.why));
        }
        let world = self
            .handle
            .block_on(LocalWorld::start())
            .map_err(|e| format!("cannot start the local world: {e}"))?;
        let servers = world
            .stun_servers()
            .iter()
            .map(|a| ServerEntry::parse(&a.to_string(), StunSource::Explicit))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        {
            let mut config = self.stun.write().unwrap_or_else(|p| p.into_inner());
            config.servers = servers;
            config.source = StunSource::Explicit;
        }
        {
            let mut hosts = self.hosts.write().unwrap_or_else(|p| p.into_inner());
            for (key, value) in world.hosts() {
                hosts.set(&key, &value).map_err(|e| e.to_string())?;
            }
        }
        let text = notice(&world, why);
        *self.local() = Some(Offline {
            world,
            why: why.to_string(),
        });
        Ok(text)
    }

    /// `offline()`: what stands in for what, or `()` on the real network.
    fn describe(&self) -> Dynamic {
        let local = self.local();
        let Some(o) = local.as_ref() else {
            return Dynamic::UNIT;
        };
        let mut map = Map::new();
        map.insert("why".into(), o.why.clone().into());
        let stun: rhai::Array = o
            .world
            .stun_servers()
            .iter()
            .map(|a| Dynamic::from(a.to_string()))
            .collect();
        map.insert("stun".into(), stun.into());
        let hosts: Map = o
            .world
            .hosts()
            .into_iter()
            .map(|(k, v)| (k.into(), Dynamic::from(v)))
            .collect();
        map.insert("hosts".into(), hosts.into());
        Dynamic::from_map(map)
    }
}

/// The one-time notice: why, then what stands in for what.
fn notice(world: &LocalWorld, why: &str) -> String {
    let mut lines = vec![format!(
        "Offline ({why}): this session uses a local world on loopback."
    )];
    lines.extend(world.describe().into_iter().map(|l| format!("  {l}")));
    if crate::net::interface::Interface::by_name(None).is_err() {
        lines.push(format!(
            "  Interface(): {LOOPBACK_INTERFACE}, as this machine has no default interface"
        ));
    }
    lines.push("  The same code runs unchanged online.".into());
    lines.join("\n")
}

const OFFLINE: Help = Help::function(
    "shell",
    &["offline()"],
    "The local world this session uses instead of the internet (#{why, stun, hosts}), or () on the real network; p2pd-repl --offline turns it on.",
    "offline() == () || offline().stun.len() == 2",
);

pub fn register(reg: &mut Registrar, world: Arc<World>) {
    reg.func("offline", &OFFLINE, move || world.describe());
}
