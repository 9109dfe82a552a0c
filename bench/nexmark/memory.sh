#!/usr/bin/env bash
# The memory bar of the state issue: Nexmark q5 with many more distinct keys
# (auctions in flight) than its window cache holds, checkpoints on, under a
# memory limit. Windows beyond the cache wait in the state store (Pebble),
# so the process stays within the limit. Prints the peak RSS (sampled every
# 100 ms from /proc) against the limit, the windows spilled, and events/s.
#
#   NEXMARK_EVENTS        events (default 20000000)
#   NEXMARK_AUCTIONS      auctions in flight (default 1000000)
#   NEXMARK_CACHE         the window's cache_bytes (default 4MiB)
#   NEXMARK_MEMORY_LIMIT  runtime.memory_limit (default 256MiB)
set -euo pipefail

cd "$(dirname "$0")/../.."
GO=${GO:-go}
export NEXMARK_EVENTS=${NEXMARK_EVENTS:-20000000}
export NEXMARK_AUCTIONS=${NEXMARK_AUCTIONS:-1000000}
export NEXMARK_CACHE=${NEXMARK_CACHE:-4MiB}
export NEXMARK_MEMORY_LIMIT=${NEXMARK_MEMORY_LIMIT:-256MiB}
export NEXMARK_RATE=0 NEXMARK_PARALLELISM=1 NEXMARK_EVENT_RATE=${NEXMARK_EVENT_RATE:-10000}

work=$(mktemp -d "${TMPDIR:-/tmp}/weir-nexmark-mem-XXXXXX")
trap 'rm -rf "$work"' EXIT
$GO build -o "$work/weir" ./cmd/weir
export NEXMARK_STATE_DIR=$work/state
port=$((20000 + RANDOM % 20000))
{
	sed '/^outputs:/,$d; s/^control: {address: ""}/control: {address: "127.0.0.1:'$port'"}/' bench/nexmark/q5.yaml
	printf 'outputs:\n  out:\n    type: discard\n    from: q5\n'
} >"$work/q5.yaml"

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(uname -sm)"
echo "q5: $NEXMARK_EVENTS events, $NEXMARK_AUCTIONS auctions in flight, window cache_bytes $NEXMARK_CACHE, memory_limit $NEXMARK_MEMORY_LIMIT, checkpoints every 10s"
start=$SECONDS
"$work/weir" run "$work/q5.yaml" 2>"$work/q5.log" &
pid=$!
peak=0 spilled=0 open=0
while kill -0 "$pid" 2>/dev/null; do
	rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || echo 0)
	((rss > peak)) && peak=$rss
	if m=$(curl -sf "http://127.0.0.1:$port/metrics" 2>/dev/null); then
		s=$(awk '$1 ~ /^weir_window_spilled_total/ && $0 ~ /counts/ { print $2 }' <<<"$m" | head -1)
		o=$(awk '$1 ~ /^weir_window_open/ && $0 ~ /counts/ { print $2 }' <<<"$m" | head -1)
		[[ -n $s ]] && spilled=$s
		[[ -n $o ]] && open=$o
	fi
	sleep 0.1
done
wait "$pid" || { echo "weir failed:"; tail -20 "$work/q5.log"; exit 1; }
secs=$((SECONDS - start))
limit_mib=$(awk -v s="$NEXMARK_MEMORY_LIMIT" 'BEGIN {
	n = s + 0; u = s; sub(/^[0-9.]+/, "", u)
	m = (u == "GiB") ? 1024 : (u == "MiB") ? 1 : (u == "KiB") ? 1 / 1024 : 1 / 1048576
	print int(n * m)
}')
echo "peak_rss_mib=$((peak / 1024)) memory_limit_mib=$limit_mib windows_spilled=${spilled} windows_in_memory_last=${open} seconds=${secs} events_per_s=$((NEXMARK_EVENTS / (secs > 0 ? secs : 1)))"
