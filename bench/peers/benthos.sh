#!/usr/bin/env bash
# Runs the end-to-end JSON pipeline (parse, filter type != "view", add a
# computed field, drop a field, serialize; NDJSON file → discard) in Benthos
# v4.38.0 and in weir, one after the other on the same input file, and prints
# both rates and their ratio.
#
#   bash bench/peers/benthos.sh            # 2,000,000 events
#   COUNT=500000 bash bench/peers/benthos.sh
#
# Benthos is built from the Go module proxy in a scratch module under
# bench/peers/.work (git-ignored): `go install ...@v4.38.0` is refused when
# the proxy does not serve the version list, a go.mod that requires the
# version works.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
work="$root/bench/peers/.work"
mkdir -p "$work"
COUNT=${COUNT:-2000000}

. bench/peers/build-benthos.sh

echo "building weir..." >&2
go build -o "$work/weir" ./cmd/weir

input="$work/input-$COUNT.ndjson"
if [ ! -s "$input" ]; then
  echo "generating $COUNT events..." >&2
  COUNT=$COUNT "$work/weir" run bench/e2e/generate.yaml > "$input"
fi
bytes=$(stat -c %s "$input")
lines=$(wc -l < "$input")

# measure NAME CMD...: runs CMD, prints "NAME wall user sys"
measure() {
  local name=$1; shift
  local out
  out=$( { TIMEFORMAT='%R %U %S'; time "$@" >/dev/null 2>"$work/$name.log"; } 2>&1 )
  echo "$name $out"
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "input: $lines events, $((bytes / lines)) bytes/event on average, $input"
b=$(INPUT="$input" measure benthos "$work/benthos" -c bench/peers/benthos.yaml)
w=$(INPUT="$input" measure weir "$work/weir" run bench/e2e/pipeline.yaml)

awk -v n="$lines" -v b="$b" -v w="$w" 'BEGIN {
  split(b, B, " "); split(w, W, " ");
  br = n / B[2]; bc = n / (B[3] + B[4]);
  wr = n / W[2]; wc = n / (W[3] + W[4]);
  printf "%-8s %10s %8s %8s %14s %18s\n", "system", "wall_s", "user_s", "sys_s", "events/s", "events/cpu_s";
  printf "%-8s %10.2f %8.2f %8.2f %14.0f %18.0f\n", "benthos", B[2], B[3], B[4], br, bc;
  printf "%-8s %10.2f %8.2f %8.2f %14.0f %18.0f\n", "weir", W[2], W[3], W[4], wr, wc;
  printf "ratio weir/benthos: %.1fx events/s, %.1fx events per cpu second\n", wr / br, wc / bc;
}'
