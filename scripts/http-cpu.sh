#!/usr/bin/env bash
# Server CPU per request under wrk, for comparing builds of `convo` on a noisy machine
# (throughput swings with the host; CPU time per request moves much less).
#
#   scripts/http-cpu.sh target/release/convo [other/convo ...]
#   CONNS=1 scripts/http-cpu.sh ...     # lone requests (default 64 connections)
#   ROUNDS=6 scripts/http-cpu.sh ...    # more alternating rounds (default 3)
#
# For each binary, three alternating rounds (ROUNDS): a fresh database, 64 conversations of one
# user, `wrk -t2 -c64 -d4s` (`-t1 -c1` with CONNS=1) of GET /noop, then of one-message
# appends round-robin over the 64 conversations. Prints requests/s and the server's CPU
# µs per request (all of its threads, from /proc). Needs wrk (`apt-get install wrk`),
# curl and python3.
set -euo pipefail
port=${PORT:-18765}
conns=${CONNS:-64}
threads=$((conns < 2 ? conns : 2))
dir=$(mktemp -d)
trap 'pkill -f "127.0.0.1:$port" || true; rm -rf "$dir"' EXIT
# shellcheck source=scripts/wrk-appends.sh
source "$(dirname "$0")/wrk-appends.sh"
measure() { # pid label wrk-args...
  local pid=$1 label=$2; shift 2
  local t0 t1 out reqs
  t0=$(awk '{print $14+$15}' "/proc/$pid/stat")
  out=$(wrk -t"$threads" -c"$conns" -d4s "$@")
  t1=$(awk '{print $14+$15}' "/proc/$pid/stat")
  reqs=$(awk '/requests in/{print $1}' <<<"$out")
  awk -v l="$label" -v r="$reqs" -v c=$((t1 - t0)) -v rps="$(awk '/Requests\/sec/{print $2}' <<<"$out")" \
    'BEGIN {printf "  %-7s %9.0f req/s  %6.1f us CPU/request\n", l, rps, c * 10000 / r}'
}
for round in $(seq ${ROUNDS:-3}); do
  for bin in "$@"; do
    pkill -f "127.0.0.1:$port" || true
    sleep 0.3
    rm -f "$dir"/db.sqlite*
    "$bin" --db "$dir/db.sqlite" -q serve --addr "127.0.0.1:$port" --no-work >/dev/null 2>&1 &
    pid=$!
    wait_healthy "$port"
    prepare_appends "$port" 64 "$dir"
    echo "round $round: $bin"
    measure "$pid" no-op "http://127.0.0.1:$port/noop"
    measure "$pid" append -s "$dir/append.lua" "http://127.0.0.1:$port"
  done
done
