//! What `load_nat` must say on each NAT lab variant (tests/natlab/lab.sh builds them), and
//! the check of a report's JSON against it: one table for every lab test and bench.

use p2pd::net::nat::Delta;
use serde_json::Value;
use std::net::SocketAddr;

/// What `load_nat` must say on one lab variant.
pub struct Expect {
    pub variant: &'static str,
    pub nat: u8,
    pub delta: Delta,
    pub mapping: Option<&'static str>,
    pub filtering: &'static str,
    pub hairpin: Option<bool>,
    pub allocation: Option<&'static str>,
    /// External address behind a NAT (the public address; port kept when `preserving`),
    /// else the client's own address.
    pub behind_nat: bool,
    pub preserving: bool,
}

const EIM: Option<&str> = Some("endpoint-independent");
const EIF: &str = "endpoint-independent";
const ADF: &str = "address-dependent";
const APDF: &str = "address-and-port-dependent";

/// Every variant: the nine IPv4 ones, then the five IPv6 ones (probed with `IP6`).
#[rustfmt::skip]
pub const EXPECTED: [Expect; 14] = [
    Expect { variant: "none", nat: 1, delta: Delta::Equal, mapping: None, filtering: EIF,
             hairpin: None, allocation: None, behind_nat: false, preserving: true },
    Expect { variant: "firewall", nat: 2, delta: Delta::Equal, mapping: None, filtering: APDF,
             hairpin: None, allocation: None, behind_nat: false, preserving: true },
    Expect { variant: "full-cone", nat: 3, delta: Delta::Random, mapping: EIM, filtering: EIF,
             hairpin: Some(true), allocation: Some("random"), behind_nat: true, preserving: false },
    Expect { variant: "restricted", nat: 4, delta: Delta::Random, mapping: EIM, filtering: ADF,
             hairpin: Some(true), allocation: Some("random"), behind_nat: true, preserving: false },
    Expect { variant: "port-restricted", nat: 5, delta: Delta::Random, mapping: EIM,
             filtering: APDF, hairpin: Some(true), allocation: Some("random"), behind_nat: true,
             preserving: false },
    Expect { variant: "symmetric-random", nat: 6, delta: Delta::Random,
             mapping: Some("address-and-port-dependent"), filtering: APDF, hairpin: Some(true),
             allocation: Some("random"), behind_nat: true, preserving: false },
    Expect { variant: "symmetric-sequential", nat: 6, delta: Delta::Independent(1),
             mapping: Some("address-and-port-dependent"), filtering: APDF, hairpin: Some(true),
             allocation: Some("sequential"), behind_nat: true, preserving: false },
    Expect { variant: "addr-dependent", nat: 6, delta: Delta::Random,
             mapping: Some("address-dependent"), filtering: ADF, hairpin: Some(true),
             allocation: Some("random"), behind_nat: true, preserving: false },
    Expect { variant: "masquerade", nat: 5, delta: Delta::Equal, mapping: EIM, filtering: APDF,
             hairpin: Some(false), allocation: Some("preserving"), behind_nat: true,
             preserving: true },
    // IPv6: an open path; stateful firewalls (P2PD 2, with their filtering); NAT66 like
    // masquerade; NPTv6, which translates the prefix and filters nothing.
    Expect { variant: "v6-none", nat: 1, delta: Delta::Equal, mapping: None, filtering: EIF,
             hairpin: None, allocation: None, behind_nat: false, preserving: true },
    Expect { variant: "v6-firewall", nat: 2, delta: Delta::Equal, mapping: None,
             filtering: APDF, hairpin: None, allocation: None, behind_nat: false,
             preserving: true },
    Expect { variant: "v6-firewall-eif", nat: 2, delta: Delta::Equal, mapping: None,
             filtering: EIF, hairpin: None, allocation: None, behind_nat: false,
             preserving: true },
    Expect { variant: "v6-nat66", nat: 5, delta: Delta::Equal, mapping: EIM, filtering: APDF,
             hairpin: Some(false), allocation: Some("preserving"), behind_nat: true,
             preserving: true },
    Expect { variant: "v6-nptv6", nat: 3, delta: Delta::Equal, mapping: EIM, filtering: EIF,
             hairpin: Some(false), allocation: Some("preserving"), behind_nat: true,
             preserving: true },
];

/// The variants of one family: "4" (the IPv4 ones) or "6" (the `v6-` ones).
pub fn variants(family: &str) -> Vec<&'static str> {
    EXPECTED
        .iter()
        .map(|e| e.variant)
        .filter(|v| v.starts_with("v6-") == (family == "6"))
        .collect()
}

/// The expectation for `variant`.
pub fn expect(variant: &str) -> &'static Expect {
    EXPECTED
        .iter()
        .find(|e| e.variant == variant)
        .unwrap_or_else(|| panic!("no expectation for {variant}"))
}

impl Expect {
    /// Every field of a report's JSON (`NatReport::to_json`) against this expectation;
    /// `public_ip` is the client's address as the servers see it behind the NAT.
    pub fn mismatches(&self, v: &Value, client_ip: &str, public_ip: &str) -> Vec<String> {
        let mut bad = Vec::new();
        let mut check = |what: &str, got: &Value, want: Value| {
            if *got != want {
                bad.push(format!("{what}: got {got}, want {want}"));
            }
        };
        let text = |s: Option<&str>| s.map_or(Value::Null, |s| Value::String(s.into()));
        check("type", &v["p2pd"]["type"], self.nat.into());
        check("delta", &v["p2pd"]["delta"], self.delta.to_p2pd_json());
        check("mapping", &v["mapping"], text(self.mapping));
        check("filtering", &v["filtering"], text(Some(self.filtering)));
        check(
            "hairpin",
            &v["hairpin"],
            self.hairpin.map_or(Value::Null, Value::Bool),
        );
        check("allocation", &v["allocation"], text(self.allocation));
        check("assumed", &v["assumed"], Value::Array(Vec::new()));
        let local: Option<SocketAddr> = v["local"].as_str().and_then(|s| s.parse().ok());
        let external: Option<SocketAddr> = v["external"].as_str().and_then(|s| s.parse().ok());
        let same = |a: std::net::IpAddr, b: &str| b.parse::<std::net::IpAddr>().ok() == Some(a);
        match (local, external) {
            (Some(l), Some(x)) => {
                let want_ip = if self.behind_nat {
                    public_ip
                } else {
                    client_ip
                };
                if !same(x.ip(), want_ip) || !same(l.ip(), client_ip) {
                    bad.push(format!(
                        "addresses: local {l}, external {x}, want ip {want_ip}"
                    ));
                }
                if self.preserving && x.port() != l.port() {
                    bad.push(format!(
                        "external port {} != local port {}",
                        x.port(),
                        l.port()
                    ));
                }
            }
            _ => bad.push(format!(
                "local/external missing: {} {}",
                v["local"], v["external"]
            )),
        }
        bad
    }
}
