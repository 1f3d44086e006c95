"""Platform writes: bootstrap, jobs (enqueue, execute, progress, sweep), batches, tokens, prompts."""
from __future__ import annotations

import hashlib
import logging
import secrets
import socket
import time
import uuid
from datetime import timedelta

from celery import current_app
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from core import registry
from core.jobs import JobOutcome, PermanentJobError, TransientJobError
from core.model_client import ModelServiceError, PermanentModelError, TransientModelError
from core.models import ApiToken, Batch, DiagnosticJob, Job, JobAttempt, JobStatus, PromptTemplate
from core.roles import roles_ensure

logger = logging.getLogger(__name__)


# --- bootstrap -----------------------------------------------------------------------------------
def platform_bootstrap(sender=None, **kwargs) -> None:
    """After migrate: the role groups and the prompt templates from the apps' files."""
    roles_ensure()
    prompt_templates_seed()


def prompt_templates_seed() -> dict[str, int]:
    """Create rows for template files not yet in the database. Existing versions are never changed;
    a file whose text differs from its stored version is reported (add a new version instead)."""
    from core.prompts import prompt_files

    created = unchanged = conflicts = 0
    for pf in prompt_files():
        existing = PromptTemplate.objects.filter(name=pf.name, version=pf.version, language=pf.language).first()
        if existing is None:
            PromptTemplate.objects.create(
                name=pf.name, version=pf.version, language=pf.language, body=pf.body,
                output_schema=pf.output_schema, description=pf.description, source=pf.source,
            )
            created += 1
        elif existing.body != pf.body or existing.output_schema != pf.output_schema:
            conflicts += 1
            logger.warning("prompt %s v%d (%s) changed on disk but versions are immutable: add v%d",
                           pf.name, pf.version, pf.language, pf.version + 1)
        else:
            unchanged += 1
    return {"created": created, "unchanged": unchanged, "conflicts": conflicts}


# --- jobs ------------------------------------------------------------------------------------------
def job_enqueue(*, job: Job) -> None:
    """Send the job's id to its queue once the current transaction commits."""
    task = current_app.tasks[job.task_name] if job.task_name in current_app.tasks else None
    type(job).objects.filter(pk=job.pk).update(enqueued_at=timezone.now())
    job_id = str(job.pk)
    task_name = job.task_name

    def _send() -> None:
        try:
            if task is not None:
                task.apply_async(args=[job_id])
            else:
                current_app.send_task(task_name, args=[job_id])
        except Exception:  # broker down: the sweeper sends it again later; the row is safe
            logger.exception("could not enqueue %s %s; the sweeper will retry", task_name, job_id)

    transaction.on_commit(_send)


def _job_type(model: type[Job]) -> str:
    return model.job_type


def job_execute(*, model: type[Job], job_id: str, handler, worker: str = "") -> str:
    """Run one delivery of a job message. Returns the final status, or "skipped".

    1. Claim: atomically move the job to ``running`` with a fresh lease, if it is queued or its
       previous lease has expired (its worker died). Otherwise another delivery owns it or it is
       done: skip.
    2. Run ``handler(job) -> JobOutcome`` outside any transaction (it may call the model service).
    3. Store: in one transaction, only if our lease still stands, run ``outcome.apply`` and write the
       result. A transient error puts the job back to ``queued`` and re-raises for a Celery retry.
    """
    worker = worker or socket.gethostname()
    now = timezone.now()
    token = uuid.uuid4()
    claimable = Q(status=JobStatus.QUEUED) | Q(status=JobStatus.RUNNING, lease_expires_at__lt=now)
    # The claim and its attempt row in one transaction: a worker killed between the two must not leave
    # ``attempts`` counted with no JobAttempt on record (found by tests/faults/test_finance_batch_sigkill.py).
    with transaction.atomic():
        claimed = model.objects.filter(pk=job_id).filter(claimable).update(
            status=JobStatus.RUNNING, started_at=now, lease_token=token,
            lease_expires_at=now + timedelta(seconds=settings.JOB_LEASE_SECONDS),
            attempts=F("attempts") + 1, progress=0.0, progress_message="",
        )
        if not claimed:
            logger.info("job %s %s not claimable (done or owned by another worker); skipping", model.job_type, job_id)
            return "skipped"
        job = model.objects.get(pk=job_id)
        JobAttempt.objects.filter(job_id=job.pk, outcome=JobAttempt.Outcome.RUNNING).update(
            outcome=JobAttempt.Outcome.ABANDONED, finished_at=now
        )
        attempt = JobAttempt.objects.create(
            job_type=model.job_type, job_id=job.pk, number=job.attempts, lease_token=token, worker=worker[:200]
        )
    started = time.monotonic()
    try:
        outcome = handler(job)
    except (TransientJobError, TransientModelError) as exc:
        code = getattr(exc, "code", "transient_error")
        waited = (timezone.now() - job.queued_at).total_seconds()
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
            logger.warning("job %s %s: database still unavailable; the sweeper will retry", model.job_type, job.pk)
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
    outcome.timings.setdefault("total_s", round(time.monotonic() - started, 3))
    return _job_store(model, job, token, attempt, outcome)


def _job_store(model, job, token, attempt, outcome: JobOutcome) -> str:
    now = timezone.now()
    with transaction.atomic():
        row = model.objects.select_for_update().filter(pk=job.pk, lease_token=token,
                                                       status=JobStatus.RUNNING).first()
        if row is None:
            JobAttempt.objects.filter(pk=attempt.pk).update(outcome=JobAttempt.Outcome.SUPERSEDED, finished_at=now)
            logger.warning("job %s %s: lease lost before storing; result discarded", model.job_type, job.pk)
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
        for name, value in outcome.fields.items():
            setattr(row, name, value)
        row.save()
        JobAttempt.objects.filter(pk=attempt.pk).update(outcome=outcome.status, finished_at=now)
    _batch_touch(row)
    return outcome.status


def _job_fail(model, job, token, attempt, code: str, message: str) -> None:
    now = timezone.now()
    updated = model.objects.filter(pk=job.pk, lease_token=token).update(
        status=JobStatus.FAILED, error_code=code[:64], error_message=message[:4000], finished_at=now,
        lease_token=None, lease_expires_at=None, progress_message="",
    )
    JobAttempt.objects.filter(pk=attempt.pk).update(
        outcome=JobAttempt.Outcome.FAILED if updated else JobAttempt.Outcome.SUPERSEDED,
        error_code=code[:64], error_message=message[:4000], finished_at=now,
    )
    if updated:
        _batch_touch(job)


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


def jobs_sweep(*, now=None) -> dict[str, int]:
    """Find jobs whose message was lost or whose worker died, and send them again.

    - running with an expired lease: re-enqueued (the claim accepts expired leases), or failed as
      abandoned once it has used all its attempts;
    - queued with no message sent for ``JOB_REQUEUE_AFTER`` seconds: re-enqueued.
    """
    now = now or timezone.now()
    stats = {"requeued": 0, "abandoned": 0, "batches": 0}
    stale_queued = now - timedelta(seconds=settings.JOB_REQUEUE_AFTER)
    for model in registry.job_models().values():
        expired = model.objects.filter(status=JobStatus.RUNNING, lease_expires_at__lt=now)
        for job in expired:
            lost = JobAttempt.objects.filter(job_type=model.job_type, job_id=job.pk, outcome__in=[
                JobAttempt.Outcome.RUNNING, JobAttempt.Outcome.ABANDONED]).count()
            if lost >= settings.JOB_MAX_ATTEMPTS:
                updated = model.objects.filter(pk=job.pk, status=JobStatus.RUNNING, lease_expires_at__lt=now).update(
                    status=JobStatus.FAILED, error_code="abandoned", finished_at=now, lease_token=None,
                    error_message=f"the worker was lost {job.attempts} times; giving up",
                )
                if updated:
                    stats["abandoned"] += 1
                    _batch_touch(job)
                continue
            job_enqueue(job=job)
            stats["requeued"] += 1
        lost = model.objects.filter(status=JobStatus.QUEUED).filter(
            Q(enqueued_at__lt=stale_queued) | Q(enqueued_at__isnull=True, queued_at__lt=stale_queued)
        )
        for job in lost:
            job_enqueue(job=job)
            stats["requeued"] += 1
    for batch in Batch.objects.filter(status__in=[Batch.Status.QUEUED, Batch.Status.PARSING],
                                      created_at__lt=stale_queued):
        batch_enqueue(batch=batch)
        stats["batches"] += 1
    if any(stats.values()):
        logger.info("sweep: %s", stats)
    return stats


# --- batches ---------------------------------------------------------------------------------------
BATCH_TASKS = {
    "finance": "finance.batch_ingest",
    "medical": "medical.batch_ingest",
    "manufacturing": "manufacturing.batch_ingest",
}


def batch_create(*, owner, app: str, kind: str, upload, options: dict | None = None) -> Batch:
    """Store an uploaded file as a new batch and queue its parsing."""
    batch = Batch(owner=owner, app=app, kind=kind, original_filename=getattr(upload, "name", "")[:255],
                  size_bytes=getattr(upload, "size", 0) or 0, options=options or {})
    batch.file.save(f"{app}/{batch.id}/{_safe_name(batch.original_filename)}", upload, save=False)
    batch.save()
    batch_enqueue(batch=batch)
    return batch


def _safe_name(name: str) -> str:
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in base)[:100]
    return cleaned or "upload"


def batch_enqueue(*, batch: Batch) -> None:
    task_name = BATCH_TASKS[batch.app]
    batch_id = str(batch.pk)

    def _send() -> None:
        try:
            current_app.send_task(task_name, args=[batch_id])
        except Exception:
            logger.exception("could not enqueue batch %s; the sweeper will retry", batch_id)

    transaction.on_commit(_send)


def batch_claim(*, batch_id) -> Batch | None:
    """Take a batch for parsing under a lease; None if another delivery owns it or it is parsed.

    A queued batch is claimable; a batch being parsed only once its parse lease has expired (the
    worker that read it died). So two deliveries of one batch never read it at the same time.
    """
    now = timezone.now()
    claimable = Q(status=Batch.Status.QUEUED) | Q(
        Q(parse_lease_expires_at__isnull=True) | Q(parse_lease_expires_at__lt=now), status=Batch.Status.PARSING
    )
    updated = Batch.objects.filter(claimable, pk=batch_id).update(
        status=Batch.Status.PARSING, attempts=F("attempts") + 1,
        parse_lease_expires_at=now + timedelta(seconds=settings.JOB_LEASE_SECONDS),
    )
    if not updated:
        return None
    return Batch.objects.get(pk=batch_id)


def batch_items_created(*, batch: Batch, jobs: list[Job], errors: list, warnings: list) -> None:
    """Mark a batch parsed and queue its item jobs (call inside a transaction with the item inserts).

    Items created already failed (rows that did not validate) are counted but not queued; a batch
    whose items are all final is done at once.
    """
    now = timezone.now()
    queued = [job for job in jobs if job.status == JobStatus.QUEUED]
    status = Batch.Status.RUNNING if queued else (Batch.Status.DONE if jobs else Batch.Status.FAILED)
    Batch.objects.filter(pk=batch.pk).update(
        status=status, item_total=len(jobs), errors=errors, warnings=warnings, parsed_at=now,
        finished_at=None if queued else now, parse_lease_expires_at=None,
    )
    for job in queued:
        job_enqueue(job=job)


def batch_fail(*, batch: Batch, errors: list) -> None:
    now = timezone.now()
    Batch.objects.filter(pk=batch.pk).update(status=Batch.Status.FAILED, errors=errors, finished_at=now,
                                             parsed_at=now, parse_lease_expires_at=None)


def _batch_touch(job: Job) -> None:
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


# --- API tokens ------------------------------------------------------------------------------------
TOKEN_PREFIX = "sk"


def token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def api_token_create(*, user, name: str) -> tuple[ApiToken, str]:
    """A new token; the plain text is returned once and never stored."""
    prefix = secrets.token_hex(4)
    secret = f"{TOKEN_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    token = ApiToken.objects.create(user=user, name=name[:100], prefix=prefix, key_hash=token_hash(secret))
    return token, secret


def api_token_revoke(*, token: ApiToken) -> None:
    ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())


# --- the diagnostic job ------------------------------------------------------------------------------
def diagnostic_job_create(*, owner, prompt: str = "Say OK.", delay_seconds: float = 0.0,
                          use_model: bool = True) -> DiagnosticJob:
    job = DiagnosticJob.objects.create(owner=owner, prompt=prompt[:2000], delay_seconds=max(0.0, min(delay_seconds, 600.0)),
                                       use_model=use_model)
    job_enqueue(job=job)
    return job


def diagnostic_process(job: DiagnosticJob) -> JobOutcome:
    """Wait ``delay_seconds`` in steps (reporting progress), then ask the model service."""
    from core.model_client import get_model_client

    steps = max(1, int(job.delay_seconds * 2))
    for step in range(steps if job.delay_seconds > 0 else 0):
        time.sleep(job.delay_seconds / steps)
        job_progress(job=job, fraction=(step + 1) / (steps + 1), message=f"step {step + 1} of {steps}")
    import platform

    result = {"worker": socket.gethostname(), "attempt": job.attempts, "platform": platform.system()}
    model_name = ""
    if job.use_model:
        answer = get_model_client("core.diagnostic").chat(
            messages=[{"role": "user", "content": job.prompt}], max_tokens=16, temperature=0.0
        )
        result.update(answer=answer.content, latency_s=round(answer.latency_s, 3), usage=answer.usage)
        model_name = answer.model
    return JobOutcome(result=result, model_name=model_name)
