"""SIGKILL the Celery worker in the middle of a 100-row finance batch, start a new one: 100 of 100
finish, none twice. Real worker processes, the real scorecard (LLM off so the rows are quick), the
sweeper (``core.services.jobs_sweep``, what beat runs) re-sending what the dead worker held."""
from __future__ import annotations

import csv
import io
import time

import pytest

from apps.finance.tests import conftest as finance_fixtures
from conftest import wait_for

from .conftest import record_figures

credit_model = finance_fixtures.credit_model  # the finance app's fixture: an active scorecard

pytestmark = [pytest.mark.live, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ROWS = 100
FAST = {"LLM_ENABLED": "false", "JOB_SOFT_TIME_LIMIT": "8", "JOB_TIME_LIMIT": "10", "JOB_LEASE_SECONDS": "12"}
DONE = ("succeeded", "needs_review")


def _batch_csv() -> bytes:
    from apps.finance.tests.conftest import shared_csv_text

    with io.StringIO(shared_csv_text()) as fh:
        reader = csv.DictReader(fh)
        columns = [c for c in reader.fieldnames if c != "creditability"]
        rows = [next(reader) for _ in range(ROWS)]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["application_id", *columns], extrasaction="ignore")
    writer.writeheader()
    for n, row in enumerate(rows):
        writer.writerow({"application_id": f"K-{n:03d}", **row})
    return out.getvalue().encode()


def test_sigkill_worker_mid_batch_loses_nothing(worker_factory, make_user, credit_model, settings):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from apps.finance.models import Assessment
    from apps.finance.services import batch_create
    from core import services
    from core.models import JobAttempt

    settings.LLM_ENABLED = False
    settings.JOB_REQUEUE_AFTER = 10  # the sweeper re-sends queued jobs whose message the dead worker held
    user = make_user("killer", "finance")
    first = worker_factory(queues="finance", concurrency=2, env=FAST, name="kill1").start()
    started = time.monotonic()
    batch = batch_create(owner=user, upload=SimpleUploadedFile("k.csv", _batch_csv(), "text/csv"))

    def done_count():
        return Assessment.objects.filter(batch=batch, status__in=DONE).count()

    def running_count():
        return Assessment.objects.filter(batch=batch, status="running").count()

    def counts():
        from django.db.models import Count

        rows = Assessment.objects.filter(batch=batch).values("status").annotate(n=Count("id"))
        return {r["status"]: r["n"] for r in rows}

    # Kill while a row is being worked on (not between rows): SIGKILL the moment one is seen running.
    last_sweep = [time.monotonic()]

    def mid_row():
        if time.monotonic() - last_sweep[0] > 2:  # as beat would: a message lost on the way is sent again
            services.jobs_sweep()
            last_sweep[0] = time.monotonic()
        c = counts()
        if sum(c.get(s, 0) for s in DONE) >= ROWS:
            raise AssertionError("the batch finished before a row was caught mid-run")
        return sum(c.get(s, 0) for s in DONE) >= 5 and c.get("running", 0) > 0

    wait_for(mid_row, timeout=60, interval=0.002, message="5 rows done and one running")
    first.kill()
    at_kill = done_count()
    running_at_kill = running_count()  # rows the dead worker held mid-run: only the lease brings them back
    assert Assessment.objects.filter(batch=batch).count() == ROWS
    assert at_kill < ROWS, "the batch finished before the kill: nothing was tested"
    assert running_at_kill >= 1, "no row was mid-run when the worker died"

    second = worker_factory(queues="finance", concurrency=2, env=FAST, name="kill2").start()
    sweeps = {"requeued": 0}

    def all_done():
        n = done_count()
        if n < ROWS:
            stats = services.jobs_sweep()
            sweeps["requeued"] += stats["requeued"]
        return n == ROWS

    wait_for(all_done, timeout=60, interval=1.0, message=f"all {ROWS} rows to finish")
    elapsed = round(time.monotonic() - started, 1)
    time.sleep(1.5)  # late duplicate deliveries (sweeper re-sends) would show up as extra attempts now

    jobs = list(Assessment.objects.filter(batch=batch))
    assert len(jobs) == ROWS and all(j.status in DONE for j in jobs), {j.status for j in jobs}
    twice, attempts_total, abandoned = [], 0, 0
    for job in jobs:
        outcomes = list(JobAttempt.objects.filter(job_id=job.pk).order_by("number")
                        .values_list("outcome", flat=True))
        attempts_total += len(outcomes)
        abandoned += outcomes.count("abandoned") + outcomes.count("running")
        finished = [o for o in outcomes if o in DONE]
        if len(finished) != 1 or outcomes[-1] not in DONE:
            twice.append((job.application_id, outcomes))
        assert job.attempts == len(outcomes), (job.application_id, job.attempts, outcomes)
    assert not twice, twice
    assert abandoned >= running_at_kill  # the interrupted attempts are on record
    assert second.proc.poll() is None
    record_figures("finance_batch_sigkill", {
        "rows": ROWS, "done_at_kill": at_kill, "running_at_kill": running_at_kill, "final_done": ROWS,
        "attempts": attempts_total, "interrupted_attempts": abandoned, "sweeper_requeued": sweeps["requeued"],
        "seconds": elapsed,
    })
