"""The periodic sweeper (beat): jobs and batches whose message was lost or whose worker died."""
from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from core import registry
from core.models import Batch, JobAttempt, JobStatus
from core.services.batches import batch_enqueue
from core.services.jobs import batch_close_if_finished, job_enqueue

logger = logging.getLogger(__name__)


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
                updated = model.objects.filter(pk=job.pk, status=JobStatus.RUNNING,
                                               lease_expires_at__lt=now).update(
                    status=JobStatus.FAILED, error_code="abandoned", finished_at=now, lease_token=None,
                    error_message=f"the worker was lost {job.attempts} times; giving up",
                )
                if updated:
                    stats["abandoned"] += 1
                    batch_close_if_finished(job)
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
