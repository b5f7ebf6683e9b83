#!/usr/bin/env bash
# Loopback pipe benchmark: p2pd-repl's pipes from a Rhai script, from the Rust API and a
# plain tokio client, plus P2PD 3.1.9 (Python), all against one echo server (ours, in its
# own process), runs interleaved (in an order rotated every round) so machine noise hits
# every implementation alike.
# Workloads and P2PD's published numbers: p2pd-baseline.md §4.5.
#
#   benches/pipes.sh              5 rounds (REPS=N to change)
#   NO_P2PD=1 benches/pipes.sh    skip the Python peer (no venv, no PyPI)
#
# The venv is made once under $CARGO_TARGET_DIR (or target/) with `pip install p2pd==3.1.9`.
# Traffic stays on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
REPS=${REPS:-5}
TARGET=${CARGO_TARGET_DIR:-target}
TESTS=(tcp_pingpong tcp_stream_1k tcp_stream_16k udp_pingpong udp_window)
IMPLS=(rhai rust tokio)

cargo build --quiet --release --example pipe_bench
BENCH="$TARGET/release/examples/pipe_bench"

# shellcheck source=benches/p2pd_venv.sh
source benches/p2pd_venv.sh

RESULTS=$(mktemp)
coproc SERVER { exec "$BENCH" serve; }
trap 'kill "$SERVER_PID" 2>/dev/null || true; rm -f "$RESULTS"' EXIT
read -r _ TCP_PORT _ UDP_PORT <&"${SERVER[0]}"
echo "echo server: tcp 127.0.0.1:$TCP_PORT udp 127.0.0.1:$UDP_PORT; $REPS rounds of ${IMPLS[*]}" >&2

measure() { # impl test -> msgs/s (or "fail")
    local out
    if [[ $1 == p2pd ]]; then
        out=$(timeout 300 "$VENV/bin/python" benches/p2pd_client.py "$2" "$TCP_PORT" "$UDP_PORT" 2>/dev/null | tail -1) || out=fail
    else
        out=$(timeout 300 "$BENCH" run "$1" "$2" "$TCP_PORT" "$UDP_PORT" 2>/dev/null) || out=fail
    fi
    echo "${out:-fail}"
}

for ((rep = 1; rep <= REPS; rep++)); do
    # Each round starts with the next implementation: on two cores, which client runs
    # right after which shifts results by more than the differences measured.
    shift_by=$(((rep - 1) % ${#IMPLS[@]}))
    order=("${IMPLS[@]:shift_by}" "${IMPLS[@]:0:shift_by}")
    for test in "${TESTS[@]}"; do
        for impl in "${order[@]}"; do
            rate=$(measure "$impl" "$test")
            echo "$test $impl $rate" >>"$RESULTS"
            echo "round $rep $test $impl $rate" >&2
        done
    done
done

python3 - "$RESULTS" <<'PY'
import statistics, sys
SIZE = {"tcp_pingpong": 64, "udp_pingpong": 64, "tcp_stream_1k": 1024,
        "tcp_stream_16k": 16384, "udp_window": 1024}
rates = {}
for line in open(sys.argv[1]):
    test, impl, rate = line.split()
    if rate != "fail":
        rates.setdefault((test, impl), []).append(float(rate))
impls = [i for i in ["rhai", "rust", "tokio", "p2pd"] if any(k[1] == i for k in rates)]
print(f"{'test':<15} {'impl':<6} {'msgs/s median':>14} {'(min-max)':>19} {'MB/s':>8} {'/tokio':>7} {'/p2pd':>7}")
for test in SIZE:
    med = {i: statistics.median(rates[(test, i)]) for i in impls if (test, i) in rates}
    for impl in impls:
        if impl not in med:
            print(f"{test:<15} {impl:<6} {'failed':>14}")
            continue
        r = rates[(test, impl)]
        m = med[impl]
        vs = lambda other: f"{m / med[other]:.2f}x" if other in med else "-"
        print(f"{test:<15} {impl:<6} {m:>14.0f} {f'({min(r):.0f}-{max(r):.0f})':>19} "
              f"{m * SIZE[test] / 1e6:>8.2f} {vs('tokio'):>7} {vs('p2pd'):>7}")
PY
