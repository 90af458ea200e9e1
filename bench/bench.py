#!/usr/bin/env python3
"""sentinel's shipped benchmark (driven by bench/run.sh after a release build).

Stages, each bounded in time, all on 127.0.0.1:
  probe     the cost-per-probe table: sentinel probing nginx (a real web server,
            on --ports loopback ports) at each of --rates probes/s (1 000 checks
            at 1 000/s, 10 000 checks above), --runs times each, round-robin so
            a burst of load elsewhere on the machine spreads over every rate;
            CPU user and system apart (utime, stime from /proc/PID/stat), peak
            RSS (VmHWM), good-run ratio and start lag from sentinel's /metrics.
  blackbox  the anchor: blackbox_exporter scraped by Prometheus at --blackbox-rate
            against the same nginx, the same number of runs, in the same round.
  history   10 000 checks with 30 days of stored history: start-up to /readyz,
            steady-state RSS, store size; per-run cost of EngineState::on_run.
  storm     1 000 services failing at once: time until every incident is open
            and every webhook event delivered to a local receiver; peak outbox depth.
  render    /metrics render for 10 000 checks in-process (examples/render_10k).

Every process started here is recorded in $BENCH_PIDFILE (run.sh kills them on
exit) and asked to die with this process (PR_SET_PDEATHSIG) as a second guard.
Figures are printed, never asserted: this is a benchmark, not a test.
"""

import argparse
import ctypes
import datetime
import glob
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

# The targets from issues #2, #3 and #12; (label, predicate on the figure).
TARGETS = {
    "cpu_1k": ("≤ 123 CPU-ms per 1 000 probes at 1 000/s, and ≤ 1/10 of the anchor", lambda v: v <= 123.0),
    "sustain": ("≥ 99 % good runs at 15 000/s", lambda v: v >= 0.99),
    "lag_p99": ("< 10 ms at 10 000 checks below saturation", lambda v: v < 10.0),
    "render": ("< 100 ms", lambda v: v < 100.0),
    "ready": ("< 5 s", lambda v: v < 5.0),
    "rss_check": ("≤ 20 KiB/check", lambda v: v <= 20.0),
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
    record_pid(p.pid)
    return p


def record_pid(pid):
    """Adds `pid` to $BENCH_PIDFILE, which run.sh kills on exit."""
    pidfile = os.environ.get("BENCH_PIDFILE")
    if pidfile:
        # pid and start time, so the shell's clean-up never hits a recycled pid.
        try:
            with open(f"/proc/{pid}/stat") as st:
                start = st.read().rsplit(")", 1)[1].split()[19]
        except (OSError, IndexError):
            start = "?"
        with open(pidfile, "a") as f:
            f.write(f"{pid} {start}\n")


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


def cpu_split(pid):
    """(utime, stime) of every thread of `pid`, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    fields = stat[stat.rindex(")") + 2:].split()
    # Fields 14 and 15 of proc(5); `fields` starts at field 3 (state).
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def cpu_seconds(pid):
    """utime + stime of every thread of `pid`, in seconds."""
    u, s = cpu_split(pid)
    return u + s


def children_of(pid):
    """Pids whose parent is `pid` (nginx's workers)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
        except OSError:
            continue
        if int(st[st.rindex(")") + 2:].split()[1]) == pid:
            out.append(int(d))
    return out


def group_cpu(pids):
    """(user, system) seconds summed over `pids`; a pid that is gone counts 0."""
    u = s = 0.0
    for p in pids:
        try:
            a, b = cpu_split(p)
        except OSError:
            continue
        u += a
        s += b
    return u, s


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
                  max_concurrency=None, per_service=10, worker_threads=None):
    """N HTTP checks, 10 per service, each service with an SLO as a real team would have."""
    mc = max_concurrency or max(1024, n)
    out = [
        "# generated by bench/bench.py",
        "server:",
        f"  listen: {listen}",
        f"  max_concurrency: {mc}",
        *([f"  worker_threads: {worker_threads}"] if worker_threads else []),
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


NGINX_CONF = """# generated by bench/bench.py: the probe target, `200 ok` on every path
worker_processes {workers};
pid {d}/nginx.pid;
error_log {d}/error.log error;
events {{ worker_connections 65536; }}
http {{
  access_log off;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  server {{
{listens}
    location / {{ default_type text/plain; return 200 "ok"; }}
  }}
}}
"""


class Target:
    """nginx on `ports` loopback ports: the master and its workers."""

    def __init__(self, args, work):
        d = tempfile.mkdtemp(prefix="nginx-", dir=work)
        ports = [free_port() for _ in range(args.ports)]
        listens = "\n".join(f"    listen 127.0.0.1:{p} reuseport backlog=4096;" for p in ports)
        conf = os.path.join(d, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(workers=args.nginx_workers, d=d, listens=listens))
        self.proc = spawn([args.nginx, "-c", conf, "-p", d, "-e", os.path.join(d, "error.log"),
                           "-g", "daemon off; master_process on;"],
                          stderr=open(os.path.join(d, "stderr.log"), "w"))
        self.addrs = [f"127.0.0.1:{p}" for p in ports]
        for a in self.addrs:
            if not wait_http_ok(f"http://{a}/ready", 20, self.proc):
                raise RuntimeError(f"nginx did not answer on {a}")
        # The workers are nginx's children, not ours: recorded so run.sh's
        # clean-up finds them even if the master dies first.
        self.workers = children_of(self.proc.pid)
        for w in self.workers:
            record_pid(w)
        log(f"nginx ({len(self.workers)} workers) on {' '.join(self.addrs)}")

    def close(self):
        """SIGTERM to the master (it stops its workers), then SIGKILL any worker left."""
        stop(self.proc, grace=10.0)
        for w in self.workers:
            try:
                with open(f"/proc/{w}/stat") as f:
                    if "(nginx)" not in f.read():
                        continue  # gone, and the pid already reused
                os.kill(w, signal.SIGKILL)
            except OSError:
                pass

    def pids(self):
        return [self.proc.pid, *self.workers]


class Measure:
    """CPU (user, system apart) of named pid groups between two instants."""

    def __init__(self, groups):
        self.groups = groups
        self.t0 = time.monotonic()
        self.cpu0 = {k: group_cpu(p) for k, p in groups.items()}

    def finish(self):
        elapsed = time.monotonic() - self.t0
        cpu = {}
        for k, p in self.groups.items():
            u, s = group_cpu(p)
            cpu[k] = (u - self.cpu0[k][0], s - self.cpu0[k][1])
        return elapsed, cpu


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


CHECKS = None  # --checks: the same N at every rate


def checks_for(rate):
    """1 000 checks at up to 1 000 probes/s, 10 000 above (interval = N / rate),
    unless --checks sets N."""
    if CHECKS:
        return CHECKS
    return 1000 if rate <= 1000 else 10_000


def plan(rate):
    n = checks_for(rate)
    interval_ms = max(1, round(n * 1000 / rate))
    return n, interval_ms, min(interval_ms, 1000)


def bench_sentinel(args, work, rate, target):
    n, interval_ms, timeout_ms = plan(rate)
    urls = target_urls(n, target.addrs)
    d = tempfile.mkdtemp(prefix=f"sentinel-{rate}-", dir=work)
    cfg = os.path.join(d, "sentinel.yaml")
    with open(cfg, "w") as f:
        f.write(sentinel_yaml(n, urls, interval_ms, timeout_ms, os.path.join(d, "state.db"),
                              worker_threads=args.worker_threads))
    log_path = os.path.join(d, "sentinel.log")
    env = dict(os.environ, RUST_LOG="info")
    for kv in args.env:
        k, _, v = kv.partition("=")
        env[k] = v
    load1 = float(loadavg().split()[0])
    with open(log_path, "w") as lf:
        p = spawn([args.sentinel, "run", "-c", cfg], stderr=lf, env=env)
    listen = parse_listen(log_path, p)
    base = f"http://{listen}"
    if not wait_http_ok(base + "/readyz", 60, p):
        raise RuntimeError("sentinel never became ready")
    time.sleep(args.warmup)
    groups = {"sentinel": [p.pid], "target": target.pids()}

    def snap():
        # The counters are read at some instant inside the scrape: take time
        # and CPU at its midpoint so runs and CPU cover the same interval.
        ta, ca = time.monotonic(), {k: group_cpu(v) for k, v in groups.items()}
        _, body = http_get(base + "/metrics", timeout=120)
        tb, cb = time.monotonic(), {k: group_cpu(v) for k, v in groups.items()}
        mid = {k: ((ca[k][0] + cb[k][0]) / 2, (ca[k][1] + cb[k][1]) / 2) for k in groups}
        return body.decode(), (ta + tb) / 2, mid

    m0, t0, cpu0 = snap()
    rec = None
    if args.perf:
        # A CPU profile of the measured window (perf's own cost lands in
        # sentinel's CPU figure: compare profiled runs with each other only).
        os.makedirs(args.perf, exist_ok=True)
        data = os.path.join(os.path.abspath(args.perf), f"perf-{rate}-{len(glob.glob(os.path.join(args.perf, f'perf-{rate}-*.data'))) + 1}.data")
        rec = spawn(["perf", "record", "-q", "-g", "-F", "499", "-p", str(p.pid), "-o", data],
                    stderr=subprocess.DEVNULL)
    time.sleep(args.duration)
    m1, t1, cpu1 = snap()
    elapsed = t1 - t0
    if rec is not None:
        rec.send_signal(signal.SIGINT)
        try:
            rec.wait(timeout=60)
        except subprocess.TimeoutExpired:
            rec.kill()
        log(f"profile written to {data} (perf report -i {data} --no-children)")

    def delta(name, flt=None):
        return metric_sum(m1, name, flt) - metric_sum(m0, name, flt)

    runs = delta("sentinel_check_runs_total")
    good = delta("sentinel_check_runs_total", 'result="good"')
    skipped = delta("sentinel_check_skipped_total")
    local = delta("sentinel_check_local_errors_total")
    reasons = {}
    for r in set(re.findall(r'sentinel_check_failures_total\{[^}]*reason="([a-z_]+)"', m1)):
        v = delta("sentinel_check_failures_total", f'reason="{r}"')
        if v > 0:
            reasons[r] = int(v)
    su = cpu1["sentinel"][0] - cpu0["sentinel"][0]
    ss = cpu1["sentinel"][1] - cpu0["sentinel"][1]
    tu = cpu1["target"][0] - cpu0["target"][0]
    ts = cpu1["target"][1] - cpu0["target"][1]
    mem = mem_kib(p.pid)
    t = time.monotonic()
    http_get(base + "/metrics", timeout=120)
    render_ms = (time.monotonic() - t) * 1e3
    stop(p)
    due = runs + skipped + local
    res = {
        "rate": runs / elapsed,
        "good_ratio": good / due if due else float("nan"),
        "runs": runs,
        "skipped": skipped,
        "local": local,
        "reasons": reasons,
        "user_ms": su * 1e6 / runs if runs else float("nan"),
        "sys_ms": ss * 1e6 / runs if runs else float("nan"),
        "cpu_ms": (su + ss) * 1e6 / runs if runs else float("nan"),
        "cores": (su + ss) / elapsed,
        "target_ms": (tu + ts) * 1e6 / runs if runs else float("nan"),
        "hwm_mib": mem.get("VmHWM", 0) / 1024,
        "lag_p99_ms": metric_sum(m1, "sentinel_scheduler_start_lag_seconds", 'quantile="0.99"') * 1e3,
        "lag_p50_ms": metric_sum(m1, "sentinel_scheduler_start_lag_seconds", 'quantile="0.5"') * 1e3,
        "render_ms": render_ms,
        "load1": load1,
        "n": n,
    }
    log(f"sentinel {rate}/s ({n} checks): {res['rate']:.0f}/s, good {res['good_ratio']:.4f}, "
        f"{res['cpu_ms']:.0f} CPU-ms/1000 (user {res['user_ms']:.0f}, sys {res['sys_ms']:.0f}), "
        f"lag p99 {res['lag_p99_ms']:.1f} ms, load {load1}")
    return res


def bench_blackbox(args, work, rate, target):
    n, interval_ms, timeout_ms = plan(rate)
    urls = target_urls(n, target.addrs)
    d = tempfile.mkdtemp(prefix=f"blackbox-{rate}-", dir=work)
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
    load1 = float(loadavg().split()[0])
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
    # Prometheus hands discovered targets to its scrape loops in batches
    # every 5 s: the warm-up starts once every target has been scraped,
    # or the first seconds of the window would miss scrapes that simply
    # had not begun.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            q = urllib.parse.quote('count(up{job="blackbox"})')
            _, body = http_get(f"{pbase}/api/v1/query?query={q}", timeout=10)
            res = json.loads(body)["data"]["result"]
            if res and float(res[0]["value"][1]) >= n:
                break
        except (OSError, ValueError, KeyError, IndexError):
            pass
        time.sleep(0.5)
    else:
        log(f"not every one of the {n} targets was scraped within 30 s; measuring anyway")
    time.sleep(args.warmup)

    m = Measure({"blackbox": [bbe.pid], "prometheus": [prom.pid], "target": target.pids()})
    time.sleep(args.duration)
    t1 = time.time()
    elapsed, cpu = m.finish()
    mem = {"blackbox": mem_kib(bbe.pid), "prometheus": mem_kib(prom.pid)}
    # Every scrape is one probe and writes one `up` sample stamped with its
    # start, so counting samples over the window counts the probes run in it.
    # A scrape that started just before t1 is written only when it ends:
    # wait one interval + timeout before counting, or the window's last
    # second is missing from the count.
    time.sleep((interval_ms + timeout_ms) / 1000 + 0.5)
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
    offered = rate_window * n * 1000 / interval_ms
    u = cpu["blackbox"][0] + cpu["prometheus"][0]
    s = cpu["blackbox"][1] + cpu["prometheus"][1]
    per = (lambda x: x * 1e6 / scrapes) if scrapes == scrapes and scrapes else (lambda x: float("nan"))
    res = {
        "rate": scrapes / rate_window,
        # Of the probes that were due: the window's edges can hold a scrape
        # more than `offered`, never count a ratio above 1 from that.
        "good_ratio": good / max(offered, scrapes) if offered else float("nan"),
        "runs": scrapes,
        "user_ms": per(u),
        "sys_ms": per(s),
        "cpu_ms": per(u + s),
        "bbe_ms": per(sum(cpu["blackbox"])),
        "prom_ms": per(sum(cpu["prometheus"])),
        "cores": (u + s) / elapsed,
        "target_ms": per(sum(cpu["target"])),
        "hwm_mib": (mem["blackbox"].get("VmHWM", 0) + mem["prometheus"].get("VmHWM", 0)) / 1024,
        "lag_p99_ms": float("nan"),
        "load1": load1,
        "n": n,
    }
    log(f"blackbox {rate}/s ({n} targets): {res['rate']:.0f}/s, good {res['good_ratio']:.4f}, "
        f"{res['cpu_ms']:.0f} CPU-ms/1000 (bbe {res['bbe_ms']:.0f}, prom {res['prom_ms']:.0f}), load {load1}")
    return res


def run_example(name, *argv, timeout=900):
    out = subprocess.run([os.path.join(RELEASE, "examples", name), *map(str, argv)],
                         capture_output=True, text=True, timeout=timeout, preexec_fn=_die_with_parent)
    if out.returncode != 0:
        raise RuntimeError(f"{name} failed ({out.returncode}): {out.stderr[-2000:]}")
    line = out.stdout.strip().splitlines()[-1]
    return dict(kv.split("=", 1) for kv in line.split())


def bench_history(args, work, target_ports):
    n = 10_000
    interval_ms = max(1, round(n * 1000 / args.history_rate))
    timeout_ms = min(interval_ms, 1000)
    d = tempfile.mkdtemp(prefix="history-", dir=work)
    cfg = os.path.join(d, "sentinel.yaml")
    with open(cfg, "w") as f:
        f.write(sentinel_yaml(n, target_urls(n, target_ports), interval_ms, timeout_ms,
                              os.path.join(d, "state.db")))
    log(f"generating {args.history_days} days of history for {n} checks")
    gen = run_example("bench_history", cfg, args.history_days)
    log(f"history: {gen}")
    rec = run_example("bench_record", cfg, args.record_runs, args.history_rate)
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


def spread(values, digits=0, scale=1.0):
    """`median (min–max)` of the finite values, or n/a."""
    vs = sorted(v * scale for v in values if v is not None and v == v)
    if not vs:
        return "n/a"
    med = statistics.median(vs)
    if len(vs) == 1:
        return f"{med:,.{digits}f}"
    return f"{med:,.{digits}f} ({vs[0]:,.{digits}f}–{vs[-1]:,.{digits}f})"


def med(values):
    vs = [v for v in values if v is not None and v == v]
    return statistics.median(vs) if vs else float("nan")


def probe_table(args, results):
    """The cost-per-probe table: one row per (tool, rate), figures as median (min–max)."""
    L = []
    L.append(f"## Cost per probe: {args.runs} runs each, median (min–max)")
    L.append("")
    L.append("| tool | offered probes/s (checks × interval) | achieved probes/s | good runs | "
             "CPU-ms per 1 000 probes: user + system = total | cores busy | peak RSS, MiB | "
             "start lag p99, ms | nginx CPU-ms per 1 000 | load avg (1 min) |")
    L.append("|---|---|---|---|---|---|---|---|---|---|")
    rows = [("blackbox", r) for r in args.blackbox_rates] + [("sentinel", r) for r in args.rates]
    rows.sort(key=lambda k: (k[1], k[0] != "sentinel"))
    for tool, rate in rows:
        rs = results.get((tool, rate)) or []
        if not rs:
            continue
        n, interval_ms, _ = plan(rate)
        name = "sentinel" if tool == "sentinel" else "blackbox_exporter + Prometheus"
        col = lambda k: [r.get(k) for r in rs]  # noqa: E731
        cpu = (f"{spread(col('user_ms'))} + {spread(col('sys_ms'))} = **{spread(col('cpu_ms'))}**")
        if tool == "blackbox":
            cpu += f" (exporter {spread(col('bbe_ms'))}, Prometheus {spread(col('prom_ms'))})"
        L.append(f"| {name} | {rate:,} ({n:,} × {interval_ms} ms) | {spread(col('rate'))} | "
                 f"{spread(col('good_ratio'), 2, 100.0)} % | {cpu} | {spread(col('cores'), 2)} | "
                 f"{spread(col('hwm_mib'), 1)} | {spread(col('lag_p99_ms'), 1)} | "
                 f"{spread(col('target_ms'))} | {spread(col('load1'), 2)} |")
    L.append("")
    # The targets, from the medians.
    L.append("| target | figure (median) | result |")
    L.append("|---|---|---|")
    s1 = results.get(("sentinel", 1000)) or []
    b1 = results.get(("blackbox", 1000)) or []
    if s1:
        c = med([r["cpu_ms"] for r in s1])
        anchor = med([r["cpu_ms"] for r in b1]) if b1 else float("nan")
        ok = c <= 123.0 and (anchor != anchor or c <= anchor / 10)
        L.append(f"| {TARGETS['cpu_1k'][0]} | {c:,.0f} CPU-ms (anchor {fmt(anchor, 0)}, "
                 f"ratio {ratio(anchor, c)}) | {'pass' if ok else '**miss**'} |")
    s15 = results.get(("sentinel", 15000)) or []
    if s15:
        g = med([r["good_ratio"] for r in s15])
        a = med([r["rate"] for r in s15])
        ok = g >= 0.99 and a >= 15000 * 0.98
        L.append(f"| {TARGETS['sustain'][0]} | {a:,.0f}/s achieved, {g * 100:.2f} % good | "
                 f"{'pass' if ok else '**miss**'} |")
    for rate in args.rates:
        rs = results.get(("sentinel", rate)) or []
        if not rs or checks_for(rate) < 10_000:
            continue
        lag = med([r["lag_p99_ms"] for r in rs])
        L.append(f"| start lag p99 < 10 ms, {checks_for(rate):,} checks at {rate:,}/s | {lag:,.1f} ms | "
                 f"{'pass' if lag < 10 else '**miss**'} |")
    L.append("")
    bad = []
    for tool, rate in rows:
        for i, r in enumerate(results.get((tool, rate)) or []):
            if r.get("reasons") or r.get("skipped") or r.get("local"):
                why = ", ".join(f"{k} {v:,}" for k, v in r.get("reasons", {}).items()) or "none"
                bad.append(f"- {tool} {rate:,}/s run {i + 1}: bad runs by reason: {why}; "
                           f"skipped {int(r.get('skipped', 0)):,}; local errors {int(r.get('local', 0)):,}")
    if bad:
        L.append("Runs that were not good:")
        L.append("")
        L.extend(bad)
        L.append("")
    return L


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
    L.append(f"- each probing run: {args.warmup:g}s warm-up, then {args.duration:g}s measured; "
             f"target: nginx ({args.nginx_workers} workers) on {args.ports} loopback ports, sharing the "
             "cores with the tool under test; sentinel and blackbox_exporter + Prometheus run one "
             "after the other, never together")
    L.append("- CPU is utime + stime of the tool's processes (blackbox_exporter and Prometheus summed) "
             "over the measured window, divided by the probes run in it; good runs = good / due "
             "(runs + skipped + local errors); start lag p99 is sentinel's own summary since start")
    L.append("")
    L.extend(probe_table(args, results))
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


def ints(text):
    return [int(x) for x in text.split(",") if x]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rates", default="1000,5000,10000,15000,20000",
                    help="sentinel's offered probes/s (default 1000,5000,10000,15000,20000)")
    ap.add_argument("--blackbox-rates", default="1000",
                    help="blackbox_exporter + Prometheus offered probes/s (default 1000)")
    ap.add_argument("--runs", type=int, help="runs of each (tool, rate) (default 3, --quick 1)")
    ap.add_argument("--duration", type=float, help="measured seconds per run (default 20, --quick 10)")
    ap.add_argument("--warmup", type=float,
                    help="seconds after /readyz before measuring (default 5, --quick 3)")
    ap.add_argument("--checks", type=int,
                    help="checks per row at every rate (default 1 000 up to 1 000/s, 10 000 above); "
                         "e.g. --checks 100000 --rates 2000 for a fleet of 100 000 checks")
    ap.add_argument("--ports", type=int, default=8, help="loopback ports nginx listens on (default 8)")
    ap.add_argument("--nginx-workers", type=int, default=2, help="nginx worker processes (default 2)")
    ap.add_argument("--stages", default="probe,blackbox",
                    help="subset of probe,blackbox,history,storm,render (default probe,blackbox)")
    ap.add_argument("--storm-services", type=int, default=1000)
    ap.add_argument("--storm-timeout", type=float, default=120)
    ap.add_argument("--history-days", type=int, default=30)
    ap.add_argument("--history-rate", type=int, default=5000, help="probes/s of the history stage")
    ap.add_argument("--record-runs", type=int, default=1_000_000)
    ap.add_argument("--steady", type=float, default=30, help="seconds of probing before steady-state RSS")
    ap.add_argument("--sentinel", default=os.path.join(RELEASE, "sentinel"),
                    help="the binary of the probe stage (default: the release build)")
    ap.add_argument("--quick", action="store_true",
                    help="one run of each, 10 s measured after 3 s warm-up: a look, not the table")
    ap.add_argument("--perf", metavar="DIR",
                    help="`perf record -g` each sentinel run's measured window into DIR/perf-RATE-RUN.data")
    ap.add_argument("--worker-threads", type=int,
                    help="server.worker_threads of the probe stage (default: unset, sentinel derives it)")
    ap.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                    help="extra environment for sentinel (repeatable), e.g. TOKIO_WORKER_THREADS=1")
    ap.add_argument("--nginx", default="/usr/sbin/nginx")
    ap.add_argument("--blackbox", default="/usr/bin/prometheus-blackbox-exporter")
    ap.add_argument("--prometheus", default="/usr/bin/prometheus")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "out"))
    ap.add_argument("--command", default=" ".join(sys.argv), help=argparse.SUPPRESS)
    args = ap.parse_args()
    global CHECKS
    CHECKS = args.checks
    # --quick changes the defaults only: an explicit --runs/--duration/--warmup wins.
    for k, full, quick in (("runs", 3, 1), ("duration", 20.0, 10.0), ("warmup", 5.0, 3.0)):
        if getattr(args, k) is None:
            setattr(args, k, quick if args.quick else full)
    args.rates = ints(args.rates)
    args.blackbox_rates = ints(args.blackbox_rates)
    stages = set(args.stages.split(","))
    if "probe" not in stages:
        args.rates = []
    if "blackbox" not in stages:
        args.blackbox_rates = []

    def on_signal(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    started = datetime.datetime.now(datetime.timezone.utc)
    load_start = loadavg()
    work = tempfile.mkdtemp(prefix="sentinel-bench-")
    results = {"errors": []}
    target = None
    try:
        if args.rates or args.blackbox_rates:
            target = Target(args, work)
            # Round-robin: run i of every (tool, rate) before run i + 1 of any,
            # so a burst of load elsewhere hits one run of several rows rather
            # than every run of one row.
            order = [("blackbox", r) for r in args.blackbox_rates] + [("sentinel", r) for r in args.rates]
            for i in range(args.runs):
                for tool, rate in order:
                    log(f"run {i + 1}/{args.runs}: {tool} at {rate:,}/s")
                    try:
                        fn = bench_sentinel if tool == "sentinel" else bench_blackbox
                        results.setdefault((tool, rate), []).append(fn(args, work, rate, target))
                    except (RuntimeError, OSError) as e:
                        results["errors"].append(f"{tool} {rate}/s run {i + 1}: {e}")
                        log(f"{tool} {rate}/s failed: {e}")
        if stages & {"history", "storm"}:
            tp = spawn([os.path.join(RELEASE, "examples", "bench_target"), str(args.ports)],
                       stdout=subprocess.PIPE)
            line = tp.stdout.readline().decode().split()
            if not line or line[0] != "listening":
                raise RuntimeError("bench_target did not start")
            ports = line[1:]
            log(f"bench_target on {' '.join(ports)}")
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
        if target is not None:
            target.close()
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
