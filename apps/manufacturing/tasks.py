"""Celery tasks of the manufacturing app (queue ``manufacturing``): thin, an id in, a service call."""
from __future__ import annotations

from celery import shared_task

from apps.manufacturing import services
from apps.manufacturing.models import Prediction, TrainingRun
from core.tasks import JOB_TASK_OPTIONS, job_task_run

#: Training a model on a large history can outlast the default job limits.
TRAINING_TIME_LIMITS = {"soft_time_limit": 3600, "time_limit": 3660}


@shared_task(name="manufacturing.prediction_run", **JOB_TASK_OPTIONS)
def prediction_run(self, job_id: str) -> str:
    return job_task_run(self, model=Prediction, job_id=job_id, handler=services.prediction_process)


@shared_task(name="manufacturing.training_run", **JOB_TASK_OPTIONS, **TRAINING_TIME_LIMITS)
def training_run(self, job_id: str) -> str:
    return job_task_run(self, model=TrainingRun, job_id=job_id, handler=services.training_process)


@shared_task(name="manufacturing.batch_ingest", acks_late=True)
def batch_ingest(batch_id: str) -> str:
    return services.batch_ingest(batch_id=batch_id)
