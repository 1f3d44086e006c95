#!/usr/bin/env python
"""Load test of the REST API: N concurrent clients submit diagnostic jobs and poll them.

Starts its own stack on loopback (a Redis of its own, migrate, gunicorn, one Celery worker; SQLite in
a fresh folder unless ``--database-url``), creates an admin API user, then runs ``--clients`` threads
for ``--duration`` seconds. Each client: ``POST /api/v1/diagnostics/`` (use_model false, no delay),
then ``GET /api/v1/jobs/<id>/`` every ``--poll-interval`` s until the job is done, then again.

Prints the error count (any exception, any status other than 202/200, any job not ``succeeded``),
p50/p95/p99 latency of submit and of poll, request and job throughput, submit-to-done latency; the
last line is one JSON object. Exit status 1 if there was any error.

    .venv/bin/python benchmarks/load/api_load.py                       # 50 clients, 60 s, SQLite
    .venv/bin/python benchmarks/load/api_load.py --database-url postgres://postgres@127.0.0.1:5432/bench_load
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/, for stack.py
from stack import ROOT, Stack, percentile  # noqa: E402

QUEUES = "default,finance,medical,manufacturing,maintenance"
TERMINAL = {"succeeded", "failed", "needs_review"}


class Recorder:
    def __init__(self):
        self.lock = threading.Lock()
        self.submit: list[float] = []
        self.poll: list[float] = []
        self.done_latency: list[float] = []
        self.errors: Counter = Counter()
        self.error_samples: list[str] = []
        self.statuses: Counter = Counter()
        self.submitted: list[str] = []
        self.unfinished: set[str] = set()

    def error(self, kind: str, detail: str) -> None:
        with self.lock:
            self.errors[kind] += 1
            if len(self.error_samples) < 10:
                self.error_samples.append(f"{kind}: {detail[:300]}")


def client_loop(base: str, token: str, deadline: float, poll_interval: float, rec: Recorder,
                index: int) -> None:
    http = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60)
    n = 0
    try:
        while time.monotonic() < deadline:
            n += 1
            started = time.monotonic()
            try:
                response = http.post("/api/v1/diagnostics/", json={"prompt": f"load {index}-{n}",
                                                                  "delay_seconds": 0, "use_model": False})
            except httpx.HTTPError as exc:
                rec.error("submit_exception", f"{type(exc).__name__}: {exc}")
                continue
            elapsed = time.monotonic() - started
            if response.status_code != 202:
                rec.error(f"submit_{response.status_code}", response.text)
                continue
            job_id = response.json()["id"]
            with rec.lock:
                rec.submit.append(elapsed)
                rec.submitted.append(job_id)
                rec.unfinished.add(job_id)
            while True:
                time.sleep(poll_interval)
                if time.monotonic() >= deadline:
                    return  # left for the drain phase
                t0 = time.monotonic()
                try:
                    poll = http.get(f"/api/v1/jobs/{job_id}/")
                except httpx.HTTPError as exc:
                    rec.error("poll_exception", f"{type(exc).__name__}: {exc}")
                    continue
                with rec.lock:
                    rec.poll.append(time.monotonic() - t0)
                if poll.status_code != 200:
                    rec.error(f"poll_{poll.status_code}", poll.text)
                    continue
                status = poll.json()["status"]
                if status in TERMINAL:
                    with rec.lock:
                        rec.statuses[status] += 1
                        rec.unfinished.discard(job_id)
                        rec.done_latency.append(time.monotonic() - started)
                    if status != "succeeded":
                        rec.error(f"job_{status}", json.dumps(poll.json().get("error")))
                    break
    finally:
        http.close()


def drain(base: str, token: str, rec: Recorder, timeout: float) -> None:
    """After the run: every job still open must finish (succeeded) within ``timeout``."""
    http = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60)
    deadline = time.monotonic() + timeout
    while rec.unfinished and time.monotonic() < deadline:
        for job_id in list(rec.unfinished):
            data = http.get(f"/api/v1/jobs/{job_id}/").json()
            if data["status"] in TERMINAL:
                rec.unfinished.discard(job_id)
                rec.statuses[data["status"]] += 1
                if data["status"] != "succeeded":
                    rec.error(f"job_{data['status']}", json.dumps(data.get("error")))
        time.sleep(0.5)
    for job_id in rec.unfinished:
        rec.error("job_unfinished", job_id)
    http.close()


def ms(values: list[float], q: float) -> float:
    return round(1000 * percentile(values, q), 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--poll-interval", type=float, default=0.5)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--web-threads", type=int, default=8)
    parser.add_argument("--worker-concurrency", type=int, default=2)
    parser.add_argument("--drain-timeout", type=float, default=60.0)
    args = parser.parse_args(argv)

    run_dir = ROOT / "var" / "bench-load" / time.strftime("%Y%m%d-%H%M%S")
    # All 50 clients share one token here, so the per-caller submission limit (API_SUBMIT_RATE) is off:
    # this measures the platform's capacity, not the limit (tested in
    # platform/core/tests/test_api_throttle.py).
    stack = Stack(run_dir, database_url=args.database_url,
                  extra_env={"DEBUG": "false", "API_SUBMIT_RATE": "off"})
    t0 = time.monotonic()
    token = stack.prepare(roles="admin", username="load-bench")
    base = stack.start_web("gunicorn", workers=args.web_workers, threads=args.web_threads)
    stack.start_worker(queues=QUEUES, concurrency=args.worker_concurrency)
    print(f"stack up in {time.monotonic() - t0:.0f}s ({stack.env['DATABASE_URL'].split(':')[0]}, "
          f"logs in {run_dir})", flush=True)

    # Warm up (gunicorn imports views lazily per process): not measured.
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60) as warm:
        for _ in range(2 * args.web_workers):
            warm.get("/api/v1/me/").raise_for_status()
            warm.post("/api/v1/diagnostics/", json={"use_model": False}).raise_for_status()
            warm.get("/api/v1/jobs/").raise_for_status()

    rec = Recorder()
    started = time.monotonic()
    deadline = started + args.duration
    threads = [threading.Thread(target=client_loop, args=(base, token, deadline, args.poll_interval, rec, i),
                                daemon=True) for i in range(args.clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=args.duration + 120)
    wall = time.monotonic() - started
    drain(base, token, rec, args.drain_timeout)
    alive = stack.alive()
    stack.stop_all()

    requests = len(rec.submit) + len(rec.poll) + sum(rec.errors.values())
    figures = {
        "clients": args.clients, "duration_s": round(wall, 1),
        "database": stack.env["DATABASE_URL"].split(":")[0],
        "web": f"gunicorn {args.web_workers}x{args.web_threads} threads",
        "worker_concurrency": args.worker_concurrency,
        "errors": sum(rec.errors.values()), "error_kinds": dict(rec.errors),
        "jobs_submitted": len(rec.submitted), "jobs_succeeded": rec.statuses.get("succeeded", 0),
        "requests": requests, "requests_per_s": round(requests / wall, 1),
        "jobs_per_s": round(len(rec.submitted) / wall, 2),
        "submit_ms": {"p50": ms(rec.submit, 50), "p95": ms(rec.submit, 95), "p99": ms(rec.submit, 99),
                      "max": ms(rec.submit, 100)},
        "poll_ms": {"p50": ms(rec.poll, 50), "p95": ms(rec.poll, 95), "p99": ms(rec.poll, 99),
                    "max": ms(rec.poll, 100)},
        "submit_to_done_s": {"p50": round(percentile(rec.done_latency, 50), 2),
                             "p95": round(percentile(rec.done_latency, 95), 2),
                             "mean": (round(statistics.fmean(rec.done_latency), 2)
                                      if rec.done_latency else None)},
        "processes_alive_at_end": alive,
    }
    print(f"\n{args.clients} clients for {wall:.0f}s against {base}")
    print(f"  errors: {figures['errors']} {'(zero: OK)' if not figures['errors'] else rec.error_samples}")
    print(f"  jobs: {figures['jobs_submitted']} submitted, {figures['jobs_succeeded']} succeeded "
          f"({figures['jobs_per_s']}/s); requests: {requests} ({figures['requests_per_s']}/s)")
    print(f"  submit latency ms: {figures['submit_ms']}")
    print(f"  poll latency ms:   {figures['poll_ms']}")
    print(f"  submit-to-done s:  {figures['submit_to_done_s']}")
    print(json.dumps(figures))
    ok = (not figures["errors"] and all(alive.values())
          and figures["jobs_succeeded"] == figures["jobs_submitted"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
