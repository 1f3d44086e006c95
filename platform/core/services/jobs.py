"""Jobs: enqueue, execute one delivery under a lease (claim, run, store or retry), report progress.

The database row is the source of truth; the Celery message carries only its id. See
:func:`job_execute` for the guarantees (one stored result however often a message is delivered).
"""
from __future__ import annotations

import logging
import socket
import time
import uuid
from datetime import timedelta

from celery import current_app
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.module_loading import import_string

from core.jobs import AwaitLLM, JobOutcome, PermanentJobError, TransientJobError
from core.model_client import ModelServiceError, PermanentModelError, TransientModelError
from core.models import Batch, Job, JobAttempt, JobStatus

logger = logging.getLogger(__name__)

#: The task that runs the language-model part of a job handed on with :class:`core.jobs.AwaitLLM`.
CONTINUE_TASK = "core.job_continue"


def job_enqueue(*, job: Job) -> None:
    """Send the job's id to its queue once the current transaction commits: a job handed on to the
    language-model pool (``Job.stage`` set) goes to ``core.job_continue`` (queue ``llm``)."""
    type(job).objects.filter(pk=job.pk).update(enqueued_at=timezone.now())
    if job.stage:
        task_name, args = CONTINUE_TASK, [job.job_type, str(job.pk)]
    else:
        task_name, args = job.task_name, [str(job.pk)]

    def _send() -> None:
        task = current_app.tasks.get(task_name)
        try:
            if task is not None:
                task.apply_async(args=args)
            else:
                current_app.send_task(task_name, args=args)
        except Exception:  # broker down: the sweeper sends it again later; the row is safe
            logger.exception("could not enqueue %s %s; the sweeper will retry", task_name, args[-1])

    transaction.on_commit(_send)


def jobs_enqueue(*, jobs: list[Job]) -> None:
    """Send many new jobs' ids to their queue once the transaction commits (one update, one hook)."""
    if not jobs:
        return
    model = type(jobs[0])
    model.objects.filter(pk__in=[job.pk for job in jobs]).update(enqueued_at=timezone.now())
    ids = [str(job.pk) for job in jobs]
    task_name = model.task_name

    def _send() -> None:
        task = current_app.tasks.get(task_name)
        for job_id in ids:
            try:
                if task is not None:
                    task.apply_async(args=[job_id])
                else:
                    current_app.send_task(task_name, args=[job_id])
            except Exception:  # broker down: the sweeper re-sends queued jobs later
                logger.exception("could not enqueue %s %s; the sweeper will retry", task_name, job_id)
                return

    transaction.on_commit(_send)


def job_execute(*, model: type[Job], job_id: str, handler=None, worker: str = "") -> str:
    """Run one delivery of a job message. Returns the final status, "deferred" or "skipped".

    1. Claim: atomically move the job to ``running`` with a fresh lease, if it is queued or its
       previous lease has expired (its worker died). Otherwise another delivery owns it or it is
       done: skip. Without a ``handler`` (the language-model pool) only jobs handed on are claimed.
    2. Run ``handler(job)`` outside any transaction (it may call the model service); for a job handed
       on (``Job.stage`` set), run its stored ``finish(job, state)`` instead.
    3. Store: in one transaction, only if our lease still stands, run ``outcome.apply`` and write the
       result. An :class:`AwaitLLM` answer hands the job on instead: back to ``queued`` with its stage,
       sent to the language-model pool. A transient error puts the job back to ``queued`` (its stage
       kept) and re-raises for a Celery retry.
    """
    worker = worker or socket.gethostname()
    now = timezone.now()
    token = uuid.uuid4()
    claimable = Q(status=JobStatus.QUEUED) | Q(status=JobStatus.RUNNING, lease_expires_at__lt=now)
    if handler is None:
        claimable &= Q(stage__isnull=False)
    # The claim and its attempt row in one transaction: a worker killed between the two must not leave
    # ``attempts`` counted with no JobAttempt on record (found by tests/faults/test_finance_batch_sigkill.py).
    with transaction.atomic():
        claimed = model.objects.filter(pk=job_id).filter(claimable).update(
            status=JobStatus.RUNNING, started_at=now, lease_token=token,
            lease_expires_at=now + timedelta(seconds=settings.JOB_LEASE_SECONDS),
            attempts=F("attempts") + 1, progress_message="",
        )
        if not claimed:
            logger.info("job %s %s not claimable (done or owned by another worker); skipping",
                        model.job_type, job_id)
            return "skipped"
        job = model.objects.get(pk=job_id)
        JobAttempt.objects.filter(job_id=job.pk, outcome=JobAttempt.Outcome.RUNNING).update(
            outcome=JobAttempt.Outcome.ABANDONED, finished_at=now
        )
        attempt = JobAttempt.objects.create(
            job_type=model.job_type, job_id=job.pk, number=job.attempts, lease_token=token,
            worker=worker[:200]
        )
    stage = job.stage or None
    if stage:
        def run(job):
            return import_string(stage["finish"])(job, stage.get("state") or {})
    elif handler is not None:
        run = handler
        type(job).objects.filter(pk=job.pk, lease_token=token).update(progress=0.0)
    else:  # pragma: no cover - the claim above only takes staged jobs without a handler
        return "skipped"
    started = time.monotonic()
    try:
        outcome = run(job)
    except (TransientJobError, TransientModelError) as exc:
        code = getattr(exc, "code", "transient_error")
        # The retry window runs from the job's first transient failure, not from its submission: an item
        # that waited long behind a big batch (or in the language-model pool's queue) still gets it all.
        first = (JobAttempt.objects.filter(job_type=model.job_type, job_id=job.pk,
                                           outcome=JobAttempt.Outcome.RETRY)
                 .order_by("finished_at").values_list("finished_at", flat=True).first())
        waited = (timezone.now() - first).total_seconds() if first else 0.0
        if waited >= settings.JOB_RETRY_WINDOW:
            _job_fail(model, job, token, attempt, code,
                      f"gave up after {job.attempts} attempts over {waited:.0f}s: {exc}")
            return JobStatus.FAILED
        _job_requeue(model, job, token, attempt, code, str(exc))
        raise TransientJobError(str(exc), code=code) from exc
    except (OperationalError, InterfaceError) as exc:
        # The database connection dropped under the job: reconnect and put it back for a retry; if
        # the database is still away, the lease expires and the sweeper sends it again.
        connection.close()
        try:
            _job_requeue(model, job, token, attempt, "database_unavailable", f"{type(exc).__name__}: {exc}")
        except (OperationalError, InterfaceError):
            connection.close()
            logger.warning("job %s %s: database still unavailable; the sweeper will retry",
                           model.job_type, job.pk)
        raise TransientJobError(f"database connection lost: {exc}", code="database_unavailable") from exc
    except (PermanentJobError, PermanentModelError) as exc:
        _job_fail(model, job, token, attempt, getattr(exc, "code", "invalid_input"), str(exc))
        return JobStatus.FAILED
    except ModelServiceError as exc:
        _job_fail(model, job, token, attempt, exc.code, str(exc))
        return JobStatus.FAILED
    except Exception as exc:  # a bug: fail this job alone, keep the message, log the traceback
        from celery.exceptions import SoftTimeLimitExceeded

        if isinstance(exc, SoftTimeLimitExceeded):
            _job_fail(model, job, token, attempt, "timeout",
                      f"the job ran past its time limit of {settings.JOB_SOFT_TIME_LIMIT}s")
            return JobStatus.FAILED
        logger.exception("job %s %s crashed", model.job_type, job.pk)
        _job_fail(model, job, token, attempt, "internal_error", f"{type(exc).__name__}: {exc}")
        return JobStatus.FAILED
    elapsed = round(time.monotonic() - started, 3)
    if isinstance(outcome, AwaitLLM):
        return _job_hand_on(model, job, token, attempt, outcome, elapsed)
    if stage:
        outcome.timings = {**(stage.get("timings") or {}), **outcome.timings}
        outcome.timings["total_s"] = round(float(stage.get("elapsed_s") or 0) + elapsed, 3)
    outcome.timings.setdefault("total_s", elapsed)
    return _job_store(model, job, token, attempt, outcome)


def job_run_inline(*, model: type[Job], job_id, handler, worker: str = "inline", wait: float = 120.0) -> str:
    """Run every part of one job in this process (tests, management commands): the handler, then the
    language-model part if the handler handed it on. Returns the job's final status. If a worker took
    a part first, wait up to ``wait`` seconds for it to finish."""
    status = job_execute(model=model, job_id=str(job_id), handler=handler, worker=worker)
    while status == "deferred":
        status = job_execute(model=model, job_id=str(job_id), worker=worker)
    if status == "skipped":
        deadline = time.monotonic() + wait
        row = model.objects.get(pk=job_id)
        while not row.is_terminal and time.monotonic() < deadline:
            time.sleep(0.2)
            row = model.objects.get(pk=job_id)
        status = row.status
    return status


def _row_under_lease(model, job, token, attempt, now):
    """The job's row, locked, while this delivery still holds its lease (inside a transaction); None, with
    the attempt marked superseded, when another delivery took the job over."""
    row = model.objects.select_for_update().filter(pk=job.pk, lease_token=token,
                                                   status=JobStatus.RUNNING).first()
    if row is None:
        JobAttempt.objects.filter(pk=attempt.pk).update(outcome=JobAttempt.Outcome.SUPERSEDED,
                                                        finished_at=now)
        logger.warning("job %s %s: lease lost before storing; result discarded", model.job_type, job.pk)
    return row


def _job_hand_on(model, job, token, attempt, wait: AwaitLLM, elapsed: float) -> str:
    """Store the CPU part's side effects and state; queue the job for the language-model pool."""
    now = timezone.now()
    with transaction.atomic():
        row = _row_under_lease(model, job, token, attempt, now)
        if row is None:
            return "skipped"
        if wait.apply is not None:
            wait.apply(row)
        row.stage = {"finish": wait.finish_path, "state": wait.state, "timings": wait.timings,
                     "elapsed_s": elapsed, "handed_on_at": now.isoformat()}
        row.status = JobStatus.QUEUED
        row.lease_token = None
        row.lease_expires_at = None
        row.progress_message = wait.message[:200]
        row.save()
        JobAttempt.objects.filter(pk=attempt.pk).update(outcome=JobAttempt.Outcome.HANDED_ON, finished_at=now)
        job_enqueue(job=row)
    return "deferred"


def _job_store(model, job, token, attempt, outcome: JobOutcome) -> str:
    now = timezone.now()
    with transaction.atomic():
        row = _row_under_lease(model, job, token, attempt, now)
        if row is None:
            return "skipped"
        if outcome.apply is not None:
            outcome.apply(row)
        row.status = outcome.status
        row.result = outcome.result
        row.progress = 1.0
        row.progress_message = ""
        row.finished_at = now
        row.lease_token = None
        row.lease_expires_at = None
        row.error_code = ""
        row.error_message = ""
        row.model_name = outcome.model_name[:200]
        row.model_version = outcome.model_version[:100]
        row.prompt_template = outcome.prompt_template[:200]
        row.prompt_version = outcome.prompt_version
        row.timings = outcome.timings
        row.stage = None
        for name, value in outcome.fields.items():
            setattr(row, name, value)
        row.save()
        JobAttempt.objects.filter(pk=attempt.pk).update(outcome=outcome.status, finished_at=now)
    batch_close_if_finished(row)
    return outcome.status


def _job_fail(model, job, token, attempt, code: str, message: str) -> None:
    now = timezone.now()
    updated = model.objects.filter(pk=job.pk, lease_token=token).update(
        status=JobStatus.FAILED, error_code=code[:64], error_message=message[:4000], finished_at=now,
        lease_token=None, lease_expires_at=None, progress_message="", stage=None,
    )
    JobAttempt.objects.filter(pk=attempt.pk).update(
        outcome=JobAttempt.Outcome.FAILED if updated else JobAttempt.Outcome.SUPERSEDED,
        error_code=code[:64], error_message=message[:4000], finished_at=now,
    )
    if updated:
        batch_close_if_finished(job)


def _job_requeue(model, job, token, attempt, code: str, message: str) -> None:
    now = timezone.now()
    model.objects.filter(pk=job.pk, lease_token=token).update(
        status=JobStatus.QUEUED, error_code=code[:64], error_message=message[:4000], lease_token=None,
        lease_expires_at=None, enqueued_at=now, progress_message="waiting to retry",
    )
    JobAttempt.objects.filter(pk=attempt.pk).update(
        outcome=JobAttempt.Outcome.RETRY, error_code=code[:64], error_message=message[:4000], finished_at=now
    )


def job_progress(*, job: Job, fraction: float, message: str = "") -> None:
    """Report progress while running (only while this worker holds the lease)."""
    type(job).objects.filter(pk=job.pk, lease_token=job.lease_token, status=JobStatus.RUNNING).update(
        progress=max(0.0, min(1.0, fraction)), progress_message=message[:200]
    )


def batch_close_if_finished(job: Job) -> None:
    """When an item finishes, close its batch if every item is done."""
    if not job.batch_id:
        return
    model = type(job)
    open_items = model.objects.filter(batch_id=job.batch_id).exclude(
        status__in=[JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.NEEDS_REVIEW]
    ).exists()
    if not open_items:
        Batch.objects.filter(pk=job.batch_id, status=Batch.Status.RUNNING).update(
            status=Batch.Status.DONE, finished_at=timezone.now()
        )
