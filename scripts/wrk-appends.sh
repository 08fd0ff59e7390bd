# Shared by scripts/http-cpu.sh and scripts/erase-under-load.sh (sourced, not run):
# one-message appends to `convo serve` under wrk, round-robin over new conversations.

# Waits up to ~10 s for the server on port $1 to answer /healthz.
wait_healthy() { # port
  for _ in $(seq 100); do curl -sf "localhost:$1/healthz" >/dev/null && return; sleep 0.1; done
}

# Creates $2 conversations on the server on port $1 and writes, in folder $3,
# their ids (convs.txt) and a wrk script appending to them in turn (append.lua).
prepare_appends() { # port conversations dir
  local port=$1 n=$2 dir=$3
  for _ in $(seq "$n"); do
    curl -s -X POST "localhost:$port/v1/conversations" -H 'content-type: application/json' -d '{}' |
      python3 -c 'import sys, json; print(json.load(sys.stdin)["id"])'
  done >"$dir/convs.txt"
  cat >"$dir/append.lua" <<LUA
local convs = {}
for line in io.lines("$dir/convs.txt") do convs[#convs + 1] = line end
local n = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"items": [{"type": "message", "role": "user", "content": "How warm is it in Paris today? I am packing for a trip."}]}'
request = function()
  n = n + 1
  return wrk.format(nil, "/v1/conversations/" .. convs[(n % #convs) + 1] .. "/items")
end
LUA
}
