"""Thin Celery tasks of the medical app: an id in, a service call, the platform's retry policy."""
from __future__ import annotations

import logging

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded

from apps.medical.models import Study
from apps.medical.services import study_process, upload_ingest
from core import services as core_services
from core.models import Batch
from core.tasks import JOB_TASK_OPTIONS, job_task_run

logger = logging.getLogger(__name__)


@shared_task(name="medical.study_run", **JOB_TASK_OPTIONS)
def study_run(self, job_id: str) -> str:
    return job_task_run(self, model=Study, job_id=job_id, handler=study_process)


@shared_task(name="medical.batch_ingest", acks_late=True)
def batch_ingest(batch_id: str) -> str:
    """Parse, de-identify and group one upload; create its Study jobs (a redelivery is harmless)."""
    try:
        return upload_ingest(batch_id=batch_id)
    except SoftTimeLimitExceeded:
        batch = Batch.objects.filter(pk=batch_id).first()
        if batch is not None:
            core_services.batch_fail(batch=batch, errors=[
                "the upload took longer than the time limit to read; split it into smaller uploads"])
        return "failed"
    except Exception as exc:  # a bug: fail this upload alone with a message, keep the worker going
        logger.exception("medical upload %s could not be ingested", batch_id)
        batch = Batch.objects.filter(pk=batch_id).first()
        if batch is not None:
            core_services.batch_fail(batch=batch, errors=[f"internal error while reading the upload ({type(exc).__name__})"])
        return "failed"
