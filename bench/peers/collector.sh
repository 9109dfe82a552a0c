#!/usr/bin/env bash
# The collector benchmark, side by side with Benthos v4.38.0: the same load
# generator, the same request bodies, one setup after the other.
#
#   bash bench/peers/collector.sh                    # all setups, ~5 minutes
#   DURATION=20s bash bench/peers/collector.sh       # longer wrk runs
#   SETUPS=weir bash bench/peers/collector.sh        # only weir
#   SETUPS=weir WEIR_DURABILITY=none bash ...        # weir without fsync (shows
#                                                    # what fsync costs; not the bar)
#   SETUPS=weir WEIR_PROFILE=1 bash ...              # also a 10 s CPU profile of weir
#                                                    # during each wrk run, from
#                                                    # /debug/pprof on its control address
#
# Setups:
#   benthos-parse  http_server → split the body per line → a mapping that
#                  parses each event → drop (bench/peers/benthos-http-parse.yaml)
#   benthos-drop   http_server → drop, untouched: no parsing, no fsync
#                  (bench/peers/benthos-http-drop.yaml)
#   weir           the http input: write key, every event validated, the
#                  request fsynced to the log before the 200; then a filter
#                  that parses every event, then discard
#                  (bench/collector/pipeline.yaml)
#
# Each setup gets two kinds of request: batches of 100 events of about 200
# bytes (NDJSON, POST /v1/batch) and one event per request (POST
# /v1/events), 16 and 256 distinct bodies written by bench/collector/loadgen.
# For each kind:
#   1. throughput: wrk -t2 -c64 -d$DURATION --latency, closed loop, after a
#      $WARMUP warm-up; p50/p99 here are latencies at saturation.
#   2. latency at a fixed rate: bench/collector/loadgen, open loop (requests
#      are due on a fixed schedule; latency runs from the due time, so a
#      stall is not hidden), 64 connections, at half the bar (20,000 req/s
#      single, 2,500 req/s = 250,000 events/s at batch 100) or at half the
#      rate the setup reached in step 1, whichever is lower.
#
# The load generator runs on the same machine and shares its cores with the
# server. The cores column says who used the CPU during the wrk run, in
# cores: the server / the load generator / every other process (user and
# system time; interrupt handling is left out). Before each measurement the
# script waits until the machine is idle (CPU and disk); a row whose third
# figure is above a few hundredths was disturbed by other work.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
work="$root/bench/peers/.work"
mkdir -p "$work"

DURATION=${DURATION:-15s}
WARMUP=${WARMUP:-3s}
RATE_DURATION=${RATE_DURATION:-10s}
RATE_WARMUP=${RATE_WARMUP:-2s}
RATE_SINGLE=${RATE_SINGLE:-20000} # req/s: half the single-event bar
RATE_BATCH=${RATE_BATCH:-2500}    # req/s: half the batch-100 bar (500,000 events/s)
SETUPS=${SETUPS:-benthos-parse benthos-drop weir}
PORT=${PORT:-18080}
CONTROL_PORT=${CONTROL_PORT:-18081}
QUIET_CORES=${QUIET_CORES:-0.15}    # "idle": cores busy machine-wide below this
QUIET_IO=${QUIET_IO:-2}              # ... and disk pressure (PSI some avg10, %) below this
QUIET_TIMEOUT=${QUIET_TIMEOUT:-300} # seconds to wait for idle before measuring anyway
WEIR_DURABILITY=${WEIR_DURABILITY:-fsync}
export WEIR_DURABILITY
WEIR_PROFILE=${WEIR_PROFILE:-0}
WRITE_KEY=bench-write-key-0123456789
BATCH=100
addr=127.0.0.1:$PORT

if ! command -v wrk >/dev/null 2>&1; then
  echo "installing wrk..." >&2
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get install -y wrk >/dev/null ||
    { $sudo apt-get update >/dev/null && $sudo apt-get install -y wrk >/dev/null; }
fi

. bench/peers/build-benthos.sh

echo "building weir and the load generator..." >&2
go build -o "$work/weir" ./cmd/weir
go build -o "$work/loadgen" ./bench/collector/loadgen
bodies="$work/collector-bodies"
rm -rf "$bodies"
body_info=$("$work/loadgen" bodies -dir "$bodies")

tick=$(getconf CLK_TCK)
# busy_ticks: CPU ticks spent machine-wide on anything but idle and iowait.
busy_ticks() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9; exit}' /proc/stat; }
# task_ticks: CPU ticks spent machine-wide running processes (user, nice,
# system), the time /proc/PID/stat charges to them.
task_ticks() { awk '/^cpu /{print $2+$3+$4; exit}' /proc/stat; }
# proc_ticks PID: user + system ticks of a process (all its threads).
proc_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12+$13}'; }

# io_pressure: the share of the last 10 s in which some task waited for the
# disk (Linux PSI), in percent; 0 where PSI is not available.
io_pressure() {
  if [ -r /proc/pressure/io ]; then
    awk '/^some/ {sub(/avg10=/, "", $2); print $2; exit}' /proc/pressure/io
  else
    echo 0
  fi
}

# wait_quiet: waits until the machine is idle: CPU (QUIET_CORES) and disk
# (QUIET_IO), so that other work on the machine does not skew the figures.
wait_quiet() {
  local waited=0 b0 b1 cores io
  while :; do
    b0=$(busy_ticks); sleep 2; b1=$(busy_ticks)
    cores=$(awk -v d=$((b1 - b0)) -v t="$tick" 'BEGIN{printf "%.2f", d / t / 2}')
    io=$(io_pressure)
    if awk -v c="$cores" -v q="$QUIET_CORES" -v io="$io" -v qio="$QUIET_IO" 'BEGIN{exit !(c < q && io < qio)}'; then
      return
    fi
    if [ "$waited" -ge "$QUIET_TIMEOUT" ]; then
      echo "warning: the machine is still busy ($cores cores, disk pressure $io%) after ${QUIET_TIMEOUT}s; measuring anyway" >&2
      return
    fi
    [ "$waited" -eq 0 ] && echo "waiting for the machine to be idle ($cores cores busy, disk pressure $io%)..." >&2
    waited=$((waited + 2))
  done
}

server_pid=""
log_dir=""
start_server() {
  local setup=$1
  case $setup in
    benthos-parse) ADDR=$addr "$work/benthos" -c bench/peers/benthos-http-parse.yaml > "$work/collector-$setup.log" 2>&1 & ;;
    benthos-drop) ADDR=$addr "$work/benthos" -c bench/peers/benthos-http-drop.yaml > "$work/collector-$setup.log" 2>&1 & ;;
    weir)
      log_dir=$(mktemp -d -t weir-collector-log.XXXXXX)
      ADDR=$addr CONTROL_ADDR=127.0.0.1:$CONTROL_PORT WRITE_KEY=$WRITE_KEY LOG_DIR=$log_dir \
        "$work/weir" run bench/collector/pipeline.yaml > "$work/collector-$setup.log" 2>&1 & ;;
    *) echo "unknown setup $setup: use benthos-parse, benthos-drop or weir" >&2; exit 2 ;;
  esac
  server_pid=$!
  for _ in $(seq 1 300); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then return; fi
    if ! kill -0 "$server_pid" 2>/dev/null; then break; fi
    sleep 0.1
  done
  echo "$setup did not start listening on $addr; its log:" >&2
  cat "$work/collector-$setup.log" >&2
  exit 1
}
stop_server() {
  if [ -n "$server_pid" ]; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
  fi
  if [ -n "$log_dir" ]; then
    rm -rf "$log_dir"
    log_dir=""
  fi
}
trap stop_server EXIT

# weir_metric NAME: the sum of a metric's samples on weir's control address.
weir_metric() {
  curl -fsS "http://127.0.0.1:$CONTROL_PORT/metrics" 2>/dev/null |
    awk -v m="$1" '$1 == m || index($1, m "{") == 1 {s += $NF} END {printf "%.0f", s}'
}

# to_ms VALUE: a wrk latency such as 812.00us, 4.31ms or 1.20s in ms.
to_ms() {
  awk -v v="$1" 'BEGIN {
    n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
    if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
    printf "%.2f", n }'
}

# kv LINE KEY: the value of KEY in a line of key=value pairs.
kv() { echo "$1" | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k {print $2}'; }

results="$work/collector-results.txt"
: > "$results"
notes="$work/collector-notes.txt"
: > "$notes"

# measure SETUP KIND: the wrk run, then the fixed-rate run; appends a line
# to $results.
measure() {
  local setup=$1 kind=$2 path prefix ctype events key=""
  if [ "$kind" = batch ]; then
    path=/v1/batch prefix="$bodies/batch$BATCH" ctype=application/x-ndjson events=$BATCH
  else
    path=/v1/events prefix="$bodies/single" ctype=application/json events=1
  fi
  [ "$setup" = weir ] && key=$WRITE_KEY
  local url="http://$addr$path" out="$work/collector-wrk-$setup-$kind.txt"
  local lua=bench/collector/post.lua

  wrk -t2 -c64 -d"$WARMUP" -s "$lua" "$url" -- "$prefix" "$ctype" "$key" > /dev/null
  wait_quiet
  local acc0=0 done0=0
  if [ "$setup" = weir ]; then
    acc0=$(weir_metric weir_collector_events_accepted_total)
    done0=$(weir_metric 'weir_node_events_out_total{kind="output",node="out"}')
  fi
  local b0 s0 b1 s1 t0 t1 gen prof=""
  if [ "$setup" = weir ] && [ "$WEIR_PROFILE" = 1 ]; then
    curl -fsS -o "$work/collector-weir-$kind.pprof" "http://127.0.0.1:$CONTROL_PORT/debug/pprof/profile?seconds=10" &
    prof=$!
  fi
  b0=$(task_ticks); s0=$(proc_ticks "$server_pid"); t0=$(date +%s.%N)
  gen=$( { TIMEFORMAT='%U %S'; time wrk -t2 -c64 -d"$DURATION" --latency -s "$lua" "$url" -- "$prefix" "$ctype" "$key" > "$out"; } 2>&1 )
  b1=$(task_ticks); s1=$(proc_ticks "$server_pid"); t1=$(date +%s.%N)
  if [ -n "$prof" ]; then
    if wait "$prof"; then
      echo "weir $kind: CPU profile: go tool pprof -top bench/peers/.work/weir bench/peers/.work/collector-weir-$kind.pprof" >> "$notes"
    else
      echo "weir $kind: no CPU profile (does this weir serve /debug/pprof on its control address?)" >> "$notes"
    fi
  fi
  if [ "$setup" = weir ]; then
    local acc1 done1
    acc1=$(weir_metric weir_collector_events_accepted_total)
    done1=$(weir_metric 'weir_node_events_out_total{kind="output",node="out"}')
    echo "weir $kind: the collector accepted $((acc1 - acc0)) events during the wrk run; the pipeline (filter → discard) processed $((done1 - done0)) in the same time" >> "$notes"
  fi

  local n secs rps p50 p99 non2xx sockerr
  n=$(awk '/requests in/ {print $1; exit}' "$out")
  secs=$(awk '/requests in/ {sub(/s,$/, "", $4); print $4; exit}' "$out")
  p50=$(to_ms "$(awk '$1 == "50%" {print $2; exit}' "$out")")
  p99=$(to_ms "$(awk '$1 == "99%" {print $2; exit}' "$out")")
  non2xx=$(awk '/Non-2xx/ {print $NF; exit}' "$out"); non2xx=${non2xx:-0}
  sockerr=$(awk '/Socket errors/ {gsub(/,/, ""); print $4 + $6 + $8 + $10; exit}' "$out"); sockerr=${sockerr:-0}
  rps=$(awk -v n="$n" -v s="$secs" 'BEGIN{printf "%.0f", n / s}')
  local eps srv_c gen_c oth_c wall
  eps=$(awk -v n="$n" -v x="$non2xx" -v s="$secs" -v e="$events" 'BEGIN{printf "%.0f", (n - x) * e / s}')
  wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b - a}')
  srv_c=$(awk -v d=$((s1 - s0)) -v t="$tick" -v w="$wall" 'BEGIN{printf "%.2f", d / t / w}')
  gen_c=$(awk -v g="$gen" -v w="$wall" 'BEGIN{split(g, G, " "); printf "%.2f", (G[1] + G[2]) / w}')
  oth_c=$(awk -v d=$((b1 - b0)) -v t="$tick" -v w="$wall" -v s="$srv_c" -v g="$gen_c" 'BEGIN{o = d / t / w - s - g; printf "%.2f", (o > 0 ? o : 0)}')

  # Latency at a fixed rate.
  local bar rate line
  if [ "$kind" = batch ]; then bar=$RATE_BATCH; else bar=$RATE_SINGLE; fi
  rate=$(awk -v b="$bar" -v r="$rps" 'BEGIN{h = int(r / 2); if (h < 1) h = 1; print (h < b ? h : b)}')
  wait_quiet
  line=$("$work/loadgen" rate -url "$url" -key "$key" -content-type "$ctype" -bodies "$prefix" \
    -rate "$rate" -duration "$RATE_DURATION" -warmup "$RATE_WARMUP" -conns 64)
  echo "$setup $kind fixed rate: $line" >> "$notes"
  local r_ach r_p50 r_p99 r_bad
  r_ach=$(kv "$line" achieved_rps); r_p50=$(kv "$line" p50_ms); r_p99=$(kv "$line" p99_ms)
  r_bad=$(( $(kv "$line" non_2xx) + $(kv "$line" errors) + $(kv "$line" unsent) ))

  local name=$setup
  [ "$setup" = weir ] && [ "$WEIR_DURABILITY" != fsync ] && name="weir-$WEIR_DURABILITY"
  echo "$name $events $rps $eps $p50 $p99 $non2xx $sockerr $srv_c $gen_c $oth_c $rate $r_ach $r_p50 $r_p99 $r_bad" >> "$results"
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(uname -sm)"
echo "load generator: $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2) (-t2 -c64 -d$DURATION) and bench/collector/loadgen (fixed rate), on the same cores as the server"
echo "$body_info"
echo "weir log durability: $WEIR_DURABILITY"
for setup in $SETUPS; do
  echo "== $setup" >&2
  wait_quiet
  start_server "$setup"
  measure "$setup" batch
  measure "$setup" single
  stop_server
done

echo
echo "throughput: wrk -t2 -c64 -d$DURATION --latency (closed loop; p50/p99 at saturation); cores: server / load generator / other processes"
printf "%-14s %5s %10s %10s %9s %9s %8s %7s %14s\n" setup batch requests/s events/s p50_ms p99_ms non-2xx errors cores
while read -r s e rps eps p50 p99 x se sc gc oc _; do
  printf "%-14s %5s %10s %10s %9s %9s %8s %7s %14s\n" "$s" "$e" "$rps" "$eps" "$p50" "$p99" "$x" "$se" "$sc/$gc/$oc"
done < "$results"
echo
echo "latency at a fixed rate: bench/collector/loadgen, open loop, 64 connections, ${RATE_DURATION} after ${RATE_WARMUP} warm-up"
printf "%-14s %5s %12s %12s %9s %9s %12s\n" setup batch target_req/s achieved p50_ms p99_ms failed
while read -r s e _ _ _ _ _ _ _ _ _ rate ach p50 p99 bad; do
  printf "%-14s %5s %12s %12s %9s %9s %12s\n" "$s" "$e" "$rate" "$ach" "$p50" "$p99" "$bad"
done < "$results"
echo
cat "$notes"
echo
awk -v bar_eps=500000 -v bar_rps=40000 '
  $1 == "weir" && $2 == 100 { w = $4 }
  $1 == "weir" && $2 == 1 { ws = $3 }
  $1 == "benthos-parse" && $2 == 100 { b = $4 }
  END {
    if (w != "" && b != "" && b > 0) printf "ratio weir/benthos-parse at batch 100: %.1fx events/s (bar: >= 5x)\n", w / b
    if (w != "") printf "weir batch 100: %d events/s acknowledged (bar: >= %d): %s\n", w, bar_eps, (w >= bar_eps ? "met" : "MISSED")
    if (ws != "") printf "weir single: %d requests/s (bar: >= %d): %s\n", ws, bar_rps, (ws >= bar_rps ? "met" : "MISSED")
  }' "$results"
