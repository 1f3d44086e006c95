"""Celery tasks of the platform, and the one shape every app's job task follows.

An app's task is thin::

    @shared_task(name="finance.assessment_run", **JOB_TASK_OPTIONS)
    def assessment_run(self, job_id):
        return job_task_run(self, model=Assessment, job_id=job_id, handler=assessment_process)
"""
from __future__ import annotations

import logging
import random

from celery import shared_task
from django.conf import settings

from core import registry, services
from core.jobs import TransientJobError
from core.model_client import backoff_delay
from core.models import DiagnosticJob

logger = logging.getLogger(__name__)

#: Options shared by every job task: late acks (redelivered if the worker dies), bound for retries.
JOB_TASK_OPTIONS = {"bind": True, "acks_late": True, "reject_on_worker_lost": True, "max_retries": None}


def retry_countdown(retries: int) -> float:
    """Backoff with jitter for a job retry, well below the broker's visibility timeout."""
    cap = min(300.0, settings.CELERY_VISIBILITY_TIMEOUT / 4)
    return max(1.0, backoff_delay(retries + 1, base=2.0, cap=cap))


def job_task_run(task, *, model, job_id: str, handler) -> str:
    """Execute one delivery of a job; on a transient failure schedule a retry with backoff."""
    try:
        return services.job_execute(model=model, job_id=job_id, handler=handler,
                                    worker=getattr(task.request, "hostname", "") or "")
    except TransientJobError as exc:
        countdown = retry_countdown(task.request.retries)
        hint = getattr(exc.__cause__, "retry_after", None)  # e.g. the circuit breaker's cool-down
        if hint:
            countdown = max(countdown,
                            min(float(hint) + random.random(), settings.CELERY_VISIBILITY_TIMEOUT / 4))
        logger.warning("job %s %s: %s; retrying in %.0fs", model.job_type, job_id, exc, countdown)
        raise task.retry(countdown=countdown, exc=exc) from exc


@shared_task(name="core.job_continue", **JOB_TASK_OPTIONS)
def job_continue(self, job_type: str, job_id: str) -> str:
    """The language-model part of a job handed on with ``AwaitLLM`` (queue ``llm``, a thread pool)."""
    return job_task_run(self, model=registry.job_model(job_type), job_id=job_id, handler=None)


@shared_task(name="core.diagnostic_run", **JOB_TASK_OPTIONS)
def diagnostic_run(self, job_id: str) -> str:
    return job_task_run(self, model=DiagnosticJob, job_id=job_id, handler=services.diagnostic_process)


@shared_task(name="core.jobs_sweep", acks_late=True)
def jobs_sweep() -> dict:
    return services.jobs_sweep()
