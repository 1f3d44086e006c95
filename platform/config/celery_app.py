"""The Celery application: Redis broker, one queue per app, ids only, late acks.

All options live in settings.py under the ``CELERY_`` prefix. Start a worker with
``celery -A config.celery_app worker -Q <settings.CELERY_QUEUES_ALL, comma-separated>`` and the
scheduler with ``celery -A config.celery_app beat``. Tasks are found in every installed app's
``tasks`` module.
"""
from __future__ import annotations

import os

from celery import Celery
from celery.signals import worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("suite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_init.connect
def _limit_blas_threads(**_kwargs) -> None:
    """One BLAS/OpenMP thread per worker process by default: several pool processes each spinning up
    all cores' worth of threads fight each other (training took 30× longer on 2 cores)."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(int(os.environ.get("WORKER_BLAS_THREADS", "1")))
