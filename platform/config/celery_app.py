"""The Celery application: Redis broker, one queue per app, ids only, late acks.

All options live in settings.py under the ``CELERY_`` prefix. Start a worker with
``celery -A config.celery_app worker -Q default,finance,medical,manufacturing,maintenance`` and the
scheduler with ``celery -A config.celery_app beat``.
"""
from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("suite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["core", "apps.finance", "apps.medical", "apps.manufacturing"])
