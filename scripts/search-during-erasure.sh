#!/usr/bin/env bash
# How searches fare while an erasure rewrites the search index: another user's search
# latency under wrk (its max shows a stall), with appends running beside it, and the
# erasure's answer time.
#
#   scripts/search-during-erasure.sh target/release/convo /tmp/bench/history-1000000.db [user10|-]
#
# Serves a copy of the database (a convo-bench history database has users user0..user100
# and `target`), runs `wrk -t1 -c4 -d8s` of searches for "weather paris" by `target` and
# `wrk -t1 -c16 -d8s` of one-message appends over 16 new conversations, and after 2 s
# erases the user (`-`: no erasure, for the baseline). Needs wrk, curl and python3.
set -euo pipefail
bin=$1 db=$2 user=${3:-user10}
port=${PORT:-18802}
dir=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
# shellcheck source=scripts/wrk-appends.sh
source "$(dirname "$0")/wrk-appends.sh"
serve_copy "$bin" "$db" "$port" "$dir"
curl -sf -o /dev/null -H 'x-convo-user: target' "localhost:$port/v1/convo/search?q=weather+paris"
wrk -t1 -c16 -d8s -s "$dir/append.lua" "http://127.0.0.1:$port" >"$dir/appends.txt" &
appends=$!
wrk -t1 -c4 -d8s --latency -H 'x-convo-user: target' \
  "http://127.0.0.1:$port/v1/convo/search?q=weather+paris" >"$dir/searches.txt" &
searches=$!
sleep 2
erase_user "$port" "$user"
wait "$appends" "$searches"
echo "searches:"
grep -E "Latency  |99%|Requests/sec|Non-2xx|Socket errors" "$dir/searches.txt"
echo "appends: $(awk '/Requests\/sec/ {print $2}' "$dir/appends.txt") requests/s"
erasure_log "$dir"
