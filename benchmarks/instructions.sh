#!/usr/bin/env bash
# User-space instructions, bare and under the agent, counted by callgrind:
# repeatable on a noisy machine, where a few percent of throughput is not.
# Each figure is per connection or per request: the difference between a
# large and a small run, so Node's startup and the agent's one-time costs
# cancel out.
#   bash benchmarks/instructions.sh      (needs valgrind; takes about fifteen minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
autocannon=node_modules/.bin/autocannon

count() { # node flags...: instructions of one run
  valgrind --tool=callgrind --smc-check=all-non-file --callgrind-out-file=/dev/null \
    node "$@" 2>&1 | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}

count_server() { # requests, header or "", node flags...: instructions of the server
  local requests=$1 header=$2 log
  shift 2
  log=$(mktemp)
  valgrind --tool=callgrind --smc-check=all-non-file --callgrind-out-file=/dev/null \
    node "$@" benchmarks/http-server-count.js "$requests" >"$log" 2>&1 &
  local server=$!
  until grep -q 'port=' "$log"; do sleep 0.2; done
  local port
  port=$(sed -n 's/^port=//p' "$log")
  # The server ends the run after its quota; the load runs until then, with a
  # timeout long enough for a server slowed down by valgrind.
  local load=(-c 8 -d 900 -t 120)
  [[ -n $header ]] && load+=(-H "$header")
  "$autocannon" "${load[@]}" "http://127.0.0.1:$port/" >/dev/null 2>&1 &
  local client=$!
  wait "$server" || true
  kill "$client" 2>/dev/null || true
  wait "$client" 2>/dev/null || true
  sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$log"
  rm -f "$log"
}

# Variants: no agent; the preload's defaults (stacks sampled); every stack.
flags_for() { [[ $1 != bare ]] && echo "--require ./dist/register.js" || true; }
stacks_for() { [[ $1 == all ]] && echo all || echo ""; }

declare -A per
variants=(bare default all)
for variant in "${variants[@]}"; do
  export TCP_LEAK_AGENT_STACKS=$(stacks_for "$variant")
  # shellcheck disable=SC2046
  small=$(count $(flags_for "$variant") benchmarks/churn-count.js 3000)
  # shellcheck disable=SC2046
  large=$(count $(flags_for "$variant") benchmarks/churn-count.js 9000)
  per[churn-$variant]=$(( (large - small) / 6000 ))
  for mode in keepalive close; do
    header=""
    [[ $mode == close ]] && header="Connection: close"
    # shellcheck disable=SC2046
    small=$(count_server 2000 "$header" $(flags_for "$variant"))
    # shellcheck disable=SC2046
    large=$(count_server 6000 "$header" $(flags_for "$variant"))
    per[$mode-$variant]=$(( (large - small) / 4000 ))
  done
done
unset TCP_LEAK_AGENT_STACKS
ratio() { node -p "($1 / $2).toFixed(3)"; }
for what in churn keepalive close; do
  b=${per[$what-bare]} d=${per[$what-default]} a=${per[$what-all]}
  echo "instructions benchmark=$what bare=$b default=$d all=$a ratio_default=$(ratio "$b" "$d") ratio_all=$(ratio "$b" "$a")"
done
