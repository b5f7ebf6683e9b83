#!/usr/bin/env bash
# NAT lab for p2pd-repl: network namespaces with an nftables NAT router, so the NAT
# classifier can be tested against real kernel NAT behaviour on one machine, offline.
#
#   client  eth0 ─ lan0 ┐
#                       router (nftables)  wan0 ─────────────── isp0  inet
#   client2 eth0 ─ lan1 ┘  203.0.113.100                             203.0.113.1, .2
#                          2001:db8:113::100                         2001:db8:113::1, ::2
#   with --rtt/--loss the WAN link runs through a fifth namespace:
#                          wan0 ─ rt0  link (delayline.py)  in0 ─ isp0
#
#   IPv4 NAT variants:    client 10.77.0.10/24 (gw .1), client2 10.77.1.10/24 (gw .1)
#   IPv4 no-NAT variants: client 198.51.100.10/25 (gw .1), client2 198.51.100.130/25 (gw .129),
#                         and inet routes 198.51.100.0/24 via the router.
#   IPv6 routed modes:    client 2001:db8:100:1::10/64, client2 2001:db8:100:2::10/64 (gw ::1),
#                         inet routes 2001:db8:100::/48 via 2001:db8:113::100.
#   IPv6 NAT66/NPTv6:     client fd77:0:0:1::10/64, client2 fd77:0:0:2::10/64 (gw ::1); NPTv6
#                         maps fd77:0:0:N::/64 to 2001:db8:100:N::/64, routed as above.
#   Only 10.77.0.0/16, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32 and fd77::/16 are used
#   (never 192.0.2.0/24: the host's uplink lives there). Nothing is added to the host
#   namespace. IPv6 is off in the lab namespaces unless a variant or --ipv6 asks for it; then
#   addresses skip DAD and nothing sends or takes router advertisements. Unsolicited WAN
#   packets to the router are dropped silently, like real CPE.
#
# Usage (root; needs nftables, iproute2, conntrack; python3 for verify, measure and the
# delay line; ethtool for --rtt/--loss; coturn and stun-server for --internet):
#   lab.sh up VARIANT [OPTIONS] [-- CMD ARGS...]
#       build the lab; CMD (if given) starts in the inet namespace in the background,
#       e.g.  lab.sh up full-cone -- p2pd-repl stun-server 203.0.113.1:3478 203.0.113.2:3479
#     --hairpin | --no-hairpin  IPv4 hairpinning on or off (default: per variant)
#     --udp-timeout N     conntrack UDP timeouts in the router and the EIF/ADF state, seconds
#     --rtt MS            added round-trip time: MS/2 ms each way on the WAN link (0..10000)
#     --loss PCT          each IP packet crossing the WAN link is dropped with probability
#                         PCT/100, independently, in each direction (0..100); a request and
#                         its reply both get through with probability (1 - PCT/100)^2
#     --ipv6 MODE         IPv6 beside an IPv4 variant (dual stack): a MODE of the v6-*
#                         variants below (none, firewall, firewall-eif, nat66, nptv6)
#     --internet          a small internet of STUN servers reached by name (below), with
#                         server lists in the state directory
#   lab.sh path [--rtt MS] [--loss PCT]  change the delay line of a lab that has one (up with
#                               --rtt or --loss); frames already on the line keep their
#                               delay, and none is overtaken by a later one
#   lab.sh measure [--family 4|6] [--count N] [--interval MS] [--expect-rtt MS --expect-loss PCT]
#                               UDP probes from client to an echo server in inet
#                               (203.0.113.250:7, [2001:db8:113::250]:7): RTT
#                               (min/median/p90/max), loss in each direction, reordering;
#                               with --expect-*, a verdict (udpprobe.py rtt says how)
#   lab.sh server CMD ARGS...   start CMD in the inet namespace (background, logged)
#   lab.sh exec ROLE CMD ARGS... run CMD in ROLE = client|client2|router|inet|link
#   lab.sh flush                forget all NAT state (conntrack + EIF/ADF sets)
#   lab.sh status               variant, addresses, ruleset, conntrack, delay line counters
#   lab.sh down                 kill lab processes, delete the namespaces
#   lab.sh verify [VARIANT...]  check each variant with udpprobe.py (all by default)
#   lab.sh verify-path [VARIANT] every RTT 1/50/150/300 ms with every loss 0/10/25 %, measured
#                               against the settings on one lab (default port-restricted
#                               with --ipv6 firewall: both families; a v6-* one: IPv6)
#   lab.sh verify-internet      check every --internet server by kind, with stunlab.py,
#                               turnutils_natdiscovery (RFC 5780) and stun (RFC 3489)
#   lab.sh variants             list the variants
# Environment: P2PD_LAB_PREFIX (default "p2pdlab-") names the namespaces, so two labs can
# run side by side; P2PD_REPL is the p2pd-repl binary for --internet (default: the
# repository's target/debug, then target/release, then PATH). State (env file, logs, server
# lists) lives in /run/${P2PD_LAB_PREFIX}lab.
#
# The env file ($STATE/env, KEY=VALUE): VARIANT, NAT (yes|no|off), MAPPING, FILTERING,
# HAIRPIN, CLIENT_IP, CLIENT2_IP, PUBLIC_IP, STUN_IP1/2, STUN_PORT1/2 (the IPv4 side; NAT=off
# and no client addresses for v6-* variants); FAMILIES (4, 6 or 46), V6_MODE, CLIENT_IP6,
# CLIENT2_IP6, PUBLIC_IP6 (the client's address as inet sees it: the router's under NAT66),
# STUN6_IP1/2; PATH_DELAY_LINE (yes|no), RTT_MS, LOSS_PCT; INTERNET, and with --internet
# STUN_LIST, STUN_LIST_PLAIN and STUN_SERVER_1..STUN_SERVER_COUNT, one per server and family:
# "HOST PORT FAMILY KIND ADDRESS EXTRA" (what it really is: lab-internet.sh).
#
# The small internet (--internet; lab-internet.sh has the table and the why): names in
# stun.lab.test, in a hosts file of the client namespaces (/etc/netns/NS/hosts, which
# `ip netns exec` mounts over /etc/hosts; the resolv.conf there has no name server, so any
# other name fails at once). inet gets IPv6 for them even on IPv4-only variants.
#   plain1   203.0.113.11:3478 and :3479, [2001:db8:113::11]:3478  plain (p2pd-repl stun-server)
#   plain2   203.0.113.12:3478; plain3 203.0.113.13:3478          plain
#   plain6   [2001:db8:113::12]:3478                               plain, IPv6 only
#   rfc5780  203.0.113.21 + .22 and [2001:db8:113::21] + [::22], ports 3478/3479: coturn
#   rfc3489  203.0.113.31 + .32, ports 3478/3479: stund
#   silent   203.0.113.41: nobody's (a permanent neighbour entry to an unused MAC)
#   closed   203.0.113.42: inet's, nothing listens (ICMP port unreachable)
#   liar     203.0.113.51 + .52, 3478/3479: OTHER-ADDRESS, answers from where it was asked
#   wrongsrc 203.0.113.61:3478, answers from 203.0.113.62:3478 (no CHANGE-REQUEST asked)
#   slow     203.0.113.71:3478, answers 400 ms late (the last three: stunlab.py)
# $STATE/stun_servers.txt lists them all, CAPS as a public list might claim (the dead ones
# and the liar claim change support); $STATE/stun_servers_plain.txt only the plain ones.
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
# IPv6 only (clients have no IPv4 address; inet keeps its IPv4 side):
#   v6-none               no NAT, no filter: the open internet         (P2PD 1)
#   v6-firewall           no NAT, conntrack APDF firewall               (P2PD 2)
#   v6-firewall-eif       no NAT, EIF firewall: any remote may reach a local address:port
#                         that sent out in the last 30 s (--udp-timeout) (P2PD 1 by behaviour)
#   v6-nat66              NAT66 masquerade of fd77:0:0::/48 to 2001:db8:113::100: EIM /
#                         port preserving / APDF / no hairpin, like masquerade (P2PD 5)
#   v6-nptv6              prefix translation fd77:0:0:N::/64 <-> 2001:db8:100:N::/64 (host
#                         part and port kept, checksums updated rather than RFC 6296's
#                         checksum-neutral rewrite), nothing filtered: EIM / preserving /
#                         EIF / no hairpin (P2PD 3)
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
#   - IPv6 (table ip6 p2pdlab6, lab-nft.sh): the EIF firewall keeps @eif (local address .
#     port, refreshed by outbound UDP) and accepts WAN UDP to any member; NAT66 is
#     `masquerade`; NPTv6 is `snat/dnat ip6 prefix to ... map`.
#
# The WAN link (--rtt, --loss; lab-path.sh, delayline.py): the router's wan0 and inet's isp0
# are veths whose peers rt0 and in0 sit in the link namespace, where delayline.py copies
# frames between them (AF_PACKET). Each IPv4/IPv6 packet is dropped with probability
# PCT/100, else sent on RTT/2 after the kernel received it; ARP and neighbour discovery
# pass at once, never dropped (they stand for the link, not for the path). Order is kept
# per direction. wan0, isp0, rt0 and in0 run without checksum/segmentation offload, so
# every copied frame is complete and at most one MTU. The LAN side and hairpinned
# traffic are not delayed. Without --rtt/--loss wan0 and isp0 are one veth pair, as before.
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
#   v6-none               none / eif  / yes (direct) / preserve
#   v6-firewall           none / apdf / yes (direct) / preserve
#   v6-firewall-eif       none / eif  / yes (direct) / preserve
#   v6-nat66              eim  / apdf / no  / preserve
#   v6-nptv6              eim  / eif  / no  / preserve
# (`lab.sh verify` took about 12 s for the first nine on an idle machine, 37 s for all
# fourteen on a busy one.) Also checked by hand:
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
#   - v6-firewall-eif: a remote reaches a client port that sent out (udpprobe's "both"
#     test), and only that one.
#   - `lab.sh verify-path`: all 24 cells passed (400 probes each, one per 2 ms, load average
#     5-8 on the 2 cores): median RTT 0.3-0.6 ms above the setting (1.32, 50.45, 150.5,
#     300.56 ms), loss per direction within the binomial tolerance (at 25 %: 19.7-29.3 %),
#     nothing reordered, nothing lost by the copier; 45 s. A burst of 20,000 probes
#     (about 20,000 frames/s each way) came back complete and in order. Single frames can be tens of
#     ms late when the machine is busy (lateness_max_ms in `status`); medians are not moved.
#   - `lab.sh verify-internet`: every server is the kind its row says (stunlab.py from an
#     open dual-stack client); p2pd-repl resolves all 14 names in the client namespace;
#     behind port-restricted, turnutils_natdiscovery finds APDF through coturn (IPv4 and
#     IPv6) and is fooled into "Endpoint Independent Filtering" by the liar, and stun-client
#     reports "Port Dependent Filter" through stund; 23 s.
#   - `up` on the 2-core machine (busy): 0.5-1.0 s for an IPv4 variant, +0.5 s for IPv6
#     beside it, +1.2 s for the delay line, +2.7 s for --internet.
set -euo pipefail

PFX=${P2PD_LAB_PREFIX:-p2pdlab-}
NS_CLIENT=${PFX}client
NS_CLIENT2=${PFX}client2
NS_ROUTER=${PFX}router
NS_INET=${PFX}inet
NS_LINK=${PFX}link
ALL_ROLES="client client2 router inet link"
STATE=/run/${PFX}lab
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# The lab's Python helpers import each other: keep their bytecode out of the source tree.
export PYTHONDONTWRITEBYTECODE=1

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
V6_MODES="none firewall firewall-eif nat66 nptv6"
V6_VARIANTS="v6-none v6-firewall v6-firewall-eif v6-nat66 v6-nptv6"
# IPv6 plan: the WAN /64 mirrors 203.0.113.0/24; LAN N is ${V6_LAN}:N::/64 (routed) or
# ${V6_ULA}:N::/64 (behind NAT66/NPTv6).
V6_WAN=2001:db8:113
ROUTER_IP6=$V6_WAN::100
STUN6_IP1=$V6_WAN::1
STUN6_IP2=$V6_WAN::2
V6_LAN=2001:db8:100
V6_ULA=fd77:0:0

die() { echo "lab.sh: $*" >&2; exit 1; }
ns() { local role=$1; shift; ip netns exec "${PFX}${role}" "$@"; }
# (`ip netns list` complains on stderr about namespaces still being torn down.)
ns_exists() { ip netns list 2>/dev/null | awk '{print $1}' | grep -qx "$1"; }
# A value from the running lab's env file (quotes of the STUN_SERVER_N lines removed).
lab_env() { [ -f "$STATE/env" ] || die "lab is not up"; sed -n "s/^$1=//p" "$STATE/env" | tr -d '"'; }
# The roles of the running lab (link only with a delay line).
roles() { if ns_exists "$NS_LINK"; then echo "client client2 router inet link"; else echo "client client2 router inet"; fi; }

# shellcheck source=lab-nft.sh
. "$HERE/lab-nft.sh"
# shellcheck source=lab-path.sh
. "$HERE/lab-path.sh"
# shellcheck source=lab-internet.sh
. "$HERE/lab-internet.sh"

need_root_and_tools() {
    [ "$(id -u)" = 0 ] || die "must run as root (network namespaces and nftables)"
    local tool
    for tool in ip nft conntrack; do
        command -v "$tool" >/dev/null || die "$tool not found: apt-get install -y nftables iproute2 conntrack"
    done
}

need_tool() {  # $1 command, $2 Debian package, $3 what needs it
    command -v "$1" >/dev/null || die "$3 needs $1: apt-get install -y $2"
}

# variant -> "NAT MAPPING FILTER HAIRPIN" of its IPv4 side ("off" for the v6-* variants)
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
        v6-*)                 v6_mode_spec "${1#v6-}" >/dev/null; echo "off - - no" ;;
        *) die "unknown variant '$1' (one of: $VARIANTS $V6_VARIANTS)" ;;
    esac
}

client_ip() {  # $1 = NAT yes|no, $2 = 1|2
    if [ "$1" = yes ]; then echo "10.77.$(($2 - 1)).10"; else
        [ "$2" = 1 ] && echo 198.51.100.10 || echo 198.51.100.130; fi
}

client_ip6() {  # $1 = IPv6 mode, $2 = 1|2
    if v6_is_translated "$1"; then echo "$V6_ULA:$2::10"; else echo "$V6_LAN:$2::10"; fi
}

# Delete everything belonging to this lab prefix, processes first: a namespace with a
# live process in it would survive `ip netns del`.
lab_down() {
    local role name pid
    for role in $ALL_ROLES; do
        name=${PFX}${role}
        ns_exists "$name" || continue
        for pid in $(ip netns pids "$name" 2>/dev/null); do kill "$pid" 2>/dev/null || true; done
    done
    sleep 0.1
    for role in $ALL_ROLES; do
        name=${PFX}${role}
        ns_exists "$name" || continue
        for pid in $(ip netns pids "$name" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
        ip netns del "$name"
    done
    internet_files_down
    rm -rf "$STATE"
}

ns_base() {  # $1 namespace, $2 ipv6 on|off: fresh namespace with lo up
    ip netns add "$1"
    ip netns exec "$1" ip link set lo up
    if [ "$2" = on ]; then
        # Before any interface exists, so every one inherits it: no DAD, no RS, no RA.
        ip netns exec "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=0 \
            net.ipv6.conf.default.disable_ipv6=0 net.ipv6.conf.all.accept_dad=0 \
            net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.all.dad_transmits=0 \
            net.ipv6.conf.default.dad_transmits=0 net.ipv6.conf.all.accept_ra=0 \
            net.ipv6.conf.default.accept_ra=0 net.ipv6.conf.all.router_solicitations=0 \
            net.ipv6.conf.default.router_solicitations=0
    else
        ip netns exec "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    fi
}

number_in() {  # $1 option, $2 value, $3 max: a decimal number in 0..max, or die
    if ! [[ $2 =~ ^[0-9]+(\.[0-9]+)?$ ]] || ! awk -v v="$2" -v m="$3" 'BEGIN{exit !(v <= m)}'; then
        die "$1 needs a number from 0 to $3, got '$2'"
    fi
}

lab_up() {
    local variant=$1; shift
    local nat mapping filter hairpin timeout="" cmd=() v6=off rtt="" loss="" internet=no
    read -r nat mapping filter hairpin <<<"$(variant_spec "$variant")"
    case $variant in v6-*) v6=${variant#v6-} ;; esac
    while [ $# -gt 0 ]; do
        case $1 in
            --hairpin) hairpin=yes ;;
            --no-hairpin) hairpin=no ;;
            --udp-timeout) [ $# -ge 2 ] || die "--udp-timeout needs seconds"; timeout=$2; shift ;;
            --rtt) [ $# -ge 2 ] || die "--rtt needs milliseconds"; number_in --rtt "$2" 10000; rtt=$2; shift ;;
            --loss) [ $# -ge 2 ] || die "--loss needs a percentage"; number_in --loss "$2" 100; loss=$2; shift ;;
            --ipv6) [ $# -ge 2 ] || die "--ipv6 needs a mode (one of: $V6_MODES)"
                    [ "$nat" != off ] || die "--ipv6 is for IPv4 variants; $variant is IPv6 already"
                    v6_mode_spec "$2" >/dev/null; v6=$2; shift ;;
            --internet) internet=yes ;;
            --) shift; cmd=("$@"); break ;;
            *) die "unknown option '$1'" ;;
        esac
        shift
    done
    local path=no
    [ -n "$rtt$loss" ] && path=yes
    need_root_and_tools
    if [ "$path" = yes ]; then
        need_tool ethtool ethtool "--rtt/--loss"
        need_tool python3 python3 "--rtt/--loss"
    fi
    [ "$internet" = yes ] && internet_need_tools
    lab_down
    mkdir -p "$STATE"
    local v6_inet=off
    [ "$v6" != off ] || [ "$internet" = yes ] && v6_inet=on
    local role v6_here
    for role in client client2 router; do
        v6_here=off; [ "$v6" != off ] && v6_here=on
        ns_base "${PFX}${role}" "$v6_here"
    done
    ns_base "$NS_INET" "$v6_inet"

    ip link add eth0 netns "$NS_CLIENT" type veth peer name lan0 netns "$NS_ROUTER"
    ip link add eth0 netns "$NS_CLIENT2" type veth peer name lan1 netns "$NS_ROUTER"
    if [ "$path" = yes ]; then
        path_link_up
    else
        ip link add wan0 netns "$NS_ROUTER" type veth peer name isp0 netns "$NS_INET"
    fi

    local c1="" c2="" gw1 gw2 len
    if [ "$nat" != off ]; then
        c1=$(client_ip "$nat" 1); c2=$(client_ip "$nat" 2)
        if [ "$nat" = yes ]; then gw1=10.77.0.1; gw2=10.77.1.1; len=24
        else gw1=198.51.100.1; gw2=198.51.100.129; len=25; fi
        ns client ip addr add "$c1/$len" dev eth0
        ns client2 ip addr add "$c2/$len" dev eth0
        ns router ip addr add "$gw1/$len" dev lan0
        ns router ip addr add "$gw2/$len" dev lan1
    fi
    ns router ip addr add "$PUBLIC_IP/24" dev wan0
    ns inet ip addr add "$STUN_IP1/24" dev isp0
    ns inet ip addr add "$STUN_IP2/24" dev isp0
    local c61="" c62="" pub6=""
    if [ "$v6" != off ]; then
        c61=$(client_ip6 "$v6" 1); c62=$(client_ip6 "$v6" 2)
        v6_addresses "$v6" "$c61" "$c62"
        pub6=$ROUTER_IP6
        [ "$v6" = nat66 ] || pub6=$(v6_public "$v6" "$c61")
    fi
    if [ "$v6_inet" = on ]; then
        ns inet ip addr add "$STUN6_IP1/64" dev isp0 nodad
        ns inet ip addr add "$STUN6_IP2/64" dev isp0 nodad
    fi
    for role in client:eth0 client2:eth0 router:lan0 router:lan1 router:wan0 inet:isp0; do
        ns "${role%%:*}" ip link set "${role##*:}" up
    done
    if [ "$nat" != off ]; then
        ns client ip route add default via "$gw1"
        ns client2 ip route add default via "$gw2"
        [ "$nat" = no ] && ns inet ip route add 198.51.100.0/24 via "$PUBLIC_IP"
    fi
    [ "$v6" != off ] && v6_routes "$v6"
    if [ "$v6" != off ]; then
        v6_ready client:eth0 client2:eth0 router:lan0 router:lan1 router:wan0
    fi
    [ "$v6_inet" = on ] && v6_ready inet:isp0

    # Hairpinned packets leave by the interface they came in on: no redirects.
    ns router sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.send_redirects=0 \
        net.ipv4.conf.default.send_redirects=0 net.ipv4.conf.all.rp_filter=0
    local map_timeout=${timeout:-30}
    if [ -n "$timeout" ]; then
        # Conntrack timeouts are per namespace: this leaves the host's alone.
        ns router sysctl -qw net.netfilter.nf_conntrack_udp_timeout="$timeout" \
            net.netfilter.nf_conntrack_udp_timeout_stream="$timeout" 2>/dev/null || true
    fi
    if [ "$nat" != off ]; then
        write_ruleset "$nat" "$mapping" "$filter" "$hairpin" "$map_timeout" >"$STATE/ruleset.nft"
        ns router nft -f "$STATE/ruleset.nft"
    fi
    if [ "$v6" != off ]; then
        write_ruleset6 "$v6" "$map_timeout" >"$STATE/ruleset6.nft"
        ns router nft -f "$STATE/ruleset6.nft"
    fi
    ns router conntrack -F >/dev/null 2>&1 || true
    [ "$path" = yes ] && path_start "${rtt:-0}" "${loss:-0}"

    local families=""
    [ "$nat" != off ] && families=4
    [ "$v6" != off ] && families+=6
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
FAMILIES=$families
V6_MODE=$v6
CLIENT_IP6=$c61
CLIENT2_IP6=$c62
PUBLIC_IP6=$pub6
STUN6_IP1=$([ "$v6_inet" = on ] && echo "$STUN6_IP1")
STUN6_IP2=$([ "$v6_inet" = on ] && echo "$STUN6_IP2")
PATH_DELAY_LINE=$path
RTT_MS=${rtt:-0}
LOSS_PCT=${loss:-0}
INTERNET=$internet
EOF
    [ "$internet" = yes ] && internet_up
    local what="client ${c1:-$c61}, public ${PUBLIC_IP}"
    [ "$v6" != off ] && what+=" / $pub6"
    [ "$path" = yes ] && what+=", rtt ${rtt:-0} ms, loss ${loss:-0} %"
    [ "$internet" = yes ] && what+=", internet"
    echo "lab up: $variant ($what)"
    [ ${#cmd[@]} -gt 0 ] && start_server "${cmd[@]}"
    return 0
}

v6_addresses() {  # $1 mode, $2/$3 client addresses
    local mode=$1 p1 p2
    if v6_is_translated "$mode"; then p1=$V6_ULA:1; p2=$V6_ULA:2; else p1=$V6_LAN:1; p2=$V6_LAN:2; fi
    ns client ip addr add "$2/64" dev eth0 nodad
    ns client2 ip addr add "$3/64" dev eth0 nodad
    ns router ip addr add "$p1::1/64" dev lan0 nodad
    ns router ip addr add "$p2::1/64" dev lan1 nodad
    ns router ip addr add "$ROUTER_IP6/64" dev wan0 nodad
}

# IPv6 starts on an interface only once the kernel has seen its carrier, which it may
# learn up to a second after `ip link set up`; until then neighbour solicitations to it
# have no route and vanish. The link-local address marks the start.
v6_ready() {  # ROLE:DEV...
    local i pair
    for pair in "$@"; do
        for ((i = 0; i < 150; i++)); do
            [ -n "$(ns "${pair%%:*}" ip -6 -o addr show dev "${pair##*:}" scope link)" ] && break
            sleep 0.02
        done
        [ "$i" -lt 150 ] || die "IPv6 did not start on ${pair##*:} in ${PFX}${pair%%:*}"
    done
}

v6_public() {  # $1 mode, $2 client address: the address the internet sees for it
    case $1 in
        nptv6) echo "$V6_LAN:${2#"$V6_ULA":}" ;;
        *)     echo "$2" ;;
    esac
}

v6_routes() {  # $1 mode
    local p1 p2
    if v6_is_translated "$1"; then p1=$V6_ULA:1; p2=$V6_ULA:2; else p1=$V6_LAN:1; p2=$V6_LAN:2; fi
    ns client ip -6 route add default via "$p1::1"
    ns client2 ip -6 route add default via "$p2::1"
    ns router sysctl -qw net.ipv6.conf.all.forwarding=1
    # Masqueraded traffic comes back to the router's own address; the rest is routed.
    [ "$1" = nat66 ] || ns inet ip -6 route add "$V6_LAN::/48" via "$ROUTER_IP6"
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
    ns router nft flush set ip6 p2pdlab6 eif 2>/dev/null || true
}

lab_status() {
    [ -f "$STATE/env" ] || { echo "lab is down"; return 0; }
    cat "$STATE/env"
    local role
    for role in $(roles); do echo "== $role"; ns "$role" ip -br addr; done
    echo "== ruleset (without the ports map)"
    ns router nft list ruleset | grep -v -E '^\s+[0-9]+ : [0-9]+' || true
    echo "== conntrack"
    ns router conntrack -L 2>/dev/null || true
    path_status
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
        v6-nat66|v6-nptv6)    local m f; read -r m f <<<"$(v6_mode_spec "${1#v6-}")"
                              echo "$m $f no preserve" ;;
        v6-*)                 local m f; read -r m f <<<"$(v6_mode_spec "${1#v6-}")"
                              echo "$m $f yes preserve" ;;
    esac
}

# The variant's client address and STUN pair for udpprobe.py: "LOCAL IP1 IP2"
probe_addresses() {
    if [ "$(lab_env NAT)" = off ]; then echo "$(lab_env CLIENT_IP6) $STUN6_IP1 $STUN6_IP2"
    else echo "$(lab_env CLIENT_IP) $STUN_IP1 $STUN_IP2"; fi
}

lab_verify() {
    command -v python3 >/dev/null || die "python3 is needed for verify"
    local variants=("$@") v out got want failed=0 local_ip ip1 ip2
    [ ${#variants[@]} -gt 0 ] || read -r -a variants <<<"$VARIANTS $V6_VARIANTS"
    for v in "${variants[@]}"; do
        case $v in v6-*) ip1=$STUN6_IP1; ip2=$STUN6_IP2 ;; *) ip1=$STUN_IP1; ip2=$STUN_IP2 ;; esac
        lab_up "$v" -- python3 "$HERE/udpprobe.py" serve "$ip1" "$ip2" $STUN_PORT1 $STUN_PORT2 >/dev/null
        read -r local_ip ip1 ip2 <<<"$(probe_addresses)"
        out=$(ns client python3 "$HERE/udpprobe.py" probe "$local_ip" "$ip1" "$ip2" $STUN_PORT1 $STUN_PORT2)
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

sub=${1:-}
[ $# -gt 0 ] && shift
case $sub in
    up)       [ $# -ge 1 ] || die "usage: lab.sh up VARIANT [options] [-- CMD...]"; lab_up "$@" ;;
    down)     need_root_and_tools; lab_down; echo "lab down" ;;
    server)   [ $# -ge 1 ] || die "usage: lab.sh server CMD..."; start_server "$@" ;;
    exec)     [ $# -ge 2 ] || die "usage: lab.sh exec ROLE CMD..."
              case " $ALL_ROLES " in *" $1 "*) ;; *) die "unknown role '$1' (one of: $ALL_ROLES)";; esac
              role=$1; shift; ns "$role" "$@" ;;
    flush)    lab_flush ;;
    status)   lab_status ;;
    path)     path_change "$@" ;;
    measure)  lab_measure "$@" ;;
    verify)   need_root_and_tools; lab_verify "$@" ;;
    verify-path) need_root_and_tools; verify_path "$@" ;;
    verify-internet) need_root_and_tools; verify_internet "$@" ;;
    variants) echo "$VARIANTS $V6_VARIANTS" | tr ' ' '\n' ;;
    *)        sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; [ -z "$sub" ] || exit 2 ;;
esac
