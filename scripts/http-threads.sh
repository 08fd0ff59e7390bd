#!/usr/bin/env bash
# Where the server's CPU goes, thread by thread, under wrk: no-ops, then one-message
# appends (as scripts/http-cpu.sh, which gives the totals over alternating rounds).
#
#   scripts/http-threads.sh target/release/convo
#   CONNS=16 scripts/http-threads.sh ...     # default 64 connections
#
# For each load and each server thread: CPU µs per request, share of one vCPU, time
# spent runnable but waiting for a vCPU (from /proc/PID/task/TID/schedstat), and
# voluntary/involuntary context switches; then the machine's idle and iowait shares
# over the run. Needs wrk (`apt-get install wrk`), curl and python3.
set -euo pipefail
bin=$1
port=${PORT:-18766}
conns=${CONNS:-64}
threads=$((conns < 2 ? conns : 2))
secs=4
dir=$(mktemp -d)
# shellcheck source=scripts/wrk-appends.sh
source "$(dirname "$0")/wrk-appends.sh"
"$bin" --db "$dir/db.sqlite" -q serve --addr "127.0.0.1:$port" --no-work >/dev/null 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
wait_healthy "$port"
prepare_appends "$port" 64 "$dir"

# One line per thread: tid name cpu-ticks runqueue-wait-ms voluntary involuntary.
snapshot() {
  for t in /proc/"$pid"/task/*; do
    printf '%s %s %s %s %s\n' "$(basename "$t")" "$(tr ' ' _ <"$t/comm")" \
      "$(awk '{print $14 + $15}' "$t/stat")" "$(awk '{print int($2 / 1000000)}' "$t/schedstat")" \
      "$(awk '/^(nonvoluntary|voluntary)_ctxt_switches/ {print $2}' "$t/status" | paste -sd' ')"
  done | sort
}

for load in no-op append; do
  snapshot >"$dir/before"
  cpu0=$(head -1 /proc/stat)
  if [ "$load" = no-op ]; then
    out=$(wrk -t"$threads" -c"$conns" -d${secs}s "http://127.0.0.1:$port/noop")
  else
    out=$(wrk -t"$threads" -c"$conns" -d${secs}s -s "$dir/append.lua" "http://127.0.0.1:$port")
  fi
  cpu1=$(head -1 /proc/stat)
  snapshot >"$dir/after"
  reqs=$(awk '/requests in/ {print $1}' <<<"$out")
  echo "$load: $(awk '/Requests\/sec/ {print $2}' <<<"$out") requests/s"
  # Fields after join: tid, then name ticks wait vol invol before, then the same after.
  join "$dir/before" "$dir/after" | awk -v r="$reqs" -v s="$secs" '
    { ticks = $8 - $3; if (ticks == 0 && $10 - $5 < 10) next
      printf "  %-24s %6.1f us/request  %5.1f%% of a vCPU  waiting runnable %5d ms  switches %d/%d\n",
        $2, ticks * 10000 / r, ticks / s, $9 - $4, $10 - $5, $11 - $6 }'
  echo "$cpu0 $cpu1" | awk '{
    total = 0; for (i = 2; i <= 9; i++) total += $(i + 11) - $i
    printf "  machine: idle %.0f%%, iowait %.0f%%\n", ($16 - $5) * 100 / total, ($17 - $6) * 100 / total }'
done
