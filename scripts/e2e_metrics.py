#!/usr/bin/env python3
"""Read the gateway's /metrics with Prometheus' own Python parser (prometheus_client) and check that
the counters move: requests, tokens and credits per client key, a retry after a throttle.

Starts the fake Kiro (`examples/fake_kiro`, with a share of faulty replies so that retries happen)
and the gateway on loopback, sends a few requests with two client keys, scrapes /metrics and
parses it with `prometheus_client.parser.text_string_to_metric_families` (which refuses malformed
exposition text). Exits 0 when every check holds.

    pip install prometheus_client
    scripts/e2e_metrics.py [--gateway-bin PATH] [--fake-bin PATH]
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ADMIN = "e2e-metrics-admin-key"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(url, key, body=None):
    req = urllib.request.Request(url, data=json.dumps(body).encode() if body else None)
    req.add_header("authorization", f"Bearer {key}")
    req.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def samples(text):
    """{(name, frozenset(labels)): value} for every sample."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def total(found, name, **labels):
    want = set(labels.items())
    return sum(v for (n, ls), v in found.items() if n == name and want <= ls)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    p.add_argument("--gateway-bin", default=os.path.join(target, "debug", "kiro-gateway"))
    p.add_argument("--fake-bin", default=os.path.join(target, "debug", "examples", "fake_kiro"))
    args = p.parse_args()
    if not (os.path.exists(args.gateway_bin) and os.path.exists(args.fake_bin)):
        subprocess.run(["cargo", "build", "-q", "--bin", "kiro-gateway", "--example", "fake_kiro"],
                       cwd=ROOT, check=True)

    work = tempfile.mkdtemp(prefix="kgw-e2e-metrics-")
    keys = os.path.join(work, "keys.json")
    with open(keys, "w") as f:
        json.dump([{"name": "alice", "key": "alice-e2e-key-01"},
                   {"name": "bob", "key": "bob-e2e-key-0001"}], f)
    fake_port, gw_port = free_port(), free_port()
    procs = []
    try:
        procs.append(subprocess.Popen(
            [args.fake_bin, "--port", str(fake_port), "--faults", "25", "--seed", "11"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        fake = f"http://127.0.0.1:{fake_port}"
        env = {"PATH": os.environ.get("PATH", ""), "HOME": work, "PROXY_API_KEY": ADMIN,
               "PROXY_API_KEYS_FILE": keys, "SERVER_HOST": "127.0.0.1", "SERVER_PORT": str(gw_port),
               "KIRO_API_URL": fake, "KIRO_MANAGEMENT_URL": fake, "KIRO_DESKTOP_AUTH_URL": f"{fake}/refreshToken",
               "REFRESH_TOKEN": "e2e-refresh-token", "STATE_DIR": os.path.join(work, "state"),
               "KIRO_IDE_VERSION": "off", "BASE_RETRY_DELAY": "0.01"}
        procs.append(subprocess.Popen([args.gateway_bin], env=env, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))
        gw = f"http://127.0.0.1:{gw_port}"
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{gw}/health", timeout=1)
                break
            except OSError:
                time.sleep(0.1)

        status, _ = call(f"{gw}/metrics", "wrong-key")
        assert status == 401, f"/metrics with a wrong key: {status}"
        chat = {"model": "claude-sonnet-4.5", "messages": [{"role": "user", "content": "Hi"}]}
        answered = {"alice": 0, "bob": 0}
        for i in range(12):
            who, key = ("alice", "alice-e2e-key-01") if i % 3 else ("bob", "bob-e2e-key-0001")
            status, _ = call(f"{gw}/v1/chat/completions", key, chat)
            answered[who] += status == 200

        # A request is counted just after its answer left: wait for the last one.
        deadline = time.time() + 10
        while True:
            status, text = call(f"{gw}/metrics", ADMIN)
            assert status == 200, f"/metrics: {status}"
            found = samples(text)
            counted = total(found, "kiro_gateway_requests_total", route="/v1/chat/completions")
            if counted >= 12 or time.time() > deadline:
                break
            time.sleep(0.1)

        checks = [
            ("12 chat requests counted", counted == 12),
            ("the 200s match what the clients got",
             total(found, "kiro_gateway_requests_total", route="/v1/chat/completions", status="200")
             == sum(answered.values())),
            ("alice was charged credits", total(found, "kiro_gateway_credits_total", key="alice") > 0),
            ("bob was charged credits", total(found, "kiro_gateway_credits_total", key="bob") > 0),
            ("input tokens counted", total(found, "kiro_gateway_input_tokens_total") > 0),
            ("retries counted (the fake throttles and fails some replies)",
             total(found, "kiro_gateway_upstream_retries_total") > 0),
            ("more attempts than requests",
             total(found, "kiro_gateway_upstream_attempts_total") > counted),
            ("the token refresh counted", total(found, "kiro_gateway_token_refreshes_total", outcome="success") >= 1),
            ("the duration histogram: +Inf bucket equals the count",
             total(found, "kiro_gateway_request_duration_seconds_bucket", le="+Inf")
             == total(found, "kiro_gateway_request_duration_seconds_count")),
            ("no key in any label", not any("e2e-key" in v for (_, ls) in found for _, v in ls)),
        ]
        failed = [name for name, ok in checks if not ok]
        for name, ok in checks:
            print(f"{'PASS' if ok else 'FAIL'}  {name}")
        return 1 if failed else 0
    finally:
        for p_ in procs:
            p_.terminate()
            p_.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
