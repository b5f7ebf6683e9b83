//! Guessing Ethernet / Wi-Fi from an interface name, as P2PD's `get_interface_type` does
//! (inventory §1.5). Names that match neither (lo, docker0, ifb0, tun0, bridges) are
//! "unknown" and filtered out of [`usable_names`] unless nothing else is left.

/// P2PD's `INTERFACE_UNKNOWN/ETHERNET/WIRELESS` (0/1/2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InterfaceType {
    Unknown = 0,
    Ethernet = 1,
    Wireless = 2,
}

/// P2PD's `re.match("en[0-9]+")`: "en" then a digit at the start.
fn en_number(n: &str) -> bool {
    n.strip_prefix("en")
        .and_then(|r| r.chars().next())
        .is_some_and(|c| c.is_ascii_digit())
}

/// Applies P2PD's rules to the lower-cased name.
pub fn interface_type(name: &str) -> InterfaceType {
    let n = name.to_lowercase();
    let has = |parts: &[&str]| parts.iter().any(|p| n.contains(p));
    if en_number(&n) || has(&["eth", "eno", "ens", "enp", "enx", "ethernet"]) {
        InterfaceType::Ethernet
    } else if has(&["wlx", "wlp", "wireless", "wlan", "wifi"]) || n.starts_with("wl") {
        InterfaceType::Wireless
    } else {
        InterfaceType::Unknown
    }
}

/// P2PD's `list_interfaces`: known-type names, sorted and deduplicated; all names when none
/// has a known type.
pub fn usable_names(names: &[String]) -> Vec<String> {
    let mut keep: Vec<String> = names
        .iter()
        .filter(|n| interface_type(n) != InterfaceType::Unknown)
        .cloned()
        .collect();
    if keep.is_empty() {
        keep = names.to_vec();
    }
    keep.sort();
    keep.dedup();
    keep
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_rules() {
        let rows = [
            ("eth0", InterfaceType::Ethernet),
            ("wlp2s0", InterfaceType::Wireless),
            ("enp3s0", InterfaceType::Ethernet),
            ("en0", InterfaceType::Ethernet),
            ("enx00e04c680001", InterfaceType::Ethernet),
            ("WLAN0", InterfaceType::Wireless),
            ("wl0", InterfaceType::Wireless),
            ("lo", InterfaceType::Unknown),
            ("docker0", InterfaceType::Unknown),
            ("ifb0", InterfaceType::Unknown),
            ("tun0", InterfaceType::Unknown),
        ];
        for (name, want) in rows {
            assert_eq!(interface_type(name), want, "{name}");
        }
    }

    #[test]
    fn usable_filter() {
        let names: Vec<String> = ["lo", "wlp2s0", "eth0", "docker0", "eth0"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(usable_names(&names), vec!["eth0", "wlp2s0"]);
        let junk: Vec<String> = ["lo", "ifb0"].iter().map(|s| s.to_string()).collect();
        assert_eq!(usable_names(&junk), vec!["ifb0", "lo"]);
    }
}
