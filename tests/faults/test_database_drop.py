"""PostgreSQL drops the worker's connections (``pg_terminate_backend``) in the middle of a job.

Real parts: PostgreSQL, a Celery worker, the diagnostic job. The job in flight must not be left in
limbo: it either fails cleanly with an error code and message, or is run again (its lease expires
and the sweeper re-sends it) to one result. The worker survives, reconnects, and new jobs succeed.
"""
from __future__ import annotations

import time

import pytest

from conftest import wait_for

from .conftest import record_figures

pytestmark = [pytest.mark.live, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

FAST = {"JOB_SOFT_TIME_LIMIT": "8", "JOB_TIME_LIMIT": "10", "JOB_LEASE_SECONDS": "12",
        "JOB_MAX_ATTEMPTS": "5", "LLM_ENABLED": "false"}
TERMINAL = ("succeeded", "failed", "needs_review")


def _terminate_other_backends(cursor) -> int:
    cursor.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
    )
    return sum(1 for (ok,) in cursor.fetchall() if ok)


def test_database_connection_drop_mid_job_then_recovery(worker_factory, make_user):
    from django.db import connection
    from django.utils import timezone

    from core import services
    from core.models import DiagnosticJob, JobAttempt

    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (DATABASE_URL=postgres://...): pg_terminate_backend drops a server "
                    "connection; SQLite is a file opened in-process, there is no connection to drop")

    user = make_user("ops", "admin")
    worker = worker_factory(env=FAST, concurrency=1, name="dbdrop").start()

    # Celery's Django fix-up closes the worker's connection before and after every task, so a
    # connection dropped between jobs is never used again; what matters is a drop in the middle of one.
    # The job writes its progress every 0.5 s: drop its connection half way.
    job = services.diagnostic_job_create(owner=user, delay_seconds=4, use_model=False)
    wait_for(lambda: DiagnosticJob.objects.get(pk=job.pk).progress > 0, timeout=60,
             message="the job to start")
    with connection.cursor() as cursor:
        dropped = _terminate_other_backends(cursor)
    dropped_at = time.monotonic()
    assert dropped >= 1, "the worker's connection should have been there to drop"

    def settled():
        row = DiagnosticJob.objects.get(pk=job.pk)
        if row.status in TERMINAL:
            return row
        if row.status == "running" and row.lease_expires_at and row.lease_expires_at < timezone.now():
            services.jobs_sweep()  # what beat does every JOB_SWEEP_INTERVAL
        return None

    row = wait_for(settled, timeout=60, interval=0.5, message="the interrupted job to settle")
    settled_s = round(time.monotonic() - dropped_at, 1)
    attempts = list(JobAttempt.objects.filter(job_id=job.pk).order_by("number"))
    outcomes = [a.outcome for a in attempts]
    if row.status == "failed":  # a clean failure: says why
        assert row.error_code and row.error_message, (row.error_code, row.error_message)
    else:
        assert row.status == "succeeded", (row.status, row.error_code, row.error_message)
        assert outcomes.count("succeeded") == 1 and outcomes[-1] == "succeeded", outcomes
    assert row.attempts == len(attempts), (row.attempts, outcomes)
    assert "running" not in outcomes, outcomes

    # The worker survived and new work succeeds.
    assert worker.proc.poll() is None
    after = services.diagnostic_job_create(owner=user, use_model=False)
    wait_for(lambda: DiagnosticJob.objects.get(pk=after.pk).status in TERMINAL, timeout=60,
             message="a new job")
    assert DiagnosticJob.objects.get(pk=after.pk).status == "succeeded"

    record_figures("database_drop", {
        "connections_dropped": dropped, "interrupted_job_status": row.status,
        "interrupted_job_error_code": row.error_code, "attempt_outcomes": outcomes,
        "settled_after_s": settled_s, "worker_log_tracebacks": worker.log().count("Traceback"),
    })
    # The cleaner path: the interrupted attempt is recorded as a retry with its reason and the job runs
    # again at once, instead of crashing (internal_error in the log) and waiting for its lease to run
    # out (JOB_LEASE_SECONDS: 7 minutes by default). Needs core.services.job_execute to treat
    # OperationalError/InterfaceError as transient (see docs/reliability.md).
    first = attempts[0]
    if not (first.outcome == "retry" and first.error_code == "database_unavailable"):
        pytest.xfail(f"the dropped connection was not retried at once (first attempt: {first.outcome!r}, "
                     f"{first.error_code!r}); recovered only through the lease and the sweeper")
    assert settled_s < int(FAST["JOB_LEASE_SECONDS"])
