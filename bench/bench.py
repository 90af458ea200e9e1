#!/usr/bin/env python3
"""sentinel's shipped benchmark (driven by bench/run.sh after a release build).

Stages, each bounded in time, all on 127.0.0.1:
  probe    for each N: sentinel probing N local HTTP targets at --rate probes/s,
           then blackbox_exporter probed by Prometheus at the same rate against
           the same targets; CPU (utime+stime from /proc/PID/stat), RSS
           (VmRSS/VmHWM from /proc/PID/status), probes/s from counter deltas.
  history  10 000 checks with 30 days of stored history: start-up to /readyz,
           steady-state RSS, store size; per-run cost of EngineState::on_run.
  storm    1 000 services failing at once: time until every incident is open
           and every webhook event delivered to a local receiver; peak outbox depth.
  render   /metrics render for 10 000 checks in-process (examples/render_10k).

Every process started here is recorded in $BENCH_PIDFILE (run.sh kills them on
exit) and asked to die with this process (PR_SET_PDEATHSIG) as a second guard.
Figures are printed, never asserted: this is a benchmark, not a test.
"""

import argparse
import ctypes
import datetime
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RELEASE = os.path.join(ROOT, "target", "release")
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

# The targets from issues #2 and #3; (label, unit, predicate on the figure).
TARGETS = {
    "rate": ("≥ 5 000 probes/s", lambda v: v >= 5000 * 0.98),
    "cpu_ms": ("≤ 0.15 CPU-ms/probe", lambda v: v <= 0.15),
    "lag_p99": ("< 10 ms", lambda v: v < 10.0),
    "rss_check": ("≤ 20 KiB/check", lambda v: v <= 20.0),
    "render": ("< 100 ms", lambda v: v < 100.0),
    "ready": ("< 5 s", lambda v: v < 5.0),
    "record": ("≤ 5 µs/run (5 000 ns)", lambda v: v <= 5000.0),
}

CHILDREN = []


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _die_with_parent():
    # PR_SET_PDEATHSIG = 1: the child gets SIGTERM if this orchestrator dies.
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)
    except OSError:
        pass


def spawn(argv, stdout=None, stderr=None, env=None):
    p = subprocess.Popen(
        argv,
        stdout=stdout if stdout is not None else subprocess.DEVNULL,
        stderr=stderr if stderr is not None else subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        env=env,
        preexec_fn=_die_with_parent,
    )
    CHILDREN.append(p)
    pidfile = os.environ.get("BENCH_PIDFILE")
    if pidfile:
        # pid and start time, so the shell's clean-up never hits a recycled pid.
        try:
            with open(f"/proc/{p.pid}/stat") as st:
                start = st.read().rsplit(")", 1)[1].split()[19]
        except (OSError, IndexError):
            start = "?"
        with open(pidfile, "a") as f:
            f.write(f"{p.pid} {start}\n")
    return p


def stop(p, grace=30.0):
    """SIGTERM, wait up to `grace`, then SIGKILL. Returns seconds to exit."""
    if p.poll() is not None:
        return 0.0
    t = time.monotonic()
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    return time.monotonic() - t


def stop_all():
    for p in reversed(CHILDREN):
        if p.poll() is None:
            try:
                p.kill()
                p.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=10.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read()


def wait_http_ok(url, deadline_s, proc=None, interval=0.02):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} while waiting for {url}")
        try:
            if http_get(url, timeout=2.0)[0] == 200:
                return True
        except OSError:
            pass
        time.sleep(interval)
    return False


# ---------------------------------------------------------------- /proc


def cpu_seconds(pid):
    """utime + stime of every thread of `pid`, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    fields = stat[stat.rindex(")") + 2:].split()
    # Fields 14 and 15 of proc(5); `fields` starts at field 3 (state).
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def mem_kib(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                out[k] = int(v.split()[0])
    return out


# ---------------------------------------------------------------- exposition


SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)')


def metric_sum(text, name, label_filter=None):
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        m = SAMPLE.match(line)
        if not m or m.group(1) != name:
            continue
        if label_filter and label_filter not in (m.group(2) or ""):
            continue
        try:
            total += float(m.group(3))
        except ValueError:
            pass
    return total


# ---------------------------------------------------------------- configs


def sentinel_yaml(n, urls, interval_ms, timeout_ms, db_path, listen="127.0.0.1:0",
                  max_concurrency=None, per_service=10):
    """N HTTP checks, 10 per service, each service with an SLO as a real team would have."""
    mc = max_concurrency or max(1024, n)
    out = [
        "# generated by bench/bench.py",
        "server:",
        f"  listen: {listen}",
        f"  max_concurrency: {mc}",
        "storage:",
        f"  path: {db_path}",
        "defaults:",
        f"  interval: {interval_ms}ms",
        f"  timeout: {timeout_ms}ms",
        "services:",
    ]
    for s in range(0, n, per_service):
        out.append(f"  - name: service-{s // per_service:05d}")
        out.append("    checks:")
        for c in range(s, min(n, s + per_service)):
            out.append(f"      - name: check-{c - s}")
            out.append("        http:")
            out.append(f"          url: {urls[c]}")
            out.append("          expect: { status: [200], body_contains: \"ok\" }")
        out.append("    slo:")
        out.append("      objective: 99.9")
        out.append("      window: 30d")
        out.append("      latency: { threshold: 250ms, objective: 99 }")
    return "\n".join(out) + "\n"


def target_urls(n, ports):
    return [f"http://{ports[i % len(ports)]}/svc/{i // 10}/check/{i % 10}" for i in range(n)]


BLACKBOX_YML = """# generated by bench/bench.py: the same expectations as sentinel's checks
modules:
  http_2xx:
    prober: http
    timeout: {timeout}
    http:
      method: GET
      valid_status_codes: [200]
      preferred_ip_protocol: ip4
      fail_if_body_not_matches_regexp: ["ok"]
"""

PROMETHEUS_YML = """# generated by bench/bench.py
global:
  scrape_interval: {interval}
  scrape_timeout: {timeout}
  evaluation_interval: 1m
scrape_configs:
  - job_name: blackbox
    metrics_path: /probe
    params:
      module: [http_2xx]
    file_sd_configs:
      - files: ['{sd}']
        refresh_interval: 5m
    relabel_configs:
      - source_labels: [__address__]
        target_label: __param_target
      - source_labels: [__param_target]
        target_label: instance
      - target_label: __address__
        replacement: {bbe}
"""


# ---------------------------------------------------------------- stages


class Measure:
    """CPU and memory of a set of pids between two points in time."""

    def __init__(self, pids):
        self.pids = pids
        self.t0 = time.monotonic()
        self.cpu0 = {k: cpu_seconds(p) for k, p in pids.items()}
        self.peak_rss = {k: 0 for k in pids}

    def sample_rss(self):
        for k, p in self.pids.items():
            self.peak_rss[k] = max(self.peak_rss[k], mem_kib(p).get("VmRSS", 0))

    def finish(self):
        self.sample_rss()
        elapsed = time.monotonic() - self.t0
        cpu = {k: cpu_seconds(p) - self.cpu0[k] for k, p in self.pids.items()}
        mem = {k: mem_kib(p) for k, p in self.pids.items()}
        return elapsed, cpu, mem


def run_window(measure, duration):
    end = time.monotonic() + duration
    while time.monotonic() < end:
        time.sleep(min(2.0, max(0.0, end - time.monotonic())))
        measure.sample_rss()


def parse_listen(log_path, proc, deadline_s=60.0):
    end = time.monotonic() + deadline_s
    pat = re.compile(r"sentinel listening.*?listen=(\S+)")
    while time.monotonic() < end:
        if proc.poll() is not None:
            break
        with open(log_path, errors="replace") as f:
            m = pat.search(f.read())
        if m:
            return m.group(1)
        time.sleep(0.02)
    with open(log_path, errors="replace") as f:
        tail = f.read()[-2000:]
    raise RuntimeError(f"sentinel did not report its listen address:\n{tail}")


def bench_sentinel(args, work, n, target_pid, urls, interval_ms, timeout_ms):
    d = tempfile.mkdtemp(prefix=f"sentinel-{n}-", dir=work)
    cfg = os.path.join(d, "sentinel.yaml")
    with open(cfg, "w") as f:
        f.write(sentinel_yaml(n, urls, interval_ms, timeout_ms, os.path.join(d, "state.db")))
    log_path = os.path.join(d, "sentinel.log")
    env = dict(os.environ, RUST_LOG="info")
    with open(log_path, "w") as lf:
        p = spawn([os.path.join(RELEASE, "sentinel"), "run", "-c", cfg], stderr=lf, env=env)
    listen = parse_listen(log_path, p)
    base = f"http://{listen}"
    if not wait_http_ok(base + "/readyz", 60, p):
        raise RuntimeError("sentinel never became ready")
    log(f"sentinel N={n} ready on {listen}; warm-up {args.warmup}s")
    time.sleep(args.warmup)

    pids = {"sentinel": p.pid, "target": target_pid}

    def snap():
        # A scrape of 10 000 checks can take seconds under load, and the
        # counters are read at some instant inside it: take time and CPU at
        # the midpoint, so runs and CPU cover the same interval.
        ta, ca = time.monotonic(), {k: cpu_seconds(v) for k, v in pids.items()}
        _, body = http_get(base + "/metrics", timeout=120)
        tb, cb = time.monotonic(), {k: cpu_seconds(v) for k, v in pids.items()}
        return body, (ta + tb) / 2, {k: (ca[k] + cb[k]) / 2 for k in pids}

    m0, t0, cpu0 = snap()
    m = Measure(pids)
    runs0 = metric_sum(m0.decode(), "sentinel_check_runs_total")
    run_window(m, args.duration)
    m1, t1, cpu1 = snap()
    _, _, mem = m.finish()
    elapsed = t1 - t0
    cpu = {k: cpu1[k] - cpu0[k] for k in pids}
    text1 = m1.decode()
    runs = metric_sum(text1, "sentinel_check_runs_total") - runs0
    bad = metric_sum(text1, "sentinel_check_runs_total", 'result="bad"') - metric_sum(
        m0.decode(), "sentinel_check_runs_total", 'result="bad"')
    skipped = metric_sum(text1, "sentinel_check_skipped_total") - metric_sum(
        m0.decode(), "sentinel_check_skipped_total")
    reasons = {}
    for r in set(re.findall(r'sentinel_check_failures_total\{[^}]*reason="([a-z_]+)"', text1)):
        reasons[r] = metric_sum(text1, "sentinel_check_failures_total", f'reason="{r}"') - metric_sum(
            m0.decode(), "sentinel_check_failures_total", f'reason="{r}"')
    reasons = {k: int(v) for k, v in sorted(reasons.items()) if v > 0}
    lag_p99 = metric_sum(text1, "sentinel_scheduler_start_lag_seconds", 'quantile="0.99"')
    lag_p50 = metric_sum(text1, "sentinel_scheduler_start_lag_seconds", 'quantile="0.5"')

    # /metrics render time after the window, so the GETs do not cost CPU inside it.
    times, size = [], 0
    for _ in range(args.renders):
        t = time.monotonic()
        _, body = http_get(base + "/metrics", timeout=120)
        times.append((time.monotonic() - t) * 1e3)
        size = len(body)
    stop_s = stop(p)
    db_bytes = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d) if f.startswith("state.db"))
    log(f"sentinel N={n}: {runs / elapsed:.0f} probes/s, stopped in {stop_s:.1f}s")
    return {
        "n": n,
        "rate": runs / elapsed,
        "runs": runs,
        "bad": bad,
        "skipped": skipped,
        "reasons": reasons,
        "cpu_s": cpu["sentinel"],
        "cpu_ms_per_probe": cpu["sentinel"] * 1e3 / runs if runs else float("nan"),
        "target_cpu_ms_per_probe": cpu["target"] * 1e3 / runs if runs else float("nan"),
        "rss_kib": mem["sentinel"].get("VmRSS", 0),
        "hwm_kib": mem["sentinel"].get("VmHWM", 0),
        "lag_p99_ms": lag_p99 * 1e3,
        "lag_p50_ms": lag_p50 * 1e3,
        "render_ms": statistics.median(times) if times else float("nan"),
        "render_all_ms": times,
        "scrape_bytes": size,
        "db_bytes": db_bytes,
        "elapsed": elapsed,
    }


def bench_blackbox(args, work, n, target_pid, urls, interval_ms, timeout_ms):
    d = tempfile.mkdtemp(prefix=f"blackbox-{n}-", dir=work)
    bbe_port, prom_port = free_port(), free_port()
    bbe_cfg = os.path.join(d, "blackbox.yml")
    with open(bbe_cfg, "w") as f:
        f.write(BLACKBOX_YML.format(timeout=f"{timeout_ms}ms"))
    sd = os.path.join(d, "targets.json")
    with open(sd, "w") as f:
        json.dump([{"targets": urls}], f)
    prom_cfg = os.path.join(d, "prometheus.yml")
    with open(prom_cfg, "w") as f:
        f.write(PROMETHEUS_YML.format(interval=f"{interval_ms}ms", timeout=f"{timeout_ms}ms",
                                      sd=sd, bbe=f"127.0.0.1:{bbe_port}"))
    bbe_log = open(os.path.join(d, "blackbox.log"), "w")
    bbe = spawn([args.blackbox, f"--config.file={bbe_cfg}",
                 f"--web.listen-address=127.0.0.1:{bbe_port}"], stderr=bbe_log)
    if not wait_http_ok(f"http://127.0.0.1:{bbe_port}/metrics", 30, bbe):
        raise RuntimeError("blackbox_exporter did not start")
    prom_log = open(os.path.join(d, "prometheus.log"), "w")
    prom = spawn([args.prometheus, f"--config.file={prom_cfg}",
                  f"--storage.tsdb.path={os.path.join(d, 'tsdb')}",
                  "--storage.tsdb.retention.time=1h",
                  f"--web.listen-address=127.0.0.1:{prom_port}"], stderr=prom_log)
    pbase = f"http://127.0.0.1:{prom_port}"
    if not wait_http_ok(pbase + "/-/ready", 60, prom):
        raise RuntimeError("prometheus did not become ready")
    log(f"blackbox_exporter N={n} on :{bbe_port}, prometheus on :{prom_port}; warm-up {args.warmup}s")
    time.sleep(args.warmup)

    m = Measure({"blackbox": bbe.pid, "prometheus": prom.pid, "target": target_pid})
    run_window(m, args.duration)
    t1 = time.time()
    elapsed, cpu, mem = m.finish()
    # Every scrape is one probe and writes one `up` sample stamped with its
    # start, so counting samples over the window counts the probes run in it.
    window = f"{int(round(elapsed))}s"

    def query(expr):
        q = urllib.parse.quote(expr)
        _, body = http_get(f"{pbase}/api/v1/query?query={q}&time={t1:.3f}", timeout=60)
        res = json.loads(body)["data"]["result"]
        return float(res[0]["value"][1]) if res else 0.0

    scrapes = good = float("nan")
    try:
        scrapes = query(f'sum(count_over_time(up{{job="blackbox"}}[{window}]))')
        good = query(f'sum(sum_over_time(probe_success{{job="blackbox"}}[{window}]))')
    except (OSError, ValueError, KeyError, IndexError) as e:
        log(f"querying prometheus failed: {e}")
    rate_window = int(round(elapsed))
    stop(prom)
    stop(bbe)
    bbe_log.close()
    prom_log.close()
    log(f"blackbox N={n}: {scrapes / rate_window:.0f} probes/s")
    return {
        "n": n,
        "rate": scrapes / rate_window,
        "runs": scrapes,
        "bad": max(0.0, scrapes - good),
        "bbe_cpu_ms_per_probe": cpu["blackbox"] * 1e3 / scrapes if scrapes else float("nan"),
        "prom_cpu_ms_per_probe": cpu["prometheus"] * 1e3 / scrapes if scrapes else float("nan"),
        "target_cpu_ms_per_probe": cpu["target"] * 1e3 / scrapes if scrapes else float("nan"),
        "bbe_rss_kib": mem["blackbox"].get("VmRSS", 0),
        "bbe_hwm_kib": mem["blackbox"].get("VmHWM", 0),
        "prom_rss_kib": mem["prometheus"].get("VmRSS", 0),
        "prom_hwm_kib": mem["prometheus"].get("VmHWM", 0),
        "elapsed": elapsed,
    }


def run_example(name, *argv, timeout=900):
    out = subprocess.run([os.path.join(RELEASE, "examples", name), *map(str, argv)],
                         capture_output=True, text=True, timeout=timeout, preexec_fn=_die_with_parent)
    if out.returncode != 0:
        raise RuntimeError(f"{name} failed ({out.returncode}): {out.stderr[-2000:]}")
    line = out.stdout.strip().splitlines()[-1]
    return dict(kv.split("=", 1) for kv in line.split())


def bench_history(args, work, target_ports):
    n = 10_000
    interval_ms = max(1, round(n * 1000 / args.rate))
    timeout_ms = min(interval_ms, 1000)
    d = tempfile.mkdtemp(prefix="history-", dir=work)
    cfg = os.path.join(d, "sentinel.yaml")
    with open(cfg, "w") as f:
        f.write(sentinel_yaml(n, target_urls(n, target_ports), interval_ms, timeout_ms,
                              os.path.join(d, "state.db")))
    log(f"generating {args.history_days} days of history for {n} checks")
    gen = run_example("bench_history", cfg, args.history_days)
    log(f"history: {gen}")
    rec = run_example("bench_record", cfg, args.record_runs, args.rate)
    log(f"record: {rec}")

    log_path = os.path.join(d, "sentinel.log")
    with open(log_path, "w") as lf:
        t0 = time.monotonic()
        p = spawn([os.path.join(RELEASE, "sentinel"), "run", "-c", cfg], stderr=lf,
                  env=dict(os.environ, RUST_LOG="info"))
        listen = parse_listen(log_path, p, deadline_s=120)
        listen_s = time.monotonic() - t0
        ok = wait_http_ok(f"http://{listen}/readyz", 120, p, interval=0.01)
        ready_s = time.monotonic() - t0 if ok else float("nan")
    log(f"history start-up: listening after {listen_s:.2f}s, ready after {ready_s:.2f}s; steady {args.steady}s")
    after_ready = mem_kib(p.pid)
    time.sleep(args.steady)
    steady = mem_kib(p.pid)
    _, body = http_get(f"http://{listen}/metrics")
    stop(p)
    store_bytes = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d) if f.startswith("state.db"))
    return {
        "n": n,
        "days": args.history_days,
        "gen": gen,
        "record": rec,
        "listen_s": listen_s,
        "ready_s": ready_s,
        "rss_ready_kib": after_ready.get("VmRSS", 0),
        "rss_steady_kib": steady.get("VmRSS", 0),
        "hwm_kib": steady.get("VmHWM", 0),
        "store_bytes": store_bytes,
        "store_bytes_generated": int(gen.get("store_bytes", 0)),
        "scrape_bytes": len(body),
    }


def storm_yaml(n, ports, db_path):
    """N services, one always-failing check each, every incident sent to one signed webhook."""
    out = [
        "# generated by bench/bench.py: incident storm",
        "server:",
        "  listen: 127.0.0.1:0",
        "storage:",
        f"  path: {db_path}",
        "defaults:",
        "  interval: 1s",
        "  timeout: 500ms",
        "notifiers:",
        "  - name: hook",
        "    type: webhook",
        f"    url: http://{ports[0]}/hook",
        "    secret_env: BENCH_WEBHOOK_SECRET",
        "services:",
    ]
    for i in range(n):
        out += [
            f"  - name: storm-{i:04d}",
            "    checks:",
            "      - name: down",
            "        http:",
            f"          url: http://{ports[i % len(ports)]}/fail/storm/{i}",
            "    incident: { open_after: 3, resolve_after: 2, severity: P1, notify: [hook] }",
        ]
    return "\n".join(out) + "\n"


def bench_storm(args, work, ports):
    """Issue #4: N services fail at once; time until every incident is open and
    every event delivered to a local receiver, and the peak outbox depth."""
    n = args.storm_services
    d = tempfile.mkdtemp(prefix="storm-", dir=work)
    cfg = os.path.join(d, "sentinel.yaml")
    with open(cfg, "w") as f:
        f.write(storm_yaml(n, ports, os.path.join(d, "state.db")))
    hook_count = f"http://{ports[0]}/hook/count"
    hooks0 = int(http_get(hook_count)[1].split()[0])
    log_path = os.path.join(d, "sentinel.log")
    env = dict(os.environ, RUST_LOG="info", BENCH_WEBHOOK_SECRET="whsec_c2VudGluZWwtYmVuY2gtc2VjcmV0LWtleQ==")
    with open(log_path, "w") as lf:
        t0 = time.monotonic()
        p = spawn([os.path.join(RELEASE, "sentinel"), "run", "-c", cfg], stderr=lf, env=env)
    listen = parse_listen(log_path, p)
    if not wait_http_ok(f"http://{listen}/readyz", 60, p):
        raise RuntimeError("sentinel never became ready")
    ready = time.monotonic() - t0
    first_open = all_open = drained = None
    peak_depth, opened, delivered = 0, 0, 0
    end = time.monotonic() + args.storm_timeout
    while time.monotonic() < end:
        try:
            text = http_get(f"http://{listen}/metrics")[1].decode()
        except OSError:
            time.sleep(0.1)
            continue
        now = time.monotonic() - t0
        opened = int(metric_sum(text, "sentinel_incidents_total"))
        depth = int(metric_sum(text, "sentinel_notifier_queue_depth"))
        peak_depth = max(peak_depth, depth)
        delivered = int(http_get(hook_count)[1].split()[0]) - hooks0
        if opened > 0 and first_open is None:
            first_open = now
        if opened >= n and all_open is None:
            all_open = now
        if all_open is not None and depth == 0 and delivered >= opened:
            drained = now
            break
        time.sleep(0.1)
    stop(p)
    log(f"storm: {opened} incidents, {delivered} deliveries, peak depth {peak_depth}")
    return {
        "n": n,
        "ready_s": ready,
        "first_open_s": first_open,
        "all_open_s": all_open,
        "drained_s": drained,
        "opened": opened,
        "delivered": delivered,
        "peak_depth": peak_depth,
    }


# ---------------------------------------------------------------- report


def fmt(v, digits=2):
    if v is None or (isinstance(v, float) and v != v):
        return "n/a"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    return f"{v:,}"


def verdict(key, v):
    label, ok = TARGETS[key]
    if v is None or (isinstance(v, float) and v != v):
        return label, "n/a"
    return label, "pass" if ok(v) else "**miss**"


def ratio(a, b):
    if not a or not b or a != a or b != b:
        return "n/a"
    return f"{a / b:.2f}×"


def machine():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    return os.cpu_count(), model, mem


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def report(args, results, load_start, load_end, started):
    ncpu, model, mem = machine()
    try:
        commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True).stdout.strip()
    except OSError:
        commit = "?"
    L = []
    L.append(f"# sentinel benchmark — {started:%Y-%m-%d %H:%M} UTC")
    L.append("")
    L.append(f"- command: `{args.command}`")
    L.append(f"- commit: `{commit}`; machine: {ncpu} CPUs ({model}), {mem} RAM")
    L.append(f"- load average (1/5/15 min): start {load_start}, end {load_end} "
             "(other work on the machine shares the cores)")
    L.append(f"- each probing stage: {args.warmup}s warm-up, then {args.duration}s measured; "
             f"target rate {args.rate:,} probes/s; target server on {args.ports} loopback ports; "
             "sentinel and blackbox_exporter+Prometheus run one after the other, never together")
    L.append("")
    for n in args.checks:
        s = results.get(("sentinel", n))
        b = results.get(("blackbox", n))
        if not s and not b:
            continue
        interval_ms = max(1, round(n * 1000 / args.rate))
        L.append(f"## Probing: {n:,} HTTP checks every {interval_ms} ms")
        L.append("")
        L.append("| figure | sentinel | blackbox_exporter | Prometheus (scheduler) | bbe + Prometheus | "
                 "ratio (bbe+Prom) / sentinel | target (sentinel) | result |")
        L.append("|---|---|---|---|---|---|---|---|")
        s = s or {}
        b = b or {}
        t, r = verdict("rate", s.get("rate"))
        L.append(f"| probes/s achieved | {fmt(s.get('rate'), 0)} | {fmt(b.get('rate'), 0)} | ← same scrapes | "
                 f"{fmt(b.get('rate'), 0)} | {ratio(b.get('rate'), s.get('rate'))} | {t} | {r} |")
        sc, bc, pc = s.get("cpu_ms_per_probe"), b.get("bbe_cpu_ms_per_probe"), b.get("prom_cpu_ms_per_probe")
        both = bc + pc if bc is not None and pc is not None else None
        t, r = verdict("cpu_ms", sc)
        L.append(f"| CPU-ms per probe (= CPU-s per 1 000 probes) | {fmt(sc, 3)} | {fmt(bc, 3)} | {fmt(pc, 3)} | {fmt(both, 3)} | "
                 f"{ratio(both, sc)} | {t} | {r} |")
        sh, bh, ph = s.get("hwm_kib"), b.get("bbe_hwm_kib"), b.get("prom_hwm_kib")
        bothh = bh + ph if bh is not None and ph is not None else None
        L.append(f"| peak RSS (VmHWM), MiB | {fmt(sh / 1024 if sh else None, 1)} | "
                 f"{fmt(bh / 1024 if bh else None, 1)} | {fmt(ph / 1024 if ph else None, 1)} | "
                 f"{fmt(bothh / 1024 if bothh else None, 1)} | {ratio(bothh, sh)} | | |")
        per = sh / n if sh else None
        t, r = verdict("rss_check", per)
        L.append(f"| peak RSS per check, KiB | {fmt(per, 1)} | {fmt(bh / n if bh else None, 1)} | "
                 f"{fmt(ph / n if ph else None, 1)} | {fmt(bothh / n if bothh else None, 1)} | "
                 f"{ratio(bothh, sh)} | {t} | {r} |")
        t, r = verdict("lag_p99", s.get("lag_p99_ms"))
        L.append(f"| start lag p99 (p50), ms | {fmt(s.get('lag_p99_ms'), 2)} ({fmt(s.get('lag_p50_ms'), 2)}) | "
                 "n/a | n/a | | | " + f"{t} | {r} |")
        rt, rr = verdict("render", s.get("render_ms")) if n >= 10_000 else ("< 100 ms at 10 000 checks", "")
        L.append(f"| `/metrics` GET, median of {args.renders}, ms | {fmt(s.get('render_ms'), 1)} | | | | | {rt} | {rr} |")
        L.append(f"| `/metrics` size, bytes | {fmt(s.get('scrape_bytes'))} | | | | | | |")
        reasons = ", ".join(f"{k} {v:,}" for k, v in (s.get("reasons") or {}).items()) or "none"
        L.append(f"| bad probes in window | {fmt(s.get('bad'), 0)} ({reasons}) | {fmt(b.get('bad'), 0)} | | "
                 f"{fmt(b.get('bad'), 0)} | | | |")
        L.append(f"| runs skipped (previous still going) | {fmt(s.get('skipped'), 0)} | n/a | | | | | |")
        L.append(f"| target server CPU-ms per request | {fmt(s.get('target_cpu_ms_per_probe'), 3)} | "
                 f"{fmt(b.get('target_cpu_ms_per_probe'), 3)} | | | | | |")
        L.append("")
        if b and b.get("rate", 0) < args.rate * 0.98:
            L.append(f"Note: blackbox_exporter + Prometheus did **not** sustain {args.rate:,} probes/s on this "
                     f"machine; they achieved {fmt(b.get('rate'), 0)} probes/s. Per-probe CPU is over the probes "
                     "they did run.")
            L.append("")
        if b and b.get("runs") and b.get("bad", 0) > 0.5 * b["runs"]:
            L.append(f"Warning: {b['bad'] / b['runs']:.0%} of blackbox_exporter probes **failed** (Prometheus → "
                     "exporter scrapes timing out under load). A failed scrape does little work, so its CPU per "
                     "probe is *not* comparable with sentinel's; compare at a rate both sustain, e.g. "
                     "`bench/run.sh --rate 1000 --checks 1000 --stages probe,blackbox`.")
            L.append("")
        if s and s.get("rate", 0) < args.rate * 0.98:
            L.append(f"Note: sentinel did **not** sustain {args.rate:,} probes/s; it achieved "
                     f"{fmt(s.get('rate'), 0)} probes/s.")
            L.append("")
    if ("sentinel", 1000) in results and ("sentinel", 10000) in results:
        a, z = results[("sentinel", 1000)], results[("sentinel", 10000)]
        marginal = (z["hwm_kib"] - a["hwm_kib"]) / 9000
        L.append(f"Marginal peak RSS per check between 1 000 and 10 000 checks: {marginal:.1f} KiB "
                 f"({TARGETS['rss_check'][0]}: {'pass' if marginal <= 20 else '**miss**'}).")
        L.append("")
    h = results.get("history")
    if h:
        L.append(f"## Stored history: {h['n']:,} checks, {h['days']} days")
        L.append("")
        L.append("| figure | value | target | result |")
        L.append("|---|---|---|---|")
        g = h["gen"]
        L.append(f"| store rows (minute / hour) | {int(g['minute_rows']):,} / {int(g['hour_rows']):,} | | |")
        L.append(f"| store size on disk (generated → after run), MiB | {h['store_bytes_generated'] / 2**20:,.1f} → "
                 f"{h['store_bytes'] / 2**20:,.1f} | | |")
        t, r = verdict("ready", h["ready_s"])
        L.append(f"| spawn → listening, s | {h['listen_s']:.2f} | | |")
        L.append(f"| spawn → `/readyz` 200, s | {h['ready_s']:.2f} | {t} | {r} |")
        per = h["rss_steady_kib"] / h["n"]
        t, r = verdict("rss_check", per)
        L.append(f"| RSS at ready / after {args.steady}s probing (peak), MiB | {h['rss_ready_kib'] / 1024:.1f} / "
                 f"{h['rss_steady_kib'] / 1024:.1f} ({h['hwm_kib'] / 1024:.1f}) | | |")
        L.append(f"| steady-state RSS per check, KiB | {per:.1f} | {t} | {r} |")
        rec = h["record"]
        t, r = verdict("record", float(rec["on_run_ns"]))
        L.append(f"| `EngineState::on_run`, ns/run ({int(rec['runs']):,} runs over {int(rec['checks']):,} checks) | "
                 f"{rec['on_run_ns']} | {t} | {r} |")
        L.append(f"| + `take_pending` once per simulated second, ns/run | {rec['take_pending_ns_per_run']} "
                 f"(total {rec['total_ns_per_run']}) | | |")
        if "load_s" in g:
            L.append(f"| start-up steps in-process (bench_history): `Store::open` / `load_buckets` "
                     f"({int(g['load_rows']):,} rows) / `EngineState::restore`, s | {g['open_s']} / {g['load_s']} / "
                     f"{g['restore_s']} | | |")
        L.append(f"| history generation time (not a target), s | {g['generate_s']} | | |")
        L.append("")
    st = results.get("storm")
    if st:
        def since_first(v):
            return fmt(v - st["first_open_s"], 2) if v is not None and st["first_open_s"] is not None else "n/a"
        L.append(f"## Incident storm: {st['n']:,} services failing at once (open_after 3, interval 1 s)")
        L.append("")
        L.append("| figure | value |")
        L.append("|---|---|")
        L.append(f"| incidents opened / webhook deliveries received | {st['opened']:,} / {st['delivered']:,} |")
        L.append(f"| spawn → ready / first incident / all open / all delivered, s | {fmt(st['ready_s'])} / "
                 f"{fmt(st['first_open_s'])} / {fmt(st['all_open_s'])} / {fmt(st['drained_s'])} |")
        L.append(f"| time to drain (first incident opened → outbox empty, all delivered), s | "
                 f"{since_first(st['drained_s'])} |")
        L.append(f"| peak `sentinel_notifier_queue_depth` (sampled every ~0.1 s) | {st['peak_depth']:,} |")
        if st["drained_s"] is None:
            L.append(f"| **not drained within {args.storm_timeout:.0f} s** | |")
        L.append("")
    rd = results.get("render")
    if rd:
        t, r = verdict("render", float(rd["render_ms_best_of_5"]))
        L.append("## `/metrics` render in-process (examples/render_10k)")
        L.append("")
        L.append("| figure | value | target | result |")
        L.append("|---|---|---|---|")
        L.append(f"| render {int(rd['checks']):,} checks, best of 5, ms | {rd['render_ms_best_of_5']} | {t} | {r} |")
        L.append(f"| scrape size, bytes | {int(rd['scrape_bytes']):,} | | |")
        L.append("")
    errs = results.get("errors")
    if errs:
        L.append("## Stages that failed")
        L.append("")
        for e in errs:
            L.append(f"- {e}")
        L.append("")
    return "\n".join(L)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checks", default="1000,10000", help="comma-separated N (default 1000,10000)")
    ap.add_argument("--rate", type=int, default=5000, help="total probes/s to schedule (default 5000)")
    ap.add_argument("--duration", type=float, default=60, help="measured seconds per stage (default 60)")
    ap.add_argument("--warmup", type=float, default=10, help="seconds before measuring (default 10)")
    ap.add_argument("--renders", type=int, default=5, help="/metrics GETs to time (default 5)")
    ap.add_argument("--ports", type=int, default=8, help="loopback ports of the target server (default 8)")
    ap.add_argument("--stages", default="probe,blackbox,history,storm,render",
                    help="subset of probe,blackbox,history,storm,render")
    ap.add_argument("--storm-services", type=int, default=1000)
    ap.add_argument("--storm-timeout", type=float, default=120)
    ap.add_argument("--history-days", type=int, default=30)
    ap.add_argument("--record-runs", type=int, default=1_000_000)
    ap.add_argument("--steady", type=float, default=30, help="seconds of probing before steady-state RSS")
    ap.add_argument("--blackbox", default="/usr/bin/prometheus-blackbox-exporter")
    ap.add_argument("--prometheus", default="/usr/bin/prometheus")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "out"))
    ap.add_argument("--command", default=" ".join(sys.argv), help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.checks = [int(x) for x in args.checks.split(",") if x]
    stages = set(args.stages.split(","))

    def on_signal(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    started = datetime.datetime.now(datetime.timezone.utc)
    load_start = loadavg()
    work = tempfile.mkdtemp(prefix="sentinel-bench-")
    results = {"errors": []}
    try:
        tp = spawn([os.path.join(RELEASE, "examples", "bench_target"), str(args.ports)],
                   stdout=subprocess.PIPE)
        line = tp.stdout.readline().decode().split()
        if not line or line[0] != "listening":
            raise RuntimeError("bench_target did not start")
        ports = line[1:]
        log(f"target server on {' '.join(ports)}")
        for n in args.checks:
            interval_ms = max(1, round(n * 1000 / args.rate))
            timeout_ms = min(interval_ms, 1000)
            urls = target_urls(n, ports)
            if "probe" in stages:
                try:
                    results[("sentinel", n)] = bench_sentinel(args, work, n, tp.pid, urls, interval_ms, timeout_ms)
                except (RuntimeError, OSError) as e:
                    results["errors"].append(f"sentinel N={n}: {e}")
                    log(f"sentinel N={n} failed: {e}")
            if "blackbox" in stages:
                try:
                    results[("blackbox", n)] = bench_blackbox(args, work, n, tp.pid, urls, interval_ms, timeout_ms)
                except (RuntimeError, OSError) as e:
                    results["errors"].append(f"blackbox N={n}: {e}")
                    log(f"blackbox N={n} failed: {e}")
        if "history" in stages:
            try:
                results["history"] = bench_history(args, work, ports)
            except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
                results["errors"].append(f"history: {e}")
                log(f"history failed: {e}")
        if "storm" in stages:
            try:
                results["storm"] = bench_storm(args, work, ports)
            except (RuntimeError, OSError) as e:
                results["errors"].append(f"storm: {e}")
                log(f"storm failed: {e}")
        if "render" in stages:
            try:
                results["render"] = run_example("render_10k", 10_000)
            except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
                results["errors"].append(f"render: {e}")
    finally:
        stop_all()
        shutil.rmtree(work, ignore_errors=True)
    text = report(args, results, load_start, loadavg(), started)
    print(text)
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, f"results-{started:%Y%m%d-%H%M%S}.md")
    with open(path, "w") as f:
        f.write(text + "\n")
    log(f"results written to {path}")


if __name__ == "__main__":
    main()
