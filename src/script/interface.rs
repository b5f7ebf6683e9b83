//! Rhai bindings for interfaces (`Interface()`, `start`, `route`, `repr`, ...).

use crate::net::interface::Interface;
use std::sync::{Arc, RwLock};

/// The script's handle on an interface. Shared, because `start()` and `load_nat()`
/// update the interface in place and every copy a script holds must see that.
#[derive(Clone)]
pub struct InterfaceHandle(pub Arc<RwLock<Interface>>);

impl InterfaceHandle {
    pub fn new(iface: Interface) -> Self {
        Self(Arc::new(RwLock::new(iface)))
    }

    /// A snapshot of the interface (cheap enough: a few addresses and routes).
    pub fn get(&self) -> Interface {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}
