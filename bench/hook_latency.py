#!/usr/bin/env python3
"""Ack path latency: a signed PagerDuty v3 `incident.acknowledged` hook, from
the request to (1) sentinel's answer and (2) the acknowledgement showing in
`/metrics` (`sentinel_incident_acknowledgements_total{source="pagerduty"}`).

Usage: bench/hook_latency.py [--binary target/release/sentinel] [-n 100]

Everything runs on 127.0.0.1 in a temp dir: a target that always answers 503
(so the service has an open incident), sentinel with `inbound.pagerduty`,
and this script as PagerDuty. Each round waits for an open incident, sends
one signed ack, polls `/metrics` until the counter moved, then resolves the
incident by hand so the next round gets a new one. Prints p50/p99/max in ms.
Timings only: nothing here is a test.
"""

import argparse
import hashlib
import hmac
import http.server
import json
import os
import re
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

SECRET = b"bench-pagerduty-secret"
TOKEN = "bench-token"


class Down(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        try:
            self.send_response(503)
            self.send_header("Content-Length", "4")
            self.end_headers()
            self.wfile.write(b"down")
        except OSError:
            pass  # the probe timed out and closed first

    def log_message(self, *args):
        pass


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--binary", default="target/release/sentinel")
    ap.add_argument("-n", type=int, default=100, help="acknowledgements to time")
    args = ap.parse_args()
    if not os.access(args.binary, os.X_OK):
        sys.exit(f"{args.binary} not found: build it with `cargo build --release`")

    target = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Down)
    threading.Thread(target=target.serve_forever, daemon=True).start()
    tmp = tempfile.mkdtemp(prefix="sentinel-hookbench-")
    cfg = os.path.join(tmp, "sentinel.yaml")
    with open(cfg, "w") as f:
        f.write(
            f"""server:
  listen: 127.0.0.1:0
  api_token_env: BENCH_TOKEN
storage:
  path: {tmp}/state.db
inbound:
  pagerduty: {{ secret_env: BENCH_PD_SECRET }}
services:
  - name: portal
    checks:
      - name: health
        interval: 100ms
        timeout: 90ms
        http: {{ url: "http://127.0.0.1:{target.server_address[1]}/health" }}
    incident: {{ open_after: 2, resolve_after: 2, severity: P2 }}
"""
        )
    env = dict(os.environ, BENCH_TOKEN=TOKEN, BENCH_PD_SECRET=SECRET.decode())
    d = subprocess.Popen(
        [args.binary, "run", "-c", cfg], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        base = None
        for line in d.stderr:
            m = re.search(r"127\.0\.0\.1:(\d+)", line)
            if m and "listen" in line:
                base = f"http://127.0.0.1:{m.group(1)}"
                break
        if base is None:
            sys.exit("sentinel exited before it listened")
        threading.Thread(target=lambda: [None for _ in d.stderr], daemon=True).start()

        def get(path):
            return urllib.request.urlopen(base + path, timeout=10).read().decode()

        def post(path, body, headers):
            r = urllib.request.Request(base + path, data=body, headers=headers, method="POST")
            return urllib.request.urlopen(r, timeout=10).read()

        counter = re.compile(
            r'sentinel_incident_acknowledgements_total\{service="portal",'
            r'severity="P2",source="pagerduty"\} (\S+)'
        )
        answered, visible = [], []
        for i in range(args.n):
            deadline = time.monotonic() + 30
            while True:
                incs = json.loads(get("/api/v1/incidents"))["incidents"]
                if incs:
                    inc = incs[0]
                    break
                if time.monotonic() > deadline:
                    sys.exit("no incident opened within 30 s")
                time.sleep(0.02)
            body = json.dumps(
                {
                    "event": {
                        "id": f"bench-{i}",
                        "event_type": "incident.acknowledged",
                        "resource_type": "incident",
                        "occurred_at": "2026-12-01T00:00:00Z",
                        "agent": {"type": "user_reference", "summary": "Alice"},
                        "data": {"incident_key": inc["dedup_key"]},
                    }
                }
            ).encode()
            sig = "v1=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()
            t0 = time.perf_counter()
            post(
                "/api/v1/hooks/pagerduty",
                body,
                {"X-PagerDuty-Signature": sig, "Content-Type": "application/json"},
            )
            t1 = time.perf_counter()
            while True:
                m = counter.search(get("/metrics"))
                if m and float(m.group(1)) >= i + 1:
                    break
                if time.perf_counter() - t0 > 30:
                    sys.exit("acknowledgement not visible in /metrics within 30 s")
            t2 = time.perf_counter()
            answered.append((t1 - t0) * 1000)
            visible.append((t2 - t0) * 1000)
            post(
                f"/api/v1/incidents/{inc['id']}/resolve",
                b"",
                {"Authorization": f"Bearer {TOKEN}"},
            )
        print(
            f"n={args.n} hook answered: p50 {pct(answered, 50):.2f} ms, "
            f"p99 {pct(answered, 99):.2f} ms, max {max(answered):.2f} ms; "
            f"ack in /metrics: p50 {pct(visible, 50):.2f} ms, "
            f"p99 {pct(visible, 99):.2f} ms, max {max(visible):.2f} ms"
        )
    finally:
        d.terminate()
        d.wait()
        target.shutdown()


if __name__ == "__main__":
    main()
