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

    /// Reads the dict, or a JSON string holding it; older shapes are accepted. `name` and
    /// `rp` are required (without routes there is nothing to use); the other keys may be
    /// left out, but a key that is there must have the right type, and the error names it.
    pub fn from_dict(v: &Value) -> Result<Interface, Error> {
        if let Value::String(text) = v {
            return Interface::from_json(text);
        }
        let obj = v.as_object().ok_or_else(|| {
            Error::Json(format!(
                "expected an object, got {}",
                crate::text::cut(&v.to_string())
            ))
        })?;
        let wrong = |key: &str, what: &str| {
            Error::Json(format!(
                "\"{key}\" must be {what}, got {}",
                obj.get(key)
                    .map_or_else(String::new, |v| crate::text::cut(&v.to_string()))
            ))
        };
        let text = |key: &str| match obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(wrong(key, "a string")),
        };
        let number = |key: &str| match obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| wrong(key, "an integer >= 0")),
        };
        let name = text("name")?.ok_or_else(|| {
            Error::Json("missing key \"name\" (the interface name, e.g. \"eth0\")".into())
        })?;
        if name.trim().is_empty() {
            return Err(Error::Json("empty interface name".into()));
        }
        if !obj.contains_key("rp") {
            return Err(Error::Json(
                "missing key \"rp\" (the routes by family, e.g. {\"2\": [], \"10\": []})".into(),
            ));
        }
        let mut iface = Interface {
            id: text("id")?.unwrap_or_else(|| name.clone()),
            nic_no: number("nic_no")?
                .map(|n| u32::try_from(n).map_err(|_| wrong("nic_no", "below 2^32")))
                .transpose()?
                .unwrap_or(0),
            index: None,
            netiface_index: number("netiface_index")?
                .map(|n| usize::try_from(n).map_err(|_| wrong("netiface_index", "smaller")))
                .transpose()?,
            mac: text("mac")?.unwrap_or_default(),
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
            iface.is_default[super::slot(key)] = flag
                .as_bool()
                .ok_or_else(|| wrong("is_default", "a map of family to true/false"))?;
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
    let obj: &Map<String, Value> = v.as_object().ok_or_else(|| {
        Error::Json(format!(
            "expected a family-keyed object, got {}",
            crate::text::cut(&v.to_string())
        ))
    })?;
    obj.iter()
        .map(|(k, val)| {
            let fam = k.trim().parse::<i64>().ok().and_then(Family::from_number);
            fam.map(|f| (f, val)).ok_or_else(|| {
                Error::Json(format!(
                    "unknown address family key {} (use \"2\" for IPv4, \"10\" for IPv6)",
                    crate::text::quoted(k)
                ))
            })
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
