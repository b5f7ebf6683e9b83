#!/usr/bin/env bash
# NAT lab for p2pd-repl: network namespaces with an nftables NAT router, so the NAT
# classifier can be tested against real kernel NAT behaviour on one machine, offline.
#
#   client  eth0 ─ lan0 ┐
#                       router (nftables)  wan0 203.0.113.100 ─ isp0  inet
#   client2 eth0 ─ lan1 ┘                                       203.0.113.1, 203.0.113.2
#
#   NAT variants:    client 10.77.0.10/24 (gw .1), client2 10.77.1.10/24 (gw .1)
#   no-NAT variants: client 198.51.100.10/25 (gw .1), client2 198.51.100.130/25 (gw .129),
#                    and inet routes 198.51.100.0/24 via the router.
#   Only 10.77.0.0/16, 198.51.100.0/24 and 203.0.113.0/24 are used (never 192.0.2.0/24:
#   the host's uplink lives there). Nothing is added to the host namespace; IPv6 is off in
#   the lab namespaces. Unsolicited WAN packets are dropped silently, like real CPE.
#
# Usage (root; needs nftables, iproute2, conntrack; python3 for `verify`):
#   lab.sh up VARIANT [--hairpin|--no-hairpin] [--udp-timeout N] [-- CMD ARGS...]
#       build the lab; CMD (if given) starts in the inet namespace in the background,
#       e.g.  lab.sh up full-cone -- p2pd-repl stun-server 203.0.113.1:3478 203.0.113.2:3479
#   lab.sh server CMD ARGS...   start CMD in the inet namespace (background, logged)
#   lab.sh exec ROLE CMD ARGS... run CMD in ROLE = client|client2|router|inet
#   lab.sh flush                forget all NAT state (conntrack + EIF/ADF sets)
#   lab.sh status               variant, addresses, ruleset, conntrack entries
#   lab.sh down                 kill lab processes, delete the namespaces
#   lab.sh verify [VARIANT...]  check each variant with udpprobe.py (all by default)
#   lab.sh variants             list the variants
# Environment: P2PD_LAB_PREFIX (default "p2pdlab-") names the namespaces, so two labs can
# run side by side.
#
# Variants (RFC 4787 mapping / port allocation / filtering / hairpin):
#   none                  no NAT, no filter                 (P2PD 1 open internet)
#   firewall              no NAT, conntrack APDF firewall   (P2PD 2 symmetric UDP firewall)
#   full-cone             EIM / hash / EIF / hairpin        (P2PD 3)
#   restricted            EIM / hash / ADF / hairpin        (P2PD 4)
#   port-restricted       EIM / hash / APDF / hairpin       (P2PD 5)
#   symmetric-random      APDM / random / APDF / hairpin    (P2PD 6)
#   symmetric-sequential  APDM / +1 per new flow / APDF / hairpin (P2PD 6, delta 4 value 1)
#   addr-dependent        ADM / hash per dest IP / ADF / hairpin  (RFC 3489: symmetric)
#   masquerade            EIM / port preserving / APDF / NO hairpin (stock Linux masquerade)
#
# How each is built (see shared/reference/nat-emulation.md for the why):
#   - Linux SNAT alone is EIM + APDF. "hash"/"adm"/"sequential" port choices go through
#     `map @ports` (numgen/jhash values are host-endian and come out byte-swapped when used
#     as a port directly). "random" is `snat ... fully-random`.
#   - EIF/ADF: the `track` chain (postrouting, after SNAT) records every outbound UDP
#     mapping in @rev (ext port -> internal ip.port) and @perm_a (ext port . remote ip);
#     prerouting DNATs unsolicited WAN packets through @rev (EIF) or only when @perm_a
#     has the sender's IP (ADF). APDF needs no rule: conntrack already does it.
#   - Hairpin: LAN packets to the public IP are DNATed through @rev and SNATed by the same
#     `snat_out` chain as WAN traffic, so the target sees the sender's external address.
#   - Hash mappings can collide (two local ports, one external port, same destination);
#     the kernel then drops the packet (conntrack -S insert_failed). One lost delta sample
#     is harmless; a test that needs every reply must retry.
#
# Verification done by hand while building this (Debian 12 container, kernel 6.18,
# nftables 1.0.6); `lab.sh verify` repeats it, printing the probe's view per variant:
#   for v in none firewall full-cone restricted port-restricted symmetric-random \
#            symmetric-sequential addr-dependent masquerade; do
#     tests/natlab/lab.sh up $v -- python3 tests/natlab/udpprobe.py serve \
#         203.0.113.1 203.0.113.2 3478 3479
#     tests/natlab/lab.sh exec client python3 tests/natlab/udpprobe.py probe \
#         <client ip> 203.0.113.1 203.0.113.2 3478 3479
#     tests/natlab/lab.sh down
#   done
# giving (mapping / filtering / hairpin / allocation of 6 consecutive local ports):
#   none                  none / eif  / yes (direct) / preserve
#   firewall              none / apdf / yes (direct) / preserve
#   full-cone             eim  / eif  / yes, src = sender's mapping / other (hash)
#   restricted            eim  / adf  / yes / other
#   port-restricted       eim  / apdf / yes / other
#   symmetric-random      apdm / apdf / yes, src = a new mapping / other (random)
#   symmetric-sequential  apdm / apdf / yes / sequential (+1 per flow)
#   addr-dependent        adm  / adf  / yes / other
#   masquerade            eim  / apdf / no  / preserve
# (`lab.sh verify` took about 12 s for all nine.) Also checked by hand:
#   - unsolicited inbound on full-cone: with nothing mapped, the client listening on
#     10.77.0.10:40000 received nothing when inet (203.0.113.2:5555) sent to
#     203.0.113.100 ports 40000, 20000 and 32475:
#       lab.sh exec client python3 -c 'import socket,select; s=socket.socket(2,2);
#         s.bind(("10.77.0.10",40000)); print(select.select([s],[],[],1.5)[0])' &
#       lab.sh exec inet python3 -c 'import socket; s=socket.socket(2,2);
#         s.bind(("203.0.113.2",5555)); [s.sendto(b"x",("203.0.113.100",p))
#         for p in (40000,20000,32475)]'
#   - `lab.sh up restricted --udp-timeout 3 -- python3 tests/natlab/udpprobe.py serve ...`,
#     a probe, then `lab.sh exec router conntrack -L`: the outbound flows plus one
#     [UNREPLIED] inbound flow DNATed by the ADF rule; 4 s later conntrack and @rev were
#     empty (per-namespace timeout honoured).
#   - hairpin between two hosts: client (10.77.0.10:40000) asked 203.0.113.1:3478 for its
#     mapping, then client2 (10.77.1.10:50000) sent to that mapping. port-restricted:
#     client got it from 203.0.113.100:21348 (client2's external mapping, REQ-9);
#     masquerade: nothing arrived (stock Linux does not hairpin).
#   - `lab.sh down` leaves no p2pdlab-* namespace (`ip netns list`).
set -euo pipefail

PFX=${P2PD_LAB_PREFIX:-p2pdlab-}
NS_CLIENT=${PFX}client
NS_CLIENT2=${PFX}client2
NS_ROUTER=${PFX}router
NS_INET=${PFX}inet
ROLES="client client2 router inet"
STATE=/run/${PFX}lab
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

PUBLIC_IP=203.0.113.100
STUN_IP1=203.0.113.1
STUN_IP2=203.0.113.2
STUN_PORT1=3478
STUN_PORT2=3479
NAT_LAN=10.77.0.0/16
PORT_POOL_START=20000
# 16384 external ports for hash/sequential maps: few collisions, about 0.1 s to load.
PORT_POOL_SIZE=16384
VARIANTS="none firewall full-cone restricted port-restricted symmetric-random symmetric-sequential addr-dependent masquerade"

die() { echo "lab.sh: $*" >&2; exit 1; }
ns() { local role=$1; shift; ip netns exec "${PFX}${role}" "$@"; }
ns_exists() { ip netns list | awk '{print $1}' | grep -qx "$1"; }

need_root_and_tools() {
    [ "$(id -u)" = 0 ] || die "must run as root (network namespaces and nftables)"
    local tool
    for tool in ip nft conntrack; do
        command -v "$tool" >/dev/null || die "$tool not found: apt-get install -y nftables iproute2 conntrack"
    done
}

# variant -> "NAT MAPPING FILTER HAIRPIN"
variant_spec() {
    case $1 in
        none)                 echo "no - none no" ;;
        firewall)             echo "no - apdf no" ;;
        full-cone)            echo "yes hash eif yes" ;;
        restricted)           echo "yes hash adf yes" ;;
        port-restricted)      echo "yes hash apdf yes" ;;
        symmetric-random)     echo "yes random apdf yes" ;;
        symmetric-sequential) echo "yes sequential apdf yes" ;;
        addr-dependent)       echo "yes adm adf yes" ;;
        masquerade)           echo "yes preserve apdf no" ;;
        *) die "unknown variant '$1' (one of: $VARIANTS)" ;;
    esac
}

client_ip() {  # $1 = NAT yes|no, $2 = 1|2
    if [ "$1" = yes ]; then echo "10.77.$(($2 - 1)).10"; else
        [ "$2" = 1 ] && echo 198.51.100.10 || echo 198.51.100.130; fi
}

# Delete everything belonging to this lab prefix, processes first: a namespace with a
# live process in it would survive `ip netns del`.
lab_down() {
    local role name pid
    for role in $ROLES; do
        name=${PFX}${role}
        ns_exists "$name" || continue
        for pid in $(ip netns pids "$name" 2>/dev/null); do kill "$pid" 2>/dev/null || true; done
    done
    sleep 0.1
    for role in $ROLES; do
        name=${PFX}${role}
        ns_exists "$name" || continue
        for pid in $(ip netns pids "$name" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
        ip netns del "$name"
    done
    rm -rf "$STATE"
}

ns_base() {  # fresh namespace with lo up and IPv6 off
    ip netns add "$1"
    ip netns exec "$1" ip link set lo up
    ip netns exec "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
}

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

lab_up() {
    local variant=$1; shift
    local nat mapping filter hairpin timeout="" cmd=()
    read -r nat mapping filter hairpin <<<"$(variant_spec "$variant")"
    while [ $# -gt 0 ]; do
        case $1 in
            --hairpin) hairpin=yes ;;
            --no-hairpin) hairpin=no ;;
            --udp-timeout) [ $# -ge 2 ] || die "--udp-timeout needs seconds"; timeout=$2; shift ;;
            --) shift; cmd=("$@"); break ;;
            *) die "unknown option '$1'" ;;
        esac
        shift
    done
    need_root_and_tools
    lab_down
    mkdir -p "$STATE"
    local role
    for role in $ROLES; do ns_base "${PFX}${role}"; done

    ip link add eth0 netns "$NS_CLIENT" type veth peer name lan0 netns "$NS_ROUTER"
    ip link add eth0 netns "$NS_CLIENT2" type veth peer name lan1 netns "$NS_ROUTER"
    ip link add wan0 netns "$NS_ROUTER" type veth peer name isp0 netns "$NS_INET"

    local c1 c2 gw1 gw2 len
    c1=$(client_ip "$nat" 1); c2=$(client_ip "$nat" 2)
    if [ "$nat" = yes ]; then gw1=10.77.0.1; gw2=10.77.1.1; len=24
    else gw1=198.51.100.1; gw2=198.51.100.129; len=25; fi
    ns client ip addr add "$c1/$len" dev eth0
    ns client2 ip addr add "$c2/$len" dev eth0
    ns router ip addr add "$gw1/$len" dev lan0
    ns router ip addr add "$gw2/$len" dev lan1
    ns router ip addr add "$PUBLIC_IP/24" dev wan0
    ns inet ip addr add "$STUN_IP1/24" dev isp0
    ns inet ip addr add "$STUN_IP2/24" dev isp0
    for role in client:eth0 client2:eth0 router:lan0 router:lan1 router:wan0 inet:isp0; do
        ns "${role%%:*}" ip link set "${role##*:}" up
    done
    ns client ip route add default via "$gw1"
    ns client2 ip route add default via "$gw2"
    [ "$nat" = no ] && ns inet ip route add 198.51.100.0/24 via "$PUBLIC_IP"

    # Hairpinned packets leave by the interface they came in on: no redirects.
    ns router sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.send_redirects=0 \
        net.ipv4.conf.default.send_redirects=0 net.ipv4.conf.all.rp_filter=0
    local map_timeout=${timeout:-30}
    if [ -n "$timeout" ]; then
        # Conntrack timeouts are per namespace: this leaves the host's alone.
        ns router sysctl -qw net.netfilter.nf_conntrack_udp_timeout="$timeout" \
            net.netfilter.nf_conntrack_udp_timeout_stream="$timeout" 2>/dev/null || true
    fi
    write_ruleset "$nat" "$mapping" "$filter" "$hairpin" "$map_timeout" >"$STATE/ruleset.nft"
    ns router nft -f "$STATE/ruleset.nft"
    ns router conntrack -F >/dev/null 2>&1 || true

    cat >"$STATE/env" <<EOF
VARIANT=$variant
NAT=$nat
MAPPING=$mapping
FILTERING=$filter
HAIRPIN=$hairpin
CLIENT_IP=$c1
CLIENT2_IP=$c2
PUBLIC_IP=$PUBLIC_IP
STUN_IP1=$STUN_IP1
STUN_IP2=$STUN_IP2
STUN_PORT1=$STUN_PORT1
STUN_PORT2=$STUN_PORT2
EOF
    echo "lab up: $variant (client $c1, public $PUBLIC_IP, stun $STUN_IP1/$STUN_IP2)"
    [ ${#cmd[@]} -gt 0 ] && start_server "${cmd[@]}"
    return 0
}

start_server() {
    [ -d "$STATE" ] || die "lab is not up"
    local n
    n=$(find "$STATE" -maxdepth 1 -name 'server*.pid' | wc -l)
    ns inet "$@" >"$STATE/server$n.log" 2>&1 &
    echo $! >"$STATE/server$n.pid"
    # Give it a moment to bind, and say so if it died at once.
    sleep 0.2
    kill -0 "$(cat "$STATE/server$n.pid")" 2>/dev/null \
        || die "server '$*' exited at once: $(cat "$STATE/server$n.log")"
    echo "server started in ${NS_INET}: $* (log $STATE/server$n.log)"
}

lab_flush() {
    ns router conntrack -F >/dev/null 2>&1 || true
    ns router nft flush map ip p2pdlab rev 2>/dev/null || true
    ns router nft flush set ip p2pdlab perm_a 2>/dev/null || true
}

lab_status() {
    [ -f "$STATE/env" ] || { echo "lab is down"; return 0; }
    cat "$STATE/env"
    local role
    for role in $ROLES; do echo "== $role"; ns "$role" ip -4 -br addr; done
    echo "== ruleset (without the ports map)"
    ns router nft list ruleset | grep -v -E '^\s+[0-9]+ : [0-9]+' || true
    echo "== conntrack"
    ns router conntrack -L 2>/dev/null || true
}

# Expected udpprobe.py view: "mapping filtering hairpin alloc"
expected_view() {
    case $1 in
        none|firewall) local f=eif; [ "$1" = firewall ] && f=apdf; echo "none $f yes preserve" ;;
        full-cone)            echo "eim eif yes other" ;;
        restricted)           echo "eim adf yes other" ;;
        port-restricted)      echo "eim apdf yes other" ;;
        symmetric-random)     echo "apdm apdf yes other" ;;
        symmetric-sequential) echo "apdm apdf yes sequential" ;;
        addr-dependent)       echo "adm adf yes other" ;;
        masquerade)           echo "eim apdf no preserve" ;;
    esac
}

lab_verify() {
    command -v python3 >/dev/null || die "python3 is needed for verify"
    local variants=("$@") v out got want failed=0
    [ ${#variants[@]} -gt 0 ] || read -r -a variants <<<"$VARIANTS"
    for v in "${variants[@]}"; do
        lab_up "$v" -- python3 "$HERE/udpprobe.py" serve $STUN_IP1 $STUN_IP2 $STUN_PORT1 $STUN_PORT2 >/dev/null
        # shellcheck disable=SC1091
        out=$(ns client python3 "$HERE/udpprobe.py" probe "$(. "$STATE/env"; echo "$CLIENT_IP")" \
            $STUN_IP1 $STUN_IP2 $STUN_PORT1 $STUN_PORT2)
        got=$(awk -F= '$1=="mapping"{m=$2} $1=="filtering"{f=$2} $1=="hairpin"{split($2,h," ")}
                       $1=="alloc"{a=$2} END{print m, f, h[1], a}' <<<"$out")
        want=$(expected_view "$v")
        if [ "$got" = "$want" ]; then echo "PASS $v: $got"; else
            echo "FAIL $v: got '$got', want '$want'"; failed=1; fi
        sed 's/^/    /' <<<"$out"
    done
    lab_down
    return $failed
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case $cmd in
    up)       [ $# -ge 1 ] || die "usage: lab.sh up VARIANT [options] [-- CMD...]"; lab_up "$@" ;;
    down)     need_root_and_tools; lab_down; echo "lab down" ;;
    server)   [ $# -ge 1 ] || die "usage: lab.sh server CMD..."; start_server "$@" ;;
    exec)     [ $# -ge 2 ] || die "usage: lab.sh exec ROLE CMD..."
              case " $ROLES " in *" $1 "*) ;; *) die "unknown role '$1' (one of: $ROLES)";; esac
              role=$1; shift; ns "$role" "$@" ;;
    flush)    lab_flush ;;
    status)   lab_status ;;
    verify)   need_root_and_tools; lab_verify "$@" ;;
    variants) echo "$VARIANTS" | tr ' ' '\n' ;;
    *)        sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; [ -z "$cmd" ] || exit 2 ;;
esac
