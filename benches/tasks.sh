#!/usr/bin/env bash
# Task benchmark: N concurrent TCP echo round trips started through tasks, from a Rhai
# script (benches/tasks_echo.rhai), from plain Python asyncio (tasks_echo_asyncio.py) and
# from P2PD 3.1.9 (tasks_echo_p2pd.py), against one echo server; plus N tasks awaiting
# sleep(0.2) (tasks_sleep.rhai, tasks_sleep_asyncio.py). Runs are interleaved, in an order
# rotated every round; each prints its own elapsed time (measured inside the process, so
# start-up is not counted) and /usr/bin/time gives its peak RSS. Prints medians.
#
#   benches/tasks.sh              5 rounds (REPS=N to change)
#   NO_P2PD=1 benches/tasks.sh    skip P2PD (no venv, no PyPI)
#   ALT_REPL=PATH benches/tasks.sh  also run the Rhai scripts with another p2pd-repl
#                                   binary (impl "alt"): an A/B of a change
#
# Needs root: everything runs in a network namespace of its own, where loopback's accept
# queue can be raised (net.core.somaxconn) without touching the host. 10,000 clients that
# connect at once overflow the host's default queue, and the SYNs dropped then (retried
# after 1 s, 3 s...) would time the kernel's retransmission timer, not the clients.
# Traffic stays on that namespace's 127.0.0.1. The P2PD venv is made once under
# $CARGO_TARGET_DIR (or target/) with `pip install p2pd==3.1.9`.
set -euo pipefail
cd "$(dirname "$0")/.."
REPS=${REPS:-5}
TARGET=${CARGO_TARGET_DIR:-target}
COUNTS=(1000 10000)

if [[ $(id -u) != 0 ]]; then
    echo "benches/tasks.sh needs root (it makes a network namespace)" >&2
    exit 2
fi
# Each client holds one socket per task, and so does the server.
ulimit -n "$(ulimit -Hn)"
if (($(ulimit -n) < 10100)); then
    echo "the open-file limit ($(ulimit -n)) is below the 10,000 sockets a run holds" >&2
    exit 2
fi

cargo build --quiet --release --bin p2pd-repl --example echo_backlog_server
REPL="$TARGET/release/p2pd-repl"
SERVER_BIN="$TARGET/release/examples/echo_backlog_server"

IMPLS=(rhai asyncio)
[[ -n ${ALT_REPL:-} ]] && IMPLS+=(alt)
# shellcheck source=benches/p2pd_venv.sh
source benches/p2pd_venv.sh

NS="p2pd-tasks-$$"
RESULTS=$(mktemp)
ip netns add "$NS"
cleanup() {
    [[ -n "${SERVER_PID:-}" ]] && kill "$SERVER_PID" 2>/dev/null || true
    ip netns del "$NS" 2>/dev/null || true
    rm -f "$RESULTS"
}
trap cleanup EXIT
ip netns exec "$NS" ip link set lo up
# P2PD's init_p2pd() checks UDP by sending one datagram to 8.8.8.8: give the namespace a
# default route into a veth pair whose both ends stay inside it (the far end has no
# address and forwarding is off, so the datagram is dropped there).
ip netns exec "$NS" ip link add p2pd-a type veth peer name p2pd-b
ip netns exec "$NS" ip addr add 198.51.100.2/24 dev p2pd-a
ip netns exec "$NS" ip link set p2pd-a up
ip netns exec "$NS" ip link set p2pd-b up
ip netns exec "$NS" ip route add default via 198.51.100.1 dev p2pd-a
ip netns exec "$NS" sysctl -qw net.core.somaxconn=65535 net.ipv4.tcp_max_syn_backlog=65535

coproc SERVER { exec ip netns exec "$NS" "$SERVER_BIN"; }
read -r _ PORT <&"${SERVER[0]}"
echo "echo server: tcp 127.0.0.1:$PORT in netns $NS; $REPS rounds of ${IMPLS[*]}" >&2

measure() { # impl case n -> "seconds ok peak_kib" (or "fail")
    local cmd out
    case "$1/$2" in
        rhai/echo) cmd=("$REPL" benches/tasks_echo.rhai "$PORT" "$3") ;;
        asyncio/echo) cmd=(python3 benches/tasks_echo_asyncio.py "$PORT" "$3") ;;
        p2pd/echo) cmd=("$VENV/bin/python" benches/tasks_echo_p2pd.py "$PORT" "$3") ;;
        rhai/sleep) cmd=("$REPL" benches/tasks_sleep.rhai "$3") ;;
        alt/echo) cmd=("$ALT_REPL" benches/tasks_echo.rhai "$PORT" "$3") ;;
        alt/sleep) cmd=("$ALT_REPL" benches/tasks_sleep.rhai "$3") ;;
        asyncio/sleep) cmd=(python3 benches/tasks_sleep_asyncio.py "$3") ;;
        *) return 1 ;;
    esac
    # P2PD's select() loop cannot watch descriptors past 1024: give up on it sooner.
    local limit=120
    [[ $1 == p2pd ]] && limit=60
    out=$(timeout "$limit" ip netns exec "$NS" /usr/bin/time -f "peak %M" "${cmd[@]}" 2>&1) || true
    local line peak
    line=$(grep -E '^[0-9.]+ [0-9]+$' <<<"$out" | tail -1)
    peak=$(grep -E '^peak [0-9]+$' <<<"$out" | tail -1 | cut -d' ' -f2)
    if [[ -z $line || -z $peak ]]; then
        echo fail
    else
        echo "$line $peak"
    fi
}

CASES=()
for n in "${COUNTS[@]}"; do CASES+=("echo $n"); done
CASES+=("sleep 10000")
for ((rep = 1; rep <= REPS; rep++)); do
    shift_by=$(((rep - 1) % ${#IMPLS[@]}))
    order=("${IMPLS[@]:shift_by}" "${IMPLS[@]:0:shift_by}")
    for case in "${CASES[@]}"; do
        read -r kind n <<<"$case"
        for impl in "${order[@]}"; do
            [[ $impl == p2pd && $kind == sleep ]] && continue
            got=$(measure "$impl" "$kind" "$n")
            echo "$kind $n $impl $got" >>"$RESULTS"
            echo "round $rep: $kind $n $impl: $got" >&2
        done
    done
done

python3 - "$RESULTS" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    kind, n, impl, *rest = line.split()
    runs.setdefault((kind, int(n), impl), []).append(rest)
print(f"{'case':<22} {'impl':<8} {'time s (median)':>16} {'peak RSS MB':>12} {'ok / n':>13} {'failed runs':>12}")
for (kind, n, impl), rs in sorted(runs.items(), key=lambda kv: (kv[0][0], kv[0][1], ["rhai", "alt", "asyncio", "p2pd"].index(kv[0][2]))):
    good = [r for r in rs if r != ["fail"]]
    case = f"{kind} x {n}"
    if not good:
        print(f"{case:<22} {impl:<8} {'failed':>16} {'-':>12} {'-':>13} {len(rs):>12}")
        continue
    t = statistics.median(float(r[0]) for r in good)
    ok = statistics.median(int(r[1]) for r in good)
    mb = statistics.median(int(r[2]) for r in good) / 1024
    print(f"{case:<22} {impl:<8} {t:>16.3f} {mb:>12.1f} {f'{ok:.0f} / {n}':>13} {len(rs) - len(good):>12}")
PY
