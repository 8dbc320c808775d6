#!/usr/bin/env bash
# A second opinion on the client's cost per request (client-cpu.js is the headline): user-space
# instructions per request counted by callgrind, and system calls per request counted by strace,
# bare and with the agent preloaded at its defaults. Each figure is the difference between a
# large and a small run, so start-up and the agent's one-time costs cancel out; each is the median
# of three. Instructions miss what the kernel does and what memory costs; the system calls show
# whether the agent adds kernel work per request.
#   bash benchmarks/client-instructions.sh [modes=keepalive-http,keepalive-fetch,new-connection]
#   (needs valgrind and strace; about ten minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
modes=${1:-keepalive-http,keepalive-fetch,new-connection}
small=1000 large=5000

log=$(mktemp)
node benchmarks/cpu/http-server.js >"$log" &
server=$!
trap 'kill $server 2>/dev/null; rm -f "$log"' EXIT
until grep -q '^ready' "$log"; do sleep 0.1; done
port=$(sed -n 's/^ready port=\([0-9]*\).*/\1/p' "$log")

flags_for() { [[ $1 == agent ]] && echo "--require ./dist/register.js" || true; }
# The client's environment: no test-runner variables, which change the agent's defaults.
client() { env -u NODE_ENV -u VITEST -u NODE_OPTIONS "$@"; }

instructions() { # variant mode count: user-space instructions of one client run
  # shellcheck disable=SC2046
  client valgrind --tool=callgrind --smc-check=all-non-file --callgrind-out-file=/dev/null \
    node $(flags_for "$1") benchmarks/cpu/http-client.js "$2" "$port" "$3" 1 2>&1 | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
syscalls() { # variant mode count: system calls of one client run, every thread
  local out
  out=$(mktemp)
  # shellcheck disable=SC2046
  client strace -f -c -o "$out" node $(flags_for "$1") benchmarks/cpu/http-client.js "$2" "$port" "$3" 1 >/dev/null
  awk '$NF == "total" { print $4 }' "$out"
  rm -f "$out"
}
per_request() { # function variant mode: median of three (large - small) / (large - small requests)
  local values=()
  for _ in 1 2 3; do
    local a b
    a=$("$1" "$2" "$3" $small)
    b=$("$1" "$2" "$3" $large)
    values+=("$(awk -v a="$a" -v b="$b" -v n=$((large - small)) 'BEGIN { printf "%.2f", (b - a) / n }')")
  done
  printf '%s\n' "${values[@]}" | sort -g | sed -n 2p
}

for mode in ${modes//,/ }; do
  ib=$(per_request instructions bare "$mode") ia=$(per_request instructions agent "$mode")
  sb=$(per_request syscalls bare "$mode") sa=$(per_request syscalls agent "$mode")
  echo "client-instructions mode=$mode bare_instructions=$ib agent_instructions=$ia ratio=$(awk -v b="$ib" -v a="$ia" 'BEGIN { printf "%.3f", b / a }') bare_syscalls=$sb agent_syscalls=$sa"
done
