#!/usr/bin/env bash
# The extra suites CI runs after `cargo test --workspace` (which already runs the
# crash, concurrency, security and hostile-input tests and replays the fuzz corpus):
#
#   1. the official openai SDK against the server      (tests/sdk/run.sh)
#   2. schemathesis against /openapi.json               (tests/schemathesis/run.sh)
#   3. longer crash rounds                              (crates/convo/tests/crash.rs)
#
# Each step is bounded in time; the first failure fails the script. Knobs:
#   CONVO_EXTRA_CRASH_SECS   seconds of append crash rounds here (default 45; 0 skips)
#   ST_MAX_EXAMPLES, ST_MAX_TIME   schemathesis examples per operation / time budget
set -euo pipefail
cd "$(dirname "$0")/.."

step() { echo; echo "== $*"; }
started=$SECONDS

step "openai SDK conformance (tests/sdk/run.sh)"
timeout 600 tests/sdk/run.sh

step "schemathesis against /openapi.json (tests/schemathesis/run.sh)"
timeout 600 tests/schemathesis/run.sh

crash_secs="${CONVO_EXTRA_CRASH_SECS:-45}"
if [ "$crash_secs" -gt 0 ]; then
    step "crash rounds: ${crash_secs}s of appends, $((crash_secs / 2))s with jobs"
    log="$(mktemp)"
    if CONVO_CRASH_SECS="$crash_secs" CONVO_CRASH_JOB_SECS="$((crash_secs / 2))" \
        timeout $((crash_secs * 2 + 300)) \
        cargo test -p convo --test crash -- --nocapture --test-threads 1 >"$log" 2>&1; then
        grep -E '^(crash|random seed|test result)' "$log"
        rm -f "$log"
    else
        tail -n 60 "$log"
        echo "crash rounds failed (full log: $log)" >&2
        exit 1
    fi
fi

echo
echo "== extra suites passed in $((SECONDS - started))s"
