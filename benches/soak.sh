#!/usr/bin/env bash
# Soak: the load cases of issue 13 against the release binary, each in a fresh process,
# printing peak RSS, file descriptors (start -> peak -> end) and failures per case:
#   tasks-1000, tasks-10000   TCP echo round trips started with create_task from a script
#   udp-flood                 a subscribed, unread UDP pipe flooded at full speed for 10 s
#   interface-starts          1000 Interface("lo").start() against the built-in STUN server
#   stun-fuzz                 1,000,000 fuzzed datagrams at `p2pd-repl stun-server`, probed
#   tcp-hostile               10,000 TCP connections stalled mid-request, with the default
#                             connection cap and with --max-connections 10000, probed
# Everything runs on loopback. Takes a few minutes; not part of CI (the tests keep small
# samples: tests/stun_hostile.rs, the fuzz_* unit tests).
#
# Usage: benches/soak.sh [--case NAME]... [--flood-secs S] [--flooders N] [--starts N]
#                        [--datagrams N] [--conns N]
# Env:   CARGO_TARGET_DIR (default target)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$HERE/target}
(cd "$HERE" && cargo build --release --bin p2pd-repl)
# 10,000 connections need 20,000+ descriptors between client and server.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
exec python3 "$HERE/benches/soak.py" --repl "$TARGET/release/p2pd-repl" "$@"
