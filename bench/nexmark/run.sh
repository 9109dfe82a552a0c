#!/usr/bin/env bash
# Runs the Nexmark queries (bench/nexmark/q*.yaml) one after the other with
# checkpoints on (every 10 s, in a fresh state directory) and every result
# to a discard output, and prints per query: events, wall seconds, events/s,
# cores used (process CPU time ÷ wall time) and events/s per core (events ÷
# CPU seconds), the way Flink's Nexmark reports count them.
#
#   NEXMARK_EVENTS       events per query (default 10000000)
#   NEXMARK_QUERIES      which queries (default: all)
#   NEXMARK_PARALLELISM  instances of the input and of every keyed stage
#                        (default 1)
#   NEXMARK_EVENT_RATE   events per second of event time (default 10000)
#   WEIR_BIN             a weir binary to measure instead of building one
#   NEXMARK_IDLE_WAIT    seconds to wait, before each query, for the other
#                        processes to leave the CPUs idle (default 120)
#
# The output of the query files is replaced by a discard output: the
# figures measure the engine, not the disk. CPU time is that of the weir
# process (user + system), from getrusage of the waited-for child. The
# column "other" is the CPU the rest of the machine used meanwhile, in
# cores (from /proc/stat): a row where it is above a few hundredths was
# disturbed.
set -euo pipefail

cd "$(dirname "$0")/../.."
GO=${GO:-go}
EVENTS=${NEXMARK_EVENTS:-10000000}
QUERIES=${NEXMARK_QUERIES:-q0 q1 q2 q3 q4 q5 q7 q8 q11 q12}
export NEXMARK_EVENTS=$EVENTS
export NEXMARK_RATE=0
export NEXMARK_PARALLELISM=${NEXMARK_PARALLELISM:-1}
export NEXMARK_EVENT_RATE=${NEXMARK_EVENT_RATE:-10000}

work=$(mktemp -d "${TMPDIR:-/tmp}/weir-nexmark-XXXXXX")
trap 'rm -rf "$work"' EXIT

weir=${WEIR_BIN:-$work/weir}
if [[ -z ${WEIR_BIN:-} ]]; then
	$GO build -o "$weir" ./cmd/weir
	built="built from commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
	if [[ -n $(git status --porcelain --untracked-files=no 2>/dev/null) ]]; then
		built+=" with uncommitted changes"
	fi
else
	built=$WEIR_BIN
fi

cpu=$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | sed 's/.*: //' || true)
echo "machine: $(nproc) cores, ${cpu:-unknown CPU}, $(uname -sm)"
echo "weir: $("$weir" version), $built"
echo "events per query: $EVENTS, event_rate $NEXMARK_EVENT_RATE/s, parallelism $NEXMARK_PARALLELISM, checkpoints every 10s, discard output"
printf '%-6s %12s %9s %12s %7s %16s %7s\n' query events seconds events/s cores events/s/core other

# busy prints the CPU seconds all processes have used since boot.
hz=$(getconf CLK_TCK)
busy() {
	awk -v hz="$hz" '/^cpu / { printf "%.2f\n", ($2 + $3 + $4 + $7 + $8 + $9) / hz; exit }' /proc/stat
}

# wait_idle waits until the machine uses less than 0.1 core over a second,
# for at most NEXMARK_IDLE_WAIT seconds.
wait_idle() {
	local deadline=$((SECONDS + ${NEXMARK_IDLE_WAIT:-120})) b0 b1
	while ((SECONDS < deadline)); do
		b0=$(busy)
		sleep 1
		b1=$(busy)
		if awk -v a="$b0" -v b="$b1" 'BEGIN { exit !(b - a < 0.1) }'; then
			return 0
		fi
	done
	echo "warning: the machine is still busy after ${NEXMARK_IDLE_WAIT:-120}s; measuring anyway" >&2
}

failed=0
for q in $QUERIES; do
	src=bench/nexmark/$q.yaml
	# The node the file output reads from, and the file without its outputs.
	from=$(awk '/^outputs:/ { o = 1 } o && $1 == "from:" { print $2; exit }' "$src")
	if [[ -z $from ]]; then
		echo "$q: no output in $src" >&2
		exit 1
	fi
	{
		sed '/^outputs:/,$d' "$src"
		printf 'outputs:\n  out:\n    type: discard\n    from: %s\n' "$from"
	} >"$work/$q.yaml"
	export NEXMARK_STATE_DIR=$work/state-$q

	# bash's time keyword: wall, user and system seconds of the child.
	TIMEFORMAT='%3R %3U %3S'
	rc=0
	wait_idle
	b0=$(busy)
	{ time "$weir" run "$work/$q.yaml" 2>"$work/$q.log"; } 2>"$work/$q.time" || rc=$?
	b1=$(busy)
	if ((rc != 0)); then
		echo "$q: weir exited $rc:" >&2
		tail -20 "$work/$q.log" >&2
		failed=1
		continue
	fi
	read -r wall user sys <"$work/$q.time"
	read_events=$(sed -n 's/.*msg="pipeline stopped".* read=\([0-9]*\).*/\1/p' "$work/$q.log")
	if [[ $read_events != "$EVENTS" ]]; then
		echo "$q: the pipeline read ${read_events:-?} events, want $EVENTS" >&2
		failed=1
	fi
	awk -v q="$q" -v n="$EVENTS" -v wall="$wall" -v user="$user" -v sys="$sys" -v b0="$b0" -v b1="$b1" 'BEGIN {
		cpu = user + sys
		other = (b1 - b0 - cpu) / wall
		printf "%-6s %12d %9.2f %12.0f %7.2f %16.0f %7.2f\n", q, n, wall, n / wall, cpu / wall, n / cpu, other < 0 ? 0 : other
	}'
	rm -rf "$NEXMARK_STATE_DIR"
done
exit $failed
