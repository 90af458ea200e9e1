#!/usr/bin/env python3
"""What `kill -9` loses: sentinel against a local target, killed with SIGKILL
at random moments, restarted each time on the same state file.

The target (a stdlib HTTP server in this process, on 127.0.0.1) counts every
request it answered; after each kill the state file's stored run count is read
(read-only, python's sqlite3). Per kill, runs lost = runs the target served
since the previous kill − runs the store gained. A run served but not yet
recorded when the process died counts as lost, as it should: it happened
and left no trace.

Driven by bench/kill9.sh after a release build; stdlib only. Figures are
printed and written to bench/out/kill9-<date>.md, never asserted.
"""

import argparse
import ctypes
import datetime
import http.server
import os
import random
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SENTINEL = os.path.join(ROOT, "target", "release", "sentinel")


def log(msg):
    print(f"[kill9 {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Target(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.lock = threading.Lock()
        self.served = 0

    def handle_error(self, request, client_address):
        # A probe cut off by the kill: the answer was not delivered and is
        # not counted; nothing to report.
        pass


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's naming)
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        # Counted once the whole answer is written: what the probe could see.
        with self.server.lock:
            self.server.served += 1

    def log_message(self, *args):
        pass


def _die_with_parent():
    # PR_SET_PDEATHSIG = 1: the daemon gets SIGKILL if this script dies.
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)
    except OSError:
        pass


def config(work, port, checks, interval_ms):
    lines = [
        "server:",
        "  listen: 127.0.0.1:0",
        "storage:",
        f"  path: {work}/state.db",
        "services:",
        "  - name: kill9",
        "    checks:",
    ]
    for i in range(checks):
        lines += [
            f"      - name: c{i}",
            f"        interval: {interval_ms}ms",
            f"        timeout: {min(interval_ms, 1000)}ms",
            "        http:",
            f"          url: http://127.0.0.1:{port}/c{i}",
        ]
    lines += ["    slo: { objective: 99.9, window: 30d }"]
    path = os.path.join(work, "sentinel.yaml")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def stored_runs(db):
    if not os.path.exists(db):
        return 0
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        (n,) = conn.execute(
            "SELECT COALESCE(SUM(valid), 0) FROM buckets WHERE resolution = 0"
        ).fetchone()
        return n
    finally:
        conn.close()


def start(cfg, work, n):
    log_path = os.path.join(work, f"sentinel-{n}.log")
    err = open(log_path, "w")
    p = subprocess.Popen(
        [SENTINEL, "run", "-c", cfg],
        stdout=subprocess.DEVNULL,
        stderr=err,
        stdin=subprocess.DEVNULL,
        env=dict(os.environ, RUST_LOG="warn,sentinel=info"),
        preexec_fn=_die_with_parent,
    )
    err.close()
    end = time.monotonic() + 30
    listen = None
    while time.monotonic() < end and p.poll() is None:
        with open(log_path) as f:
            m = re.search(r"listen=(\d+\.\d+\.\d+\.\d+:\d+)", f.read())
        if m:
            listen = m.group(1)
            break
        time.sleep(0.02)
    if listen is None:
        p.kill()
        p.wait()
        raise RuntimeError(f"sentinel did not start; see {log_path}")
    while time.monotonic() < end:
        try:
            with urllib.request.urlopen(f"http://{listen}/readyz", timeout=2) as r:
                if r.status == 200:
                    return p
        except OSError:
            pass
        time.sleep(0.02)
    p.kill()
    p.wait()
    raise RuntimeError("sentinel never became ready")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--checks", type=int, default=10)
    ap.add_argument("--interval-ms", type=int, default=100)
    ap.add_argument("--min-up", type=float, default=1.0, help="shortest life before the kill, s")
    ap.add_argument("--max-up", type=float, default=4.0, help="longest life before the kill, s")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "out"))
    args = ap.parse_args()
    rng = random.Random(args.seed)
    rate = args.checks * 1000.0 / args.interval_ms

    target = Target()
    threading.Thread(target=target.serve_forever, daemon=True).start()
    work = tempfile.mkdtemp(prefix="sentinel-kill9-")
    cfg = config(work, target.server_address[1], args.checks, args.interval_ms)
    db = os.path.join(work, "state.db")
    log(f"{args.kills} kills, {args.checks} checks every {args.interval_ms} ms ({rate:.0f} runs/s), work dir {work}")

    losses, lives = [], []
    served_before, stored_before = 0, 0
    child = None
    try:
        for n in range(args.kills):
            child = start(cfg, work, n)
            life = rng.uniform(args.min_up, args.max_up)
            time.sleep(life)
            child.send_signal(signal.SIGKILL)
            child.wait()
            child = None
            # Let the target finish answering requests already in flight.
            time.sleep(0.3)
            with target.lock:
                served = target.served
            stored = stored_runs(db)
            lost = (served - served_before) - (stored - stored_before)
            losses.append(lost)
            lives.append(life)
            log(f"kill {n + 1:2}: after {life:.2f}s; served {served - served_before}, stored {stored - stored_before}, lost {lost}")
            served_before, stored_before = served, stored
    finally:
        if child is not None and child.poll() is None:
            child.kill()
            child.wait()
        target.shutdown()

    secs = [x / rate for x in losses]
    lines = [
        f"# kill -9 loss, {datetime.datetime.now().isoformat(timespec='seconds')}",
        "",
        f"- command: `bench/kill9.sh {' '.join(sys.argv[1:])}`".rstrip(),
        f"- {args.kills} SIGKILLs after {args.min_up}–{args.max_up} s of life each; "
        f"{args.checks} HTTP checks every {args.interval_ms} ms ({rate:.0f} runs/s) against a local target",
        f"- load average at end: {os.getloadavg()[0]:.2f}",
        "",
        "| runs lost per kill | mean | median | max | min |",
        "|---|---|---|---|---|",
        f"| runs | {statistics.mean(losses):.1f} | {statistics.median(losses):.0f} | {max(losses)} | {min(losses)} |",
        f"| seconds of runs | {statistics.mean(secs):.2f} | {statistics.median(secs):.2f} | {max(secs):.2f} | {min(secs):.2f} |",
        "",
        f"per kill: {', '.join(str(x) for x in losses)}",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    os.makedirs(args.out, exist_ok=True)
    out = os.path.join(args.out, f"kill9-{datetime.date.today().isoformat()}.md")
    with open(out, "w") as f:
        f.write(text)
    log(f"written to {out}")
    # The work dir holds one small SQLite file and the daemon logs.
    for name in os.listdir(work):
        os.remove(os.path.join(work, name))
    os.rmdir(work)


if __name__ == "__main__":
    main()
