#!/usr/bin/env bash
# Where a connection-per-request client's CPU goes, kernel and JIT frames included: `perf record -e
# cpu-clock` (a software clock: it works where a virtual machine has no hardware counters) on the
# client of benchmarks/cpu/http-server.js, bare and with the agent preloaded, in turns. Each run
# first makes <settle-s> seconds of requests unrecorded, then records <requests> of them.
#   bash benchmarks/client-profile.sh [runs=3] [requests=30000] [settle-s=14]
# Needs perf and the right to profile another process (root, or perf_event_paranoid <= 1).
# Prints one line per variant: CPU µs per request (process.cpuUsage), perf samples per 1,000
# requests in all, in the kernel, in the agent's own functions (dist/), and in the kernel's
# TIME_WAIT dump (tcp_diag_dump). The per-symbol reports stay in $OUT for a closer look.
set -euo pipefail
RUNS=${1:-3}
REQUESTS=${2:-30000}
SETTLE_S=${3:-14}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$(mktemp -d)}
NODE=${NODE:-node}
command -v perf >/dev/null || { echo "client-profile: perf is not installed" >&2; exit 2; }

taskset -c 1 "$NODE" "$ROOT/benchmarks/cpu/http-server.js" > "$OUT/server.out" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q ready "$OUT/server.out" 2>/dev/null && break; sleep 0.1; done
PORT=$(sed -n 's/^ready port=\([0-9]*\).*/\1/p' "$OUT/server.out")

CLIENT="
const http = require('node:http');
const url = 'http://127.0.0.1:$PORT/';
const get = () => new Promise((resolve, reject) => http.get(url, { agent: false }, (res) => res.resume().on('end', resolve)).on('error', reject));
(async () => {
  const until = Date.now() + $SETTLE_S * 1000;
  while (Date.now() < until) await get();
  console.log('recording ' + process.pid);
  await new Promise((resolve) => process.stdin.once('data', resolve));
  const before = process.cpuUsage();
  for (let i = 0; i < $REQUESTS; i++) await get();
  const used = process.cpuUsage(before);
  console.log('done us_per_request=' + ((used.user + used.system) / $REQUESTS).toFixed(2));
  process.exit(0);
})();"

profile() { # <variant> <run>
  local variant=$1 run=$2 preload=()
  [ "$variant" = agent ] && preload=(--require "$ROOT/dist/register.js")
  local fifo="$OUT/go-$variant-$run"
  mkfifo "$fifo"
  # In $OUT: --perf-basic-prof also writes V8's log (isolate-*.log) where the process runs.
  (cd "$OUT" && taskset -c 0 "$NODE" --perf-basic-prof "${preload[@]}" -e "$CLIENT" < "$fifo" > "$OUT/client-$variant-$run.out") &
  local client=$!
  exec 3> "$fifo"
  for _ in $(seq 600); do grep -q recording "$OUT/client-$variant-$run.out" 2>/dev/null && break; sleep 0.1; done
  local pid
  pid=$(sed -n 's/^recording \([0-9]*\)/\1/p' "$OUT/client-$variant-$run.out")
  perf record -q -F 2000 -e cpu-clock -g -p "$pid" -o "$OUT/perf-$variant-$run.data" 2>/dev/null &
  local recorder=$!
  sleep 0.5
  echo go >&3
  exec 3>&-
  wait $client
  kill -INT $recorder 2>/dev/null || true
  wait $recorder 2>/dev/null || true
  # The JIT's symbols (--perf-basic-prof writes /tmp/perf-<pid>.map) are read by the report, then dropped.
  perf report -i "$OUT/perf-$variant-$run.data" --no-children --sort dso,sym -g none -q -n 2>/dev/null > "$OUT/report-$variant-$run.txt"
  rm -f "$fifo" "/tmp/perf-$pid.map"
}

for run in $(seq "$RUNS"); do
  # Alternating which goes first.
  if [ $((run % 2)) = 1 ]; then order="agent bare"; else order="bare agent"; fi
  for variant in $order; do profile "$variant" "$run"; done
done

for variant in bare agent; do
  cat "$OUT"/report-"$variant"-*.txt | awk -v variant="$variant" -v runs="$RUNS" -v requests="$REQUESTS" -v root="$ROOT/dist/" '
    { samples = $2; all += samples }
    / \[k\] / { kernel += samples }
    index($0, root) { agent += samples }
    / tcp_diag_dump$/ { dump += samples }
    END {
      per = 1000 / (runs * requests)
      printf "client-profile variant=%s runs=%d requests=%d samples_per_1k=%.1f kernel_per_1k=%.1f agent_code_per_1k=%.2f time_wait_dump_per_1k=%.2f", variant, runs, requests, all * per, kernel * per, agent * per, dump * per
    }'
  printf ' cpu_us_per_request=%s\n' "$(cat "$OUT"/client-"$variant"-*.out | sed -n 's/^done us_per_request=//p' | sort -n | paste -sd, -)"
done
echo "client-profile reports: $OUT" >&2
