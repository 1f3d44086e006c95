"""Celery tasks of the finance app (thin: an id in, a service call, the platform's retry policy)."""
from celery import shared_task

from apps.finance import services
from apps.finance.models import Assessment, ModelTraining
from core.tasks import JOB_TASK_OPTIONS, job_task_run


@shared_task(name="finance.assessment_run", **JOB_TASK_OPTIONS)
def assessment_run(self, job_id):
    return job_task_run(self, model=Assessment, job_id=job_id, handler=services.assessment_process)


@shared_task(name="finance.model_train", **JOB_TASK_OPTIONS)
def model_train(self, job_id):
    return job_task_run(self, model=ModelTraining, job_id=job_id, handler=services.model_training_process)


@shared_task(name="finance.batch_ingest", acks_late=True)
def batch_ingest(batch_id):
    return services.batch_ingest(batch_id=batch_id)
