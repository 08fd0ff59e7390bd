# Shared by the wrk scripts here (sourced, not run):
# one-message appends to `convo serve` under wrk, round-robin over new conversations,
# and a server on a copy of a database.

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

# Serves a copy of the database $2 (with its log and search index) with the convo
# binary $1 on port $3, logging to $4/serve.log, and prepares appends to 16 new
# conversations there (prepare_appends). Sets pid to the server's.
serve_copy() { # bin db port dir
  local bin=$1 db=$2 port=$3 dir=$4 f
  for f in "$db" "$db-wal" "$db-search"; do
    [ -e "$f" ] && cp "$f" "$dir/"
  done
  # The copy's half a gigabyte of dirty pages would otherwise be written back during
  # the load, and every fsync of the log would wait behind it.
  sync
  "$bin" --db "$dir/$(basename "$db")" -v serve --addr "127.0.0.1:$port" --no-work \
    >"$dir/serve.log" 2>&1 &
  pid=$!
  wait_healthy "$port"
  prepare_appends "$port" 16 "$dir"
}

# Erases user $2 through the server on port $1, printing the answer's status and time;
# `-` erases nobody (the baseline run).
erase_user() { # port user
  [ "$2" = - ] && return
  curl -s -o /dev/null -w "erase: HTTP %{http_code} in %{time_total} s\n" \
    -X DELETE "localhost:$1/v1/convo/users/$2"
}

# The server's log lines about an erasure (warnings, the index rewrite), from serve_copy.
erasure_log() { # dir
  grep -E "WARN|rewrote the search index" "$1/serve.log" | cut -c1-200 || true
}
