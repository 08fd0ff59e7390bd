#!/usr/bin/env bash
# The official `openai` Python SDK against a running convo server.
#
#   tests/sdk/run.sh                 # builds and starts the serve_sqlite example
#   CONVO_BASE_URL=http://127.0.0.1:8080 CONVO_API_KEY=... [CONVO_API_KEY_OTHER=...] \
#   CONVO_KEYED=1 tests/sdk/run.sh   # against a server you started
#
# CONVO_SERVER_CMD overrides the server command. It is run with
# `--db PATH --addr 127.0.0.1:0 --key alice --key bob` appended and must print
# `listening http://HOST:PORT` and `key USER SECRET` lines on stdout (as the
# serve_sqlite example does).
#
# The virtual environment lives in ${CONVO_SDK_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/convo/sdk-venv}
# and is reused; OPENAI_SPEC (default 'openai>=1.101.0') picks the SDK version.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${CONVO_SDK_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/convo/sdk-venv}"
spec="${OPENAI_SPEC:-openai>=1.101.0}"

if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c 'import openai, sys; from openai import OpenAI; OpenAI.conversations' >/dev/null 2>&1; then
    "$venv/bin/pip" install --quiet --upgrade "$spec"
fi

if [ -n "${CONVO_BASE_URL:-}" ]; then
    exec "$venv/bin/python" "$here/sdk_check.py"
fi

work="$(mktemp -d)"
server_pid=""
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

if [ -n "${CONVO_SERVER_CMD:-}" ]; then
    read -r -a cmd <<<"$CONVO_SERVER_CMD"
else
    (cd "$root" && cargo build --quiet -p convo-server --example serve_sqlite)
    cmd=("${CARGO_TARGET_DIR:-$root/target}/debug/examples/serve_sqlite")
fi
"${cmd[@]}" --db "$work/convo.db" --addr 127.0.0.1:0 --key alice --key bob >"$work/out" 2>"$work/err" &
server_pid=$!

# Wait for the address line (the server prints it once bound).
base=""
for _ in $(seq 1 300); do
    base="$(awk '/^listening /{print $2; exit}' "$work/out")"
    [ -n "$base" ] && break
    if ! kill -0 "$server_pid" 2>/dev/null; then
        echo "server exited:" >&2; cat "$work/err" >&2; exit 1
    fi
    sleep 0.1
done
[ -n "$base" ] || { echo "server printed no address" >&2; cat "$work/err" >&2; exit 1; }
for _ in $(seq 1 50); do
    [ "$(grep -c '^key ' "$work/out")" -ge 2 ] && break
    sleep 0.1
done

export CONVO_BASE_URL="$base"
export CONVO_API_KEY="$(awk '$1=="key" && $2=="alice"{print $3}' "$work/out")"
export CONVO_API_KEY_OTHER="$(awk '$1=="key" && $2=="bob"{print $3}' "$work/out")"
export CONVO_KEYED=1
"$venv/bin/python" "$here/sdk_check.py"
