#!/usr/bin/env bash
# How an erasure behaves while a server takes appends: its answer time, and the
# appends' latency around it (wrk's max and p99 show a write stall).
#
#   scripts/erase-under-load.sh target/release/convo /tmp/bench/history-1000000.db [user10|-]
#
# Serves a copy of the database (a convo-bench history database has users user0..user100),
# runs `wrk -t1 -c16 -d8s` of one-message appends over 16 new conversations, and after
# 2 s erases the user (`-`: no erasure, for the baseline). Prints the erasure's answer
# time, wrk's latency summary and the server's log lines about the erasure. Needs wrk
# (`apt-get install wrk`), curl and python3.
set -euo pipefail
bin=$1 db=$2 user=${3:-user10}
port=${PORT:-18801}
dir=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
# shellcheck source=scripts/wrk-appends.sh
source "$(dirname "$0")/wrk-appends.sh"
serve_copy "$bin" "$db" "$port" "$dir"
wrk -t1 -c16 -d8s --latency -s "$dir/append.lua" "http://127.0.0.1:$port" >"$dir/wrk.txt" &
load=$!
sleep 2
erase_user "$port" "$user"
wait "$load"
grep -E "Latency  |99%|Requests/sec|Non-2xx|Socket errors" "$dir/wrk.txt"
erasure_log "$dir"
