"""Batches: an uploaded file becomes a batch, its parsing becomes items (one job each).

Every app's ``<app>.batch_ingest`` task calls :func:`batch_ingest` with its own reader; the claim, the
attempts cap, the catch-all, the bulk insert, the enqueueing and the done/failed rule live here once.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from celery import current_app
from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import F, Q
from django.utils import timezone

from core.models import Batch, Job, JobStatus
from core.registry import batch_task_name
from core.services.jobs import jobs_enqueue

logger = logging.getLogger(__name__)


def batch_create(*, owner, app: str, kind: str, upload, options: dict | None = None, request=None) -> Batch:
    """Store an uploaded file as a new batch, record the ``submit`` audit event and queue its parsing."""
    from core.audit import audit_record

    batch = Batch(owner=owner, app=app, kind=kind, original_filename=getattr(upload, "name", "")[:255],
                  size_bytes=getattr(upload, "size", 0) or 0, options=options or {})
    batch.file.save(f"{app}/{batch.id}/{safe_name(batch.original_filename)}", upload, save=False)
    batch.save()
    audit_record(actor=owner, action="submit", obj=batch, request=request,
                 detail={"file": batch.original_filename, "bytes": batch.size_bytes})
    batch_enqueue(batch=batch)
    return batch


def safe_name(name: str) -> str:
    """A file name safe for storage paths: the last path part, other characters than letters, digits and
    ``._-`` replaced."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in base)[:100]
    return cleaned or "upload"


def batch_enqueue(*, batch: Batch) -> None:
    """Send the batch's id to its app's ingest task (the registry's ``batch_task``) on commit."""
    task_name = batch_task_name(batch.app)
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
        Q(parse_lease_expires_at__isnull=True) | Q(parse_lease_expires_at__lt=now),
        status=Batch.Status.PARSING
    )
    updated = Batch.objects.filter(claimable, pk=batch_id).update(
        status=Batch.Status.PARSING, attempts=F("attempts") + 1,
        parse_lease_expires_at=now + timedelta(seconds=settings.JOB_LEASE_SECONDS),
    )
    if not updated:
        return None
    return Batch.objects.get(pk=batch_id)


@dataclass
class BatchItems:
    """What an app's reader found in one upload.

    ``create`` runs inside the transaction that stores the items: it returns the item jobs, saved or
    not (unsaved ones are bulk-created); items that did not validate are jobs created already failed,
    naming the row or file. ``errors`` and ``warnings`` are shown on the batch; ``options`` are merged
    into ``batch.options``; ``on_commit`` runs once the items are stored.
    """

    create: Callable[[], list[Job]]
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    options: dict | None = None
    on_commit: Callable[[], None] | None = None


class BatchRejected(Exception):
    """The whole upload is unusable (wrong format, no usable column); ``errors`` name the file and why."""

    def __init__(self, errors: list[str]):
        super().__init__("; ".join(errors[:3]))
        self.errors = list(errors)


def batch_ingest(*, batch_id, read: Callable[[Batch], BatchItems]) -> str:
    """The one ingest routine of every app's ``<app>.batch_ingest`` task.

    Claim the batch under its parse lease (a second delivery is skipped); give up once it has been
    tried ``JOB_MAX_ATTEMPTS`` times (a file that crashes its reader is not re-sent for ever); call
    ``read(batch)`` (the app's parser); store the items and the batch's outcome in one transaction;
    queue the items on commit. An upload the reader rejects, or that crashes it, fails alone with a
    message that names it. A dropped database connection is raised: the sweeper re-sends the batch.
    Returns ``skipped``, ``failed`` or ``parsed``.
    """
    from celery.exceptions import SoftTimeLimitExceeded

    batch = batch_claim(batch_id=batch_id)
    if batch is None:
        return "skipped"
    name = batch.original_filename or "upload"
    if batch.attempts > settings.JOB_MAX_ATTEMPTS:
        batch_fail(batch=batch, errors=[f"{name}: could not be read after "
                                        f"{settings.JOB_MAX_ATTEMPTS} attempts "
                                        "(the worker reading it stopped each time); upload it again"])
        return "failed"
    try:
        items = read(batch)
        with transaction.atomic():
            jobs = items.create()
            unsaved = [job for job in jobs if job._state.adding]
            if unsaved:
                type(unsaved[0]).objects.bulk_create(unsaved, batch_size=500)
            batch_items_created(batch=batch, jobs=jobs, errors=items.errors, warnings=items.warnings,
                                options=items.options)
            if items.on_commit is not None:
                transaction.on_commit(items.on_commit)
    except BatchRejected as exc:
        batch_fail(batch=batch, errors=exc.errors[:1000])
        return "failed"
    except (OperationalError, InterfaceError):
        raise
    except SoftTimeLimitExceeded:
        batch_fail(batch=batch, errors=[f"{name}: reading it took longer than the time limit; split it into "
                                        "smaller uploads"])
        return "failed"
    except Exception as exc:  # a bug or a file nobody foresaw: fail this upload alone, keep the worker going
        logger.exception("batch %s (%s) could not be ingested", batch.pk, batch.app)
        batch_fail(batch=batch, errors=[f"{name}: could not be read (internal error {type(exc).__name__}); "
                                        "it has been logged"])
        return "failed"
    return "parsed"


def batch_items_created(*, batch: Batch, jobs: list[Job], errors: list, warnings: list,
                        options: dict | None = None) -> None:
    """Mark a batch parsed and queue its items (inside the transaction that stores them).

    The one rule for a batch's outcome: no item at all → ``failed`` (the errors say why); some items
    still to run → ``running``, closed by the last one to finish; every item already final (rows that
    did not validate are items created failed) → ``done`` at once.
    """
    now = timezone.now()
    queued = [job for job in jobs if job.status == JobStatus.QUEUED]
    if not jobs and not errors:
        errors = [f"{batch.original_filename or 'the upload'}: no items found in it"]
    status = Batch.Status.RUNNING if queued else (Batch.Status.DONE if jobs else Batch.Status.FAILED)
    values = {"status": status, "item_total": len(jobs), "errors": list(errors)[:1000],
              "warnings": list(warnings)[:200], "parsed_at": now, "finished_at": None if queued else now,
              "parse_lease_expires_at": None}
    if options:
        values["options"] = {**(batch.options or {}), **options}
    Batch.objects.filter(pk=batch.pk).update(**values)
    jobs_enqueue(jobs=queued)


def batch_fail(*, batch: Batch, errors: list) -> None:
    now = timezone.now()
    Batch.objects.filter(pk=batch.pk).update(status=Batch.Status.FAILED, errors=errors, finished_at=now,
                                             parsed_at=now, parse_lease_expires_at=None)
