#!/usr/bin/env bash
# NAT benchmark: our load_nat against P2PD 3.1.9's on every NAT lab variant.
# Builds examples/nat_bench.rs in release mode, makes a venv with p2pd==3.1.9 (once; kept
# in $P2PD_VENV), then runs the bench, which prints a table of median wall time and
# packets sent per variant with the ratio ours/P2PD. If P2PD cannot be installed, says so
# and prints our numbers only. Needs root, ip netns, nft, conntrack (like tests/natlab).
#
# Usage: benches/nat.sh [--no-p2pd] [--runs N] [--rtt MS] [--loss PCT] [--internet] [VARIANT...]
#   --rtt/--loss  the lab's WAN delay line (lab.sh up --rtt/--loss)
#   --internet    ours probes the lab's small internet by name (the default-list path)
#   --no-p2pd     ours only (no venv, no P2PD runs)
#   --sim         the virtual-time sweep instead: every variant, RTT and loss, 100 runs
#                 per cell (cargo test --release --lib full_loss_sweep)
# Env:   CARGO_TARGET_DIR (default target), P2PD_VENV (default /tmp/p2pd-3.1.9-venv)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$HERE/target}
VENV=${P2PD_VENV:-/tmp/p2pd-3.1.9-venv}

if [ "${1:-}" = --sim ]; then
    cd "$HERE" && exec cargo test --release --lib full_loss_sweep -- --ignored --nocapture
fi
[ "$(id -u)" = 0 ] || { echo "nat.sh: must run as root (network namespaces)" >&2; exit 1; }
(cd "$HERE" && cargo build --release --example nat_bench)

PY_ARGS=()
WITH_P2PD=yes
if [ "${1:-}" = --no-p2pd ]; then WITH_P2PD=; shift; fi
if [ -z "$WITH_P2PD" ]; then :
elif [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import p2pd' 2>/dev/null; then
    echo "nat.sh: installing p2pd==3.1.9 into $VENV" >&2
    if python3 -m venv "$VENV" && "$VENV/bin/pip" install -q p2pd==3.1.9 >&2; then :; else
        echo "nat.sh: !!! could not install P2PD 3.1.9: printing our numbers only !!!" >&2
    fi
fi
if [ -z "$WITH_P2PD" ]; then :
elif "$VENV/bin/python" -c 'import p2pd' 2>/dev/null; then
    PY_ARGS=(--python "$VENV/bin/python")
else
    echo "nat.sh: !!! P2PD 3.1.9 is not importable from $VENV: printing our numbers only !!!" >&2
fi
exec "$TARGET/release/examples/nat_bench" "${PY_ARGS[@]}" "$@"
