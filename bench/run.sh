#!/usr/bin/env bash
# sentinel's shipped benchmark. Builds release binaries, then bench/bench.py
# runs the stages on 127.0.0.1 and prints a markdown table (also written to
# bench/out/results-<date>.md). See bench/README.md.
#
#   bench/run.sh            # the cost-per-probe table: sentinel at 1 000, 5 000, 10 000,
#                           # 15 000 and 20 000 probes/s and blackbox_exporter + Prometheus
#                           # at 1 000/s, 3 runs each (~9 minutes after the build)
#   bench/run.sh --quick    # 1 run each, 10 s measured (~2 minutes): a look, not the table
#   bench/run.sh --quick --rates 1000 --stages probe   # one row
#   bench/run.sh --stages history,storm,render        # the other stages
set -euo pipefail
cd "$(dirname "$0")/.."

# What the default stages need, checked before a long build.
missing=()
for tool in nginx prometheus prometheus-blackbox-exporter python3; do
    command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "bench/run.sh: not installed: ${missing[*]}" >&2
    echo "  apt-get install nginx prometheus prometheus-blackbox-exporter python3" >&2
    echo "  (the probe stage needs nginx, the blackbox stage Prometheus and the exporter)" >&2
    exit 2
fi

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

echo "bench/run.sh: load average before the run: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs" >&2
BENCH_PIDFILE="$pidfile" python3 bench/bench.py --command "bench/run.sh $*" "$@"
