#!/usr/bin/env bash
# sentinel's shipped benchmark. Builds release binaries, then bench/bench.py
# runs every stage on 127.0.0.1 and prints a markdown table (also written to
# bench/out/results-<date>.md). See bench/README.md.
#
#   bench/run.sh                       # N=1000 and N=10000 at 5 000 probes/s, ~10 minutes
#   bench/run.sh --checks 1000 --duration 20 --stages probe,blackbox
set -euo pipefail
cd "$(dirname "$0")/.."

pidfile=$(mktemp -t sentinel-bench-pids.XXXXXX)
cleanup() {
    # Only the processes bench.py started (it records each pid here).
    # Each line is "PID STARTTIME"; a pid is killed only if it still names
    # the same process (start time unchanged), never a recycled one.
    while read -r pid start; do
        [ -n "$pid" ] || continue
        now=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | awk '{print $20}') || continue
        [ "$now" = "$start" ] && kill -KILL "$pid" 2>/dev/null || true
    done < "$pidfile"
    rm -f "$pidfile"
}
trap cleanup EXIT

cargo build --release --bin sentinel \
    --example bench_target --example bench_history --example bench_record --example render_10k

BENCH_PIDFILE="$pidfile" python3 bench/bench.py --command "bench/run.sh $*" "$@"
