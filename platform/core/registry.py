"""The job registry: every concrete Job model, by its ``job_type`` ("<app>.<kind>").

Apps register their job models in ``AppConfig.ready()``; the sweeper, the dashboard, ``/api/v1/jobs/``
and batch progress find them here.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.models import Job

_JOB_MODELS: dict[str, type[Job]] = {}


def register_job_model(model: type[Job]) -> type[Job]:
    if not model.job_type or not model.task_name or not model.role:
        raise ValueError(f"{model.__name__} must set job_type, task_name and role")
    _JOB_MODELS[model.job_type] = model
    return model


def job_models() -> dict[str, type[Job]]:
    return dict(_JOB_MODELS)


def job_model(job_type: str) -> type[Job]:
    try:
        return _JOB_MODELS[job_type]
    except KeyError:
        raise LookupError(f"unknown job type {job_type!r}") from None
