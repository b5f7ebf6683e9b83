# shellcheck shell=bash
# nftables rulesets of the NAT lab, sourced by lab.sh: the IPv4 NATs (table ip p2pdlab) and
# the IPv6 modes (table ip6 p2pdlab6). Each function prints a ruleset for `nft -f`.

# Port expression for `snat ip to PUB : EXPR` per mapping kind (empty: stock SNAT).
port_expr() {
    case $1 in
        hash)       echo "jhash ip saddr . udp sport mod $PORT_POOL_SIZE seed 0x2a map @ports" ;;
        adm)        echo "jhash ip saddr . udp sport . ip daddr mod $PORT_POOL_SIZE seed 0x2a map @ports" ;;
        sequential) echo "numgen inc mod $PORT_POOL_SIZE map @ports" ;;
        *)          echo "" ;;
    esac
}

write_ruleset() {  # $1 NAT $2 MAPPING $3 FILTER $4 HAIRPIN $5 map timeout (s)
    local nat=$1 mapping=$2 filter=$3 hairpin=$4 mt=$5 expr i
    echo "table ip p2pdlab {"
    if [ "$nat" = no ]; then
        if [ "$filter" = apdf ]; then cat <<EOF
  # Stateful firewall without NAT: replies to outbound flows only (conntrack = APDF).
  chain forward {
    type filter hook forward priority filter; policy drop;
    ct state established,related accept
    iifname "lan*" accept
  }
EOF
        fi
        echo "}"
        return
    fi
    expr=$(port_expr "$mapping")
    if [ -n "$expr" ]; then
        echo "  map ports {"
        echo "    typeof numgen inc mod $PORT_POOL_SIZE : udp sport"
        printf "    elements = { "
        for ((i = 0; i < PORT_POOL_SIZE; i++)); do
            printf "%d : %d, " "$i" $((PORT_POOL_START + i))
        done
        echo "}"
        echo "  }"
    fi
    cat <<EOF
  map rev { typeof udp dport : ip saddr . udp sport; flags dynamic, timeout; timeout ${mt}s; }
  set perm_a { typeof udp dport . ip saddr; flags dynamic, timeout; timeout ${mt}s; }

  # One SNAT chain for WAN and hairpin traffic: numgen state is per rule, so sharing it
  # keeps "sequential" sequential across both paths.
  chain snat_out {
EOF
    case $mapping in
        random)   echo "    snat ip to $PUBLIC_IP fully-random" ;;
        preserve) echo "    snat ip to $PUBLIC_IP" ;;
        *)        echo "    meta l4proto udp snat ip to $PUBLIC_IP : $expr"
                  echo "    snat ip to $PUBLIC_IP" ;;
    esac
    cat <<EOF
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "wan0" ip saddr $NAT_LAN jump snat_out
EOF
    [ "$hairpin" = yes ] && echo "    oifname \"lan*\" ip saddr $NAT_LAN ct status dnat jump snat_out"
    cat <<EOF
  }
  # After SNAT: remember each outbound UDP mapping, refreshed by outbound traffic only
  # (RFC 4787 REQ-6).
  chain track {
    type filter hook postrouting priority srcnat + 10; policy accept;
    oifname "wan0" meta l4proto udp ct status snat update @rev { udp sport : ct original ip saddr . ct original proto-src } update @perm_a { udp sport . ip daddr }
  }
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
EOF
    case $filter in
        eif) echo "    iifname \"wan0\" meta l4proto udp dnat ip addr . port to udp dport map @rev" ;;
        adf) echo "    iifname \"wan0\" meta l4proto udp udp dport . ip saddr @perm_a dnat ip addr . port to udp dport map @rev" ;;
    esac
    [ "$hairpin" = yes ] && echo "    iifname \"lan*\" ip daddr $PUBLIC_IP meta l4proto udp dnat ip addr . port to udp dport map @rev"
    cat <<EOF
  }
  chain forward {
    type filter hook forward priority filter; policy drop;
    ct state established,related accept
    iifname "lan*" accept
    ct status dnat accept
  }
  # Unsolicited WAN packets that no rule forwarded end here: dropped, no ICMP.
  chain input {
    type filter hook input priority filter; policy accept;
    iifname "wan0" ct state established,related accept
    iifname "wan0" drop
  }
}
EOF
}
# IPv6 mode -> "MAPPING FILTER" as udpprobe.py sees them (the variants table in lab.sh).
v6_mode_spec() {
    case $1 in
        none)         echo "none eif" ;;
        firewall)     echo "none apdf" ;;
        firewall-eif) echo "none eif" ;;
        nat66)        echo "eim apdf" ;;
        nptv6)        echo "eim eif" ;;
        *) die "unknown IPv6 mode '$1' (one of: $V6_MODES)" ;;
    esac
}

# NAT66 and NPTv6 number their LANs from the ULA prefix; the other modes route the global one.
v6_is_translated() { [ "$1" = nat66 ] || [ "$1" = nptv6 ]; }

write_ruleset6() {  # $1 mode, $2 timeout (s) of the EIF set
    local mode=$1 t=$2 maps_in="" maps_out="" i
    for i in 1 2; do
        maps_out+="${maps_out:+, }${V6_ULA}:$i::/64 : ${V6_LAN}:$i::/64"
        maps_in+="${maps_in:+, }${V6_LAN}:$i::/64 : ${V6_ULA}:$i::/64"
    done
    echo "table ip6 p2pdlab6 {"
    case $mode in
        firewall|firewall-eif|nat66)
            [ "$mode" = firewall-eif ] &&
                echo "  set eif { typeof ip6 saddr . udp sport; flags dynamic, timeout; timeout ${t}s; }"
            echo "  chain forward {"
            echo "    type filter hook forward priority filter; policy drop;"
            # Refreshed by outbound packets only, like the IPv4 EIF map.
            [ "$mode" = firewall-eif ] &&
                echo "    iifname \"lan*\" meta l4proto udp update @eif { ip6 saddr . udp sport }"
            echo "    ct state established,related accept"
            echo "    iifname \"lan*\" accept"
            [ "$mode" = firewall-eif ] &&
                echo "    iifname \"wan0\" meta l4proto udp ip6 daddr . udp dport @eif accept"
            echo "  }"
            ;;
    esac
    case $mode in
        nat66) cat <<EOF
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "wan0" ip6 saddr ${V6_ULA}::/48 masquerade
  }
EOF
            ;;
        nptv6) cat <<EOF
  # Prefix translation both ways: the host part is kept, nothing is filtered.
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    iifname "wan0" dnat ip6 prefix to ip6 daddr map { $maps_in }
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "wan0" snat ip6 prefix to ip6 saddr map { $maps_out }
  }
EOF
            ;;
    esac
    if v6_is_translated "$mode"; then cat <<EOF
  # As on IPv4: unsolicited WAN packets to the router itself are dropped, neighbour
  # discovery excepted (the WAN link needs it).
  chain input {
    type filter hook input priority filter; policy accept;
    iifname "wan0" ct state established,related accept
    iifname "wan0" icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept
    iifname "wan0" drop
  }
EOF
    fi
    echo "}"
}
