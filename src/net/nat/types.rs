//! P2PD's vocabulary: the NAT and delta enums (with P2PD's numbers and texts, so dicts
//! round-trip with P2PD) and [`NatInfo`], P2PD's `nat_info()` dict with its derived
//! flags. The RFC 4787 view lives in `behaviour.rs`, the full result of a run
//! ([`NatReport`](super::NatReport)) in `report.rs`, and how observations become these
//! values in `classify.rs`.

use std::fmt;

use serde_json::{Value, json};

/// Why a P2PD nat dict could not be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// `type` is not one of P2PD's NAT numbers 1..=7.
    #[error("unknown NAT type {0} (P2PD uses 1 open internet .. 7 blocked)")]
    UnknownNatType(i64),
    /// `delta.type` is not one of P2PD's delta numbers 1..=6.
    #[error("unknown delta type {0} (P2PD uses 1 not applicable .. 6 random)")]
    UnknownDeltaType(i64),
    /// A delta value or range bound is not a port number.
    #[error("{field} = {value} is not a port number (0..=65535)")]
    NotAPort { field: &'static str, value: i64 },
    /// A field the dict must have is absent or has the wrong JSON type.
    #[error("nat dict field `{0}` is missing or not a number")]
    MissingField(&'static str),
}

/// P2PD's NAT type (`nat["type"]`), an RFC 3489 §5 classification with P2PD's numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NatType {
    /// No NAT and inbound packets from anywhere arrive.
    OpenInternet = 1,
    /// No NAT, but a stateful firewall drops unsolicited packets. P2PD defines it but never
    /// produces it; this crate does (RFC 3489 §10.1: test II silent, mapped == local).
    SymmetricUdpFirewall = 2,
    /// Endpoint-independent mapping that anyone may send to.
    FullCone = 3,
    /// The mapping is reusable by any port of an IP the client has sent to.
    RestrictNat = 4,
    /// The mapping is reusable only by the exact ip:port the client has sent to.
    RestrictPortNat = 5,
    /// A new mapping for each destination.
    SymmetricNat = 6,
    /// No STUN reply at all.
    BlockedNat = 7,
}

impl NatType {
    /// Every type in P2PD's numeric order.
    pub const ALL: [NatType; 7] = [
        NatType::OpenInternet,
        NatType::SymmetricUdpFirewall,
        NatType::FullCone,
        NatType::RestrictNat,
        NatType::RestrictPortNat,
        NatType::SymmetricNat,
        NatType::BlockedNat,
    ];

    /// P2PD's number for this type (`OPEN_INTERNET` = 1 .. `BLOCKED_NAT` = 7).
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The type with P2PD's number `code`, if there is one.
    pub fn from_code(code: i64) -> Option<NatType> {
        NatType::ALL
            .into_iter()
            .find(|t| i64::from(t.code()) == code)
    }

    /// P2PD's `TXT["nat"]` text, spelling included ("symetric").
    pub fn info(self) -> &'static str {
        match self {
            NatType::OpenInternet => "open internet (no NAT)",
            NatType::SymmetricUdpFirewall => "possible firewall (no NAT)",
            NatType::FullCone => "full cone",
            NatType::RestrictNat => "restrict reuse",
            NatType::RestrictPortNat => "restrict port",
            NatType::SymmetricNat => "symetric",
            NatType::BlockedNat => "unknown (all responses blocked)",
        }
    }
}

impl fmt::Display for NatType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.info())
    }
}

/// P2PD's port-allocation pattern (`nat["delta"]`): how the next external port follows
/// from earlier ones. The value rides in the variants that have one, so a value on a
/// delta type that has none cannot be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Delta {
    /// Nothing was measured (P2PD's `NA_DELTA`, 1).
    NotApplicable,
    /// External port == local port (2).
    Equal,
    /// The distance between local ports is kept between external ports (3).
    Preserving,
    /// Each new mapping is the last external port + value, whatever the local port (4).
    Independent(u16),
    /// External port + value only when the local port goes up by one (5).
    Dependent(u16),
    /// No pattern (6).
    Random,
}

impl Delta {
    /// P2PD's delta type number (`delta["type"]`).
    pub fn type_code(self) -> u8 {
        match self {
            Delta::NotApplicable => 1,
            Delta::Equal => 2,
            Delta::Preserving => 3,
            Delta::Independent(_) => 4,
            Delta::Dependent(_) => 5,
            Delta::Random => 6,
        }
    }

    /// P2PD's `delta["value"]`: the step for independent/dependent, else 0.
    pub fn value(self) -> u16 {
        match self {
            Delta::Independent(v) | Delta::Dependent(v) => v,
            _ => 0,
        }
    }

    /// Rebuild from P2PD's `(type, value)`. The value is ignored for types without one,
    /// as P2PD itself never reads it there.
    pub fn from_parts(type_code: i64, value: i64) -> Result<Delta, Error> {
        let port = |value| {
            u16::try_from(value).map_err(|_| Error::NotAPort {
                field: "delta.value",
                value,
            })
        };
        Ok(match type_code {
            1 => Delta::NotApplicable,
            2 => Delta::Equal,
            3 => Delta::Preserving,
            4 => Delta::Independent(port(value)?),
            5 => Delta::Dependent(port(value)?),
            6 => Delta::Random,
            other => return Err(Error::UnknownDeltaType(other)),
        })
    }

    /// P2PD's `TXT["delta"]` text.
    pub fn info(self) -> &'static str {
        match self {
            Delta::NotApplicable => "not applicable",
            Delta::Equal => "equal delta (local port == mapped port)",
            Delta::Preserving => "preserving delta ((local port + dist) == (mapped_start + dist))",
            Delta::Independent(_) => "independent delta (rand port == (last_mapped += delta))",
            Delta::Dependent(_) => {
                "dependent delta ((local port += [1 to delta]) == (last_mapped += [1 to delta]))"
            }
            Delta::Random => "random delta (local port == rand port)",
        }
    }

    /// P2PD's `delta_info(type, value)` dict.
    pub fn to_p2pd_json(self) -> Value {
        json!({ "type": self.type_code(), "value": self.value() })
    }
}

impl fmt::Display for Delta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Delta::Independent(v) | Delta::Dependent(v) => write!(f, "{} [{v}]", self.info()),
            _ => f.write_str(self.info()),
        }
    }
}

/// The external port range a NAT allocates from, inclusive (P2PD's `nat["range"]`).
/// P2PD never measures it; it stays [1, 65535] unless a caller knows better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortRange {
    pub start: u16,
    pub stop: u16,
}

impl PortRange {
    /// P2PD's default `[1, MAX_PORT]`.
    pub const FULL: PortRange = PortRange {
        start: 1,
        stop: 65535,
    };
}

impl Default for PortRange {
    fn default() -> Self {
        PortRange::FULL
    }
}

/// P2PD's `nat_info()` dict: type, delta and range, plus the four flags P2PD derives from
/// them. Built only through [`NatInfo::new`] so the flags can never disagree with the type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NatInfo {
    nat_type: NatType,
    delta: Delta,
    range: PortRange,
}

impl NatInfo {
    /// The dict P2PD builds for `nat_info(nat_type, delta, range)`.
    pub fn new(nat_type: NatType, delta: Delta, range: PortRange) -> NatInfo {
        NatInfo {
            nat_type,
            delta,
            range,
        }
    }

    pub fn nat_type(&self) -> NatType {
        self.nat_type
    }

    pub fn delta(&self) -> Delta {
        self.delta
    }

    pub fn range(&self) -> PortRange {
        self.range
    }

    /// P2PD `f_is_open`: no NAT (type 1 or 2).
    pub fn is_open(&self) -> bool {
        matches!(
            self.nat_type,
            NatType::OpenInternet | NatType::SymmetricUdpFirewall
        )
    }

    /// P2PD `f_can_predict`: type in `PREDICTABLE_NATS` (3, 4, 5, 1).
    pub fn can_predict(&self) -> bool {
        matches!(
            self.nat_type,
            NatType::FullCone
                | NatType::RestrictNat
                | NatType::RestrictPortNat
                | NatType::OpenInternet
        )
    }

    /// P2PD `f_is_hard`: not an easy NAT (1, 3) AND delta neither preserving nor equal.
    pub fn is_hard(&self) -> bool {
        !self.is_easy() && !matches!(self.delta, Delta::Preserving | Delta::Equal)
    }

    /// P2PD `is_concurrent`: an easy NAT, OR a delta that is not independent/dependent
    /// (a counter shared by all flows makes concurrent punches collide).
    pub fn is_concurrent(&self) -> bool {
        self.is_easy() || !matches!(self.delta, Delta::Independent(_) | Delta::Dependent(_))
    }

    /// P2PD's `EASY_NATS` [1, 3].
    fn is_easy(&self) -> bool {
        matches!(self.nat_type, NatType::OpenInternet | NatType::FullCone)
    }

    /// The full `nat_info()` dict, keys as P2PD names them.
    pub fn to_p2pd_json(&self) -> Value {
        json!({
            "type": self.nat_type.code(),
            "delta": self.delta.to_p2pd_json(),
            "range": [self.range.start, self.range.stop],
            "is_open": self.is_open(),
            "can_predict": self.can_predict(),
            "is_hard": self.is_hard(),
            "is_concurrent": self.is_concurrent(),
        })
    }

    /// The short form stored in an Interface dict (inventory §1.7): type, nat_info text,
    /// delta, delta_info text.
    pub fn to_interface_json(&self) -> Value {
        json!({
            "type": self.nat_type.code(),
            "nat_info": self.nat_type.info(),
            "delta": self.delta.to_p2pd_json(),
            "delta_info": self.delta.info(),
        })
    }

    /// Read either dict form back. As P2PD's `from_dict`, only type and delta are read:
    /// the flags are recomputed, and the range is read when present, else [1, 65535].
    pub fn from_p2pd_json(value: &Value) -> Result<NatInfo, Error> {
        let int =
            |v: Option<&Value>, name| v.and_then(Value::as_i64).ok_or(Error::MissingField(name));
        let type_code = int(value.get("type"), "type")?;
        let nat_type = NatType::from_code(type_code).ok_or(Error::UnknownNatType(type_code))?;
        let delta_dict = value.get("delta").ok_or(Error::MissingField("delta"))?;
        let delta = Delta::from_parts(
            int(delta_dict.get("type"), "delta.type")?,
            int(delta_dict.get("value"), "delta.value")?,
        )?;
        let range = match value.get("range").and_then(Value::as_array) {
            Some(bounds) => {
                let bound = |i: usize, field| {
                    let v = int(bounds.get(i), field)?;
                    u16::try_from(v).map_err(|_| Error::NotAPort { field, value: v })
                };
                PortRange {
                    start: bound(0, "range[0]")?,
                    stop: bound(1, "range[1]")?,
                }
            }
            None => PortRange::FULL,
        };
        Ok(NatInfo::new(nat_type, delta, range))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nat_numbers_round_trip() {
        for t in NatType::ALL {
            assert_eq!(NatType::from_code(i64::from(t.code())), Some(t));
        }
        assert_eq!(NatType::from_code(0), None);
        assert_eq!(NatType::from_code(8), None);
        assert_eq!(NatType::SymmetricNat.code(), 6);
        assert_eq!(NatType::SymmetricNat.to_string(), "symetric");
    }

    #[test]
    fn delta_parts_round_trip() {
        for d in [
            Delta::NotApplicable,
            Delta::Equal,
            Delta::Preserving,
            Delta::Independent(10),
            Delta::Dependent(20),
            Delta::Random,
        ] {
            let back = Delta::from_parts(d.type_code().into(), d.value().into());
            assert_eq!(back, Ok(d));
        }
        assert_eq!(Delta::from_parts(7, 0), Err(Error::UnknownDeltaType(7)));
        assert!(matches!(
            Delta::from_parts(4, 70000),
            Err(Error::NotAPort { .. })
        ));
    }

    /// P2PD's `nat_info()` with its defaults (5, random, [1, 65535]), checked against the
    /// dict the Python package printed (inventory §2.1).
    #[test]
    fn default_nat_info_matches_p2pd() {
        let info = NatInfo::new(NatType::RestrictPortNat, Delta::Random, PortRange::FULL);
        assert_eq!(
            info.to_p2pd_json(),
            json!({"type": 5, "delta": {"type": 6, "value": 0}, "range": [1, 65535],
                   "is_open": false, "can_predict": true, "is_hard": true,
                   "is_concurrent": true})
        );
    }

    /// Every (type, delta) pair against the four P2PD lambdas written out by hand.
    #[test]
    fn derived_flags_follow_p2pd_rules() {
        let deltas = [
            Delta::NotApplicable,
            Delta::Equal,
            Delta::Preserving,
            Delta::Independent(1),
            Delta::Dependent(1),
            Delta::Random,
        ];
        for t in NatType::ALL {
            for d in deltas {
                let info = NatInfo::new(t, d, PortRange::FULL);
                let (n, dt) = (t.code(), d.type_code());
                assert_eq!(info.is_open(), [1, 2].contains(&n));
                assert_eq!(info.can_predict(), [3, 4, 5, 1].contains(&n));
                assert_eq!(
                    info.is_hard(),
                    ![1, 3].contains(&n) && ![3, 2].contains(&dt)
                );
                assert_eq!(
                    info.is_concurrent(),
                    [1, 3].contains(&n) || ![4, 5].contains(&dt)
                );
            }
        }
    }

    #[test]
    fn interface_form_round_trips() {
        let info = NatInfo::new(NatType::RestrictPortNat, Delta::Random, PortRange::FULL);
        let dict = info.to_interface_json();
        assert_eq!(
            dict,
            json!({"type": 5, "nat_info": "restrict port",
                   "delta": {"type": 6, "value": 0},
                   "delta_info": "random delta (local port == rand port)"})
        );
        assert_eq!(NatInfo::from_p2pd_json(&dict), Ok(info));
        let full = NatInfo::new(
            NatType::SymmetricNat,
            Delta::Independent(7),
            PortRange {
                start: 2000,
                stop: 10000,
            },
        );
        assert_eq!(NatInfo::from_p2pd_json(&full.to_p2pd_json()), Ok(full));
    }

    #[test]
    fn bad_dicts_are_errors_not_panics() {
        assert_eq!(
            NatInfo::from_p2pd_json(&json!({})),
            Err(Error::MissingField("type"))
        );
        assert_eq!(
            NatInfo::from_p2pd_json(&json!({"type": 9, "delta": {"type": 1, "value": 0}})),
            Err(Error::UnknownNatType(9))
        );
        assert_eq!(
            NatInfo::from_p2pd_json(&json!({"type": 1, "delta": {"type": "x"}})),
            Err(Error::MissingField("delta.type"))
        );
        assert!(matches!(
            NatInfo::from_p2pd_json(
                &json!({"type": 1, "delta": {"type": 1, "value": 0}, "range": [-1, 5]})
            ),
            Err(Error::NotAPort { .. })
        ));
    }
}
