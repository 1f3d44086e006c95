"""What an app's job handler returns or raises to :func:`core.services.job_execute`."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core.models import JobStatus


class JobError(Exception):
    code = "job_error"

    def __init__(self, message: str, *, code: str | None = None):
        super().__init__(message)
        if code:
            self.code = code


class TransientJobError(JobError):
    """Try again later (the model service is down, a lock is held): the job goes back to the queue."""

    code = "transient_error"


class PermanentJobError(JobError):
    """The input cannot be processed; retrying will not help. The job fails with this message."""

    code = "invalid_input"


@dataclass
class JobOutcome:
    """A handler's answer. ``apply`` runs inside the transaction that stores the result, only while
    this worker still holds the job's lease, so side effects (child rows, alerts) happen once."""

    result: dict[str, Any]
    status: str = JobStatus.SUCCEEDED
    model_name: str = ""
    model_version: str = ""
    prompt_template: str = ""
    prompt_version: int | None = None
    timings: dict[str, float] = field(default_factory=dict)
    fields: dict[str, Any] = field(default_factory=dict)
    apply: Callable[[Any], None] | None = None
