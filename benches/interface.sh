#!/usr/bin/env bash
# Interface start benchmark: `Interface(name).start()` against the built-in STUN server and
# with no server reachable (time to return against the timeout), next to P2PD 3.1.9's
# `Interface("eth0").start()` in the NAT lab. Builds examples/interface_bench.rs and the
# p2pd-repl binary (the lab's STUN server) in release mode and prints one table: median
# wall time and packets sent per case.
#   - loopback cases run anywhere (servers on 127.0.0.1, 127.0.0.2 and [::1]);
#   - lab cases need root, ip netns, nft and conntrack (like tests/natlab), run on the
#     masquerade variant, and hold /tmp/p2pd-natlab.lock so no lab test runs meanwhile;
#   - P2PD is measured when $P2PD_VENV has p2pd 3.1.9 (made once, as benches/nat.sh does).
#
# Usage: benches/interface.sh [--runs N] [--timeout-runs M] [--no-lab]
#        NO_P2PD=1 benches/interface.sh    (no venv, no PyPI)
# Env:   CARGO_TARGET_DIR (default target), P2PD_VENV (default /tmp/p2pd-3.1.9-venv)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$HERE/target}
VENV=${P2PD_VENV:-/tmp/p2pd-3.1.9-venv}

(cd "$HERE" && cargo build --release --example interface_bench --bin p2pd-repl)
ARGS=(--repl "$TARGET/release/p2pd-repl")

if [ -z "${NO_P2PD:-}" ] && [ "$(id -u)" = 0 ]; then
    if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import p2pd' 2>/dev/null; then
        echo "interface.sh: installing p2pd==3.1.9 into $VENV" >&2
        python3 -m venv "$VENV" && "$VENV/bin/pip" install -q p2pd==3.1.9 >&2 || true
    fi
    if "$VENV/bin/python" -c 'import p2pd' 2>/dev/null; then
        ARGS+=(--python "$VENV/bin/python")
    else
        echo "interface.sh: !!! P2PD 3.1.9 is not importable from $VENV: our numbers only !!!" >&2
    fi
fi

BENCH=$TARGET/release/examples/interface_bench
if [ "$(id -u)" = 0 ] && command -v flock >/dev/null; then
    exec flock "${TMPDIR:-/tmp}/p2pd-natlab.lock" "$BENCH" "${ARGS[@]}" "$@"
fi
exec "$BENCH" "${ARGS[@]}" "$@"
