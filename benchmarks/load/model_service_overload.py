#!/usr/bin/env python
"""Overload the model service at four times its queue limit, then check it recovers.

Starts ``python -m model_service`` (the embedded model) with a small admission queue
(``--max-queue 4 --max-batch-size 2`` by default, response cache off so every request reaches the
engine), then keeps ``4 x max_queue`` clients sending chat requests for ``--duration`` seconds; a
rejected client tries again after 0.1 s (not honouring Retry-After, to keep the pressure on).

Passes when: every answer is 200 or 503; every 503 carries a whole-number ``Retry-After`` >= 1 and
the ``queue_full`` error; no connection error; the process is alive; the 503s match the server's
``requests_rejected`` metric; afterwards a normal request succeeds and ``/health`` is 200. The last
line is one JSON object; exit status 1 on any failure.

    .venv/bin/python benchmarks/load/model_service_overload.py
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/, for stack.py
from stack import ROOT, Stack, percentile  # noqa: E402

KEY = "overload-bench-key"


def chat(http: httpx.Client, text: str, max_tokens: int) -> httpx.Response:
    return http.post("/chat/completions", json={
        "messages": [{"role": "user", "content": text}], "max_tokens": max_tokens, "temperature": 0.0})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-queue", type=int, default=4)
    parser.add_argument("--max-batch-size", type=int, default=2)
    parser.add_argument("--factor", type=int, default=4, help="concurrent clients = factor x max-queue")
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--max-tokens", type=int, default=32)
    args = parser.parse_args(argv)

    run_dir = ROOT / "var" / "bench-load" / f"overload-{time.strftime('%Y%m%d-%H%M%S')}"
    stack = Stack(run_dir, model_key=KEY)  # only the model service: no Redis, no database
    base = stack.model_url
    headers = {"Authorization": f"Bearer {KEY}"}
    failures: list[str] = []
    try:
        stack.start_model(["--max-queue", str(args.max_queue), "--max-batch-size", str(args.max_batch_size)])
        proc = stack.procs["model"]
        http = httpx.Client(base_url=f"{base}/v1", headers=headers, timeout=300)
        t = time.monotonic()
        first = chat(http, "Say OK.", args.max_tokens)
        single_s = time.monotonic() - t
        if first.status_code != 200:
            failures.append(f"unloaded request answered {first.status_code}: {first.text[:200]}")

        clients = args.factor * args.max_queue
        results: list[tuple[int, str | None, str, float]] = []
        exceptions: list[str] = []
        lock = threading.Lock()
        deadline = time.monotonic() + args.duration

        def client(index: int) -> None:
            own = httpx.Client(base_url=f"{base}/v1", headers=headers, timeout=300)
            n = 0
            while time.monotonic() < deadline:
                n += 1
                t0 = time.monotonic()
                try:
                    response = chat(own, f"Client {index}, request {n}: name a colour.", args.max_tokens)
                except httpx.HTTPError as exc:
                    with lock:
                        exceptions.append(f"{type(exc).__name__}: {exc}")
                    time.sleep(0.5)
                    continue
                code = ""
                if response.status_code != 200:
                    try:
                        code = response.json()["error"].get("code") or ""
                    except (ValueError, KeyError, AttributeError):
                        code = "?"
                with lock:
                    results.append((response.status_code, response.headers.get("retry-after"), str(code),
                                    time.monotonic() - t0))
                if response.status_code != 200:
                    time.sleep(0.1)
            own.close()

        started = time.monotonic()
        threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=args.duration + 300)
        overload_s = time.monotonic() - started

        statuses = Counter(status for status, *_ in results)
        rejected = [r for r in results if r[0] == 503]
        bad_retry_after = [r for r in rejected if not (r[1] and r[1].isdigit() and int(r[1]) >= 1)]
        bad_code = [r for r in rejected if r[2] != "queue_full"]
        other = {s: n for s, n in statuses.items() if s not in (200, 503)}
        if other:
            failures.append(f"statuses other than 200/503: {other}")
        if not rejected:
            failures.append("no 503 at all: the queue limit was never reached")
        if bad_retry_after:
            failures.append(f"{len(bad_retry_after)} 503s without a valid Retry-After")
        if bad_code:
            failures.append(f"{len(bad_code)} 503s without the queue_full code")
        if exceptions:
            failures.append(f"{len(exceptions)} connection errors, e.g. {exceptions[0]}")
        if proc.poll() is not None:
            failures.append(f"the model service died (exit {proc.returncode})")

        # Recovery: the queue drains; a normal request succeeds.
        t = time.monotonic()
        recovered = None
        while time.monotonic() - t < 120 and proc.poll() is None:
            response = chat(http, "Say OK.", args.max_tokens)
            if response.status_code == 200:
                recovered = time.monotonic() - t
                break
            if response.status_code != 503:
                failures.append(f"after the overload a request answered {response.status_code}")
                break
            time.sleep(float(response.headers.get("retry-after", "1")))
        if recovered is None:
            failures.append("no successful request within 120 s after the overload")
        health = httpx.get(f"{base}/health", headers=headers, timeout=5)
        if health.status_code != 200:
            failures.append(f"/health answered {health.status_code} after the overload")
        metrics = httpx.get(f"{base}/metrics", timeout=5).text
        match = re.search(r"^model_service:requests_rejected(?:_total)?(?:\{[^}]*\})? ([0-9.e+]+)$",
                          metrics, re.M)
        metric_rejected = int(float(match.group(1))) if match else None
        if metric_rejected is not None and metric_rejected != len(rejected):
            failures.append(f"metric requests_rejected={metric_rejected} "
                            f"but clients saw {len(rejected)} 503s")
        ok_latency = [r[3] for r in results if r[0] == 200]
        rej_latency = [r[3] for r in results if r[0] == 503]
        retry_after_values = Counter(r[1] for r in rejected)
    finally:
        stack.stop_all()

    figures = {
        "max_queue": args.max_queue, "max_batch_size": args.max_batch_size, "clients": clients,
        "duration_s": round(overload_s, 1), "requests": len(results), "status_counts": dict(statuses),
        "rejected_share": round(len(rejected) / max(1, len(results)), 3),
        "retry_after_values": dict(retry_after_values), "connection_errors": len(exceptions),
        "metric_requests_rejected": metric_rejected,
        "ok_latency_s": {"p50": round(percentile(ok_latency, 50), 2),
                         "p95": round(percentile(ok_latency, 95), 2)},
        "rejection_latency_ms": {"p50": round(1000 * percentile(rej_latency, 50), 1),
                                 "p95": round(1000 * percentile(rej_latency, 95), 1)},
        "unloaded_request_s": round(single_s, 2),
        "recovered_after_s": None if recovered is None else round(recovered, 2),
        "failures": failures,
    }
    print(f"\n{clients} clients ({args.factor}x --max-queue {args.max_queue}, "
          f"--max-batch-size {args.max_batch_size}) for {overload_s:.0f}s")
    print(f"  answers: {dict(statuses)}; Retry-After values: {dict(retry_after_values)}; "
          f"connection errors: {len(exceptions)}")
    print(f"  200 latency p50/p95: {figures['ok_latency_s']} s; "
          f"503 latency p50/p95: {figures['rejection_latency_ms']} ms")
    print(f"  recovery: a normal request succeeded {figures['recovered_after_s']} s after the overload; "
          f"metric requests_rejected={metric_rejected}")
    print("  PASS" if not failures else f"  FAIL: {failures}")
    print(json.dumps(figures))
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
