"""Thin Celery tasks of the medical app: an id in, a service call, the platform's retry policy."""
from __future__ import annotations

from celery import shared_task

from apps.medical.models import Study
from apps.medical.services import raw_uploads_sweep, study_process, upload_ingest
from core.tasks import JOB_TASK_OPTIONS, job_task_run


@shared_task(name="medical.study_run", **JOB_TASK_OPTIONS)
def study_run(self, job_id: str) -> str:
    return job_task_run(self, model=Study, job_id=job_id, handler=study_process)


@shared_task(name="medical.batch_ingest", acks_late=True)
def batch_ingest(batch_id: str) -> str:
    """Parse, de-identify and group one upload; create its Study jobs (a redelivery is harmless)."""
    return upload_ingest(batch_id=batch_id)


@shared_task(name="medical.raw_uploads_sweep", acks_late=True)
def raw_uploads_sweep_task() -> int:
    """Delete raw (identified) uploads left behind (scheduled by beat, like core's jobs sweeper)."""
    return raw_uploads_sweep()
