//! P2PD's interface dict (inventory §1.7) and `repr`: what the tutorial prints with
//! `repr(i)` and reads back with `Interface.from_dict(...)`.
//!
//! Written shape: `netiface_index, name, nic_no, id, mac, is_default, nat, rp`, family keys
//! as strings "2"/"10" (JSON has no int keys). Read: that shape, a JSON string holding it,
//! and the seed's older one (only `name`/`nat`/`rp`, Windows' "23" key, routes without
//! `link_local_ips`). P2PD itself could not read its own dict once it went through JSON.

use std::fmt;

use serde_json::{Map, Value, json};

use super::{Error, Interface, interface_type};
use crate::net::ip_range::Family;
use crate::net::route::RoutePool;

impl Interface {
    /// The dict as `serde_json::Value`.
    pub fn to_dict(&self) -> Value {
        let by_family = |f: &dyn Fn(Family) -> Value| -> Value {
            Value::Object(
                Family::ALL
                    .iter()
                    .map(|fam| (fam.number().to_string(), f(*fam)))
                    .collect(),
            )
        };
        json!({
            "netiface_index": self.netiface_index,
            "name": self.name,
            "nic_no": self.nic_no,
            "id": self.id,
            "mac": self.mac,
            "is_default": by_family(&|f| Value::Bool(self.is_default(f))),
            "nat": self.nat,
            "rp": by_family(&|f| self.rp(f).to_value()),
        })
    }

    /// Reads the dict, or a JSON string holding it; older shapes are accepted.
    pub fn from_dict(v: &Value) -> Result<Interface, Error> {
        if let Value::String(text) = v {
            return Interface::from_json(text);
        }
        let obj = v
            .as_object()
            .ok_or_else(|| Error::Json(format!("expected an object, got {v}")))?;
        let name = obj
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::Json("missing string \"name\"".into()))?
            .to_string();
        if name.trim().is_empty() {
            return Err(Error::Json("empty interface name".into()));
        }
        let text = |key: &str| obj.get(key).and_then(Value::as_str).map(str::to_string);
        let mut iface = Interface {
            id: text("id").unwrap_or_else(|| name.clone()),
            nic_no: obj
                .get("nic_no")
                .and_then(Value::as_u64)
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(0),
            index: None,
            netiface_index: obj
                .get("netiface_index")
                .and_then(Value::as_u64)
                .and_then(|n| usize::try_from(n).ok()),
            mac: text("mac").unwrap_or_default(),
            kind: interface_type(&name),
            addrs: Vec::new(),
            is_default: [false; 2],
            gateways: [None; 2],
            nat: obj.get("nat").cloned().unwrap_or(Value::Null),
            nat_report: None,
            rp: Default::default(),
            resolved: true,
            warnings: Vec::new(),
            warning_details: Vec::new(),
            name,
        };
        for (key, flag) in family_entries(obj.get("is_default"))? {
            iface.is_default[super::slot(key)] = flag.as_bool().unwrap_or(false);
        }
        for (family, routes) in family_entries(obj.get("rp"))? {
            iface.set_rp(family, RoutePool::from_value(routes)?);
        }
        Ok(iface)
    }

    /// Reads the dict from JSON text.
    pub fn from_json(text: &str) -> Result<Interface, Error> {
        let v: Value = serde_json::from_str(text).map_err(|e| Error::Json(e.to_string()))?;
        Interface::from_dict(&v)
    }

    /// `Interface.from_dict({pretty json})`, as the tutorial's `repr(i)`.
    pub fn repr(&self) -> String {
        format!("Interface.from_dict({self})")
    }
}

/// `{"2": x, "10": y}` (or "23"/"30"...) as (family, value) pairs; absent means none.
fn family_entries(v: Option<&Value>) -> Result<Vec<(Family, &Value)>, Error> {
    let Some(v) = v else { return Ok(Vec::new()) };
    let obj: &Map<String, Value> = v
        .as_object()
        .ok_or_else(|| Error::Json(format!("expected a family-keyed object, got {v}")))?;
    obj.iter()
        .map(|(k, val)| {
            let fam = k.trim().parse::<i64>().ok().and_then(Family::from_number);
            fam.map(|f| (f, val))
                .ok_or_else(|| Error::Json(format!("unknown address family key {k:?}")))
        })
        .collect()
}

/// Pretty JSON of the dict (P2PD's `str(i)`).
impl fmt::Display for Interface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = serde_json::to_string_pretty(&self.to_dict()).map_err(|_| fmt::Error)?;
        f.write_str(&text)
    }
}
