#!/usr/bin/env bash
# Port-mapping probe time in the namespace lab (root): portmap_probe("10.77.0.1") from
# the client namespace, N runs in one REPL process per gateway, medians printed as a
# Markdown table. Gateways: the scripted one (tests/natlab/gateway.py) with all three
# protocols, with NAT-PMP only, with UPnP only; miniupnpd 2.3.1 with all three; none.
#   benches/portmap.sh [N] [BINARY]     (default 20 runs, target/release/p2pd-repl)
#   P2PD_LAB_PREFIX names the lab's namespaces (default p2pdpm-); the lab lock the tests
#   take keeps it from running beside another lab.
set -euo pipefail
if [ -z "${P2PD_LAB_LOCKED:-}" ] && command -v flock >/dev/null; then
    P2PD_LAB_LOCKED=1 exec flock "${TMPDIR:-/tmp}/p2pd-natlab.lock" "$0" "$@"
fi
cd "$(dirname "$0")/.."
N=${1:-20}
BIN=$(realpath -m "${2:-$PWD/target/release/p2pd-repl}")
[ -x "$BIN" ] || { echo "build first: cargo build --release (or pass the binary)"; exit 2; }
export P2PD_LAB_PREFIX=${P2PD_LAB_PREFIX:-p2pdpm-}
LAB=tests/natlab/lab.sh
trap '$LAB down >/dev/null' EXIT
$LAB up masquerade >/dev/null
CONF=$(mktemp -d)
printf 'ext_ifname=wan0\nlistening_ip=lan0\nhttp_port=5000\nenable_upnp=yes\nenable_natpmp=yes\nuuid=3d3cec3a-8cf0-11e0-98ee-001a6bd2d07b\nallow 1024-65535 10.77.0.0/16 1024-65535\n' >"$CONF/mu.conf"

measure() {  # label, then the daemon command (or nothing)
    local label=$1; shift
    local pid=""
    if [ $# -gt 0 ]; then
        # `ip netns exec` execs the daemon, so $! is the daemon itself.
        ip netns exec "${P2PD_LAB_PREFIX}router" "$@" >"$CONF/daemon.log" 2>&1 &
        pid=$!
        sleep 0.5
    fi
    local out
    out=$($LAB exec client "$BIN" -e "for n in 0..$N { let r = portmap_probe(\"10.77.0.1\"); print(\`t=\${r.elapsed * 1000.0} \${r.summary}\`) }")
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    local med summary
    med=$(grep '^t=' <<<"$out" | cut -d' ' -f1 | cut -d= -f2 | sort -g | awk '{a[NR]=$1} END{m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.1f", m}')
    summary=$(grep '^t=' <<<"$out" | head -1 | cut -d' ' -f2-)
    echo "| $label | $med | $summary |"
}

echo "| gateway | median ms ($N runs) | answer |"
echo "|---|---|---|"
measure "scripted, UPnP + NAT-PMP + PCP" python3 tests/natlab/gateway.py --upnp --pmp --pcp
measure "miniupnpd 2.3.1, all three" miniupnpd -f "$CONF/mu.conf" -d -P "$CONF/pid"
measure "scripted, NAT-PMP only" python3 tests/natlab/gateway.py --pmp
measure "scripted, UPnP only (multicast-only SSDP)" python3 tests/natlab/gateway.py --upnp --ssdp multicast
measure "none" 
rm -rf "$CONF"
