#!/usr/bin/env bash
# Size limits benchmark: how long a script takes to build one large value by small
# changes, with the default limits (string, array, map and nesting on) and with the size
# limits off (`--limit string=0 --limit array=0 --limit map=0`; nesting cannot be off).
# Rhai, unpatched, measured the whole value after each change, so 100,000 pushes took
# 13.7 s with a limit on; vendor/rhai checks each value's own size in O(1) instead, and
# the two columns should agree to within noise. Each run times itself (timestamp() in the
# script), so start-up is not counted; runs are interleaved; prints medians in ms.
#
#   benches/limits.sh             5 rounds (REPS=N to change, N=items per run)
set -euo pipefail
cd "$(dirname "$0")/.."
REPS=${REPS:-5}
N=${N:-100000}
TARGET=${CARGO_TARGET_DIR:-target}

cargo build --quiet --release --bin p2pd-repl
REPL="$TARGET/release/p2pd-repl"

declare -A WORK=(
    [push]="let a = []; for i in 0..$N { a.push(i) }"
    [string_append]='let s = ""; for i in 0..'$N' { s += "x" }'
    [map_insert]='let m = #{}; for i in 0..'$N' { m[`k${i}`] = i }'
    [nested_push]="let a = [[]]; for i in 0..$N { a[0].push([i]) }"
    [property_append]="let m = #{list: []}; for i in 0..$N { m.list += [i] }"
)
NAMES=(push string_append map_insert nested_push property_append)
OFF=(--limit string=0 --limit array=0 --limit map=0)
RESULTS=$(mktemp)
trap 'rm -f "$RESULTS"' EXIT

run() { # name mode
    local code="let t0 = timestamp(); ${WORK[$1]}; print((t0.elapsed * 1000.0).round())"
    local ms
    if [[ $2 == on ]]; then
        ms=$("$REPL" -e "$code")
    else
        ms=$("$REPL" "${OFF[@]}" -e "$code")
    fi
    echo "$1 $2 $ms" >>"$RESULTS"
}

for ((r = 0; r < REPS; r++)); do
    for name in "${NAMES[@]}"; do
        if ((r % 2)); then run "$name" off; run "$name" on; else run "$name" on; run "$name" off; fi
    done
done

median() { sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
printf '%-16s %10s %10s   (%s items, median of %s, ms)\n' work "limits on" "off" "$N" "$REPS"
for name in "${NAMES[@]}"; do
    on=$(awk -v n="$name" '$1 == n && $2 == "on" {print $3}' "$RESULTS" | median)
    off=$(awk -v n="$name" '$1 == n && $2 == "off" {print $3}' "$RESULTS" | median)
    printf '%-16s %10s %10s\n' "$name" "$on" "$off"
done
