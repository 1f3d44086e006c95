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


@dataclass
class AwaitLLM:
    """A handler's answer when its CPU-bound part is done and the rest calls the language model.

    The job goes back to the queue with ``state`` (JSON) stored on its row (``Job.stage``); a worker of
    the language-model pool (queue ``llm``: threads, ``LLM_WIDTH`` jobs at once, so many model calls
    are in flight together) claims it like any delivery and runs ``finish(job, state)``, which returns
    what a handler returns. ``finish`` must be a module-level function (it is stored by its dotted
    path). ``apply`` stores the CPU part's side effects now, in the transaction that hands the job on,
    only while this worker holds the lease; ``timings`` are kept and merged into the final ones.
    """

    finish: Callable[[Any, dict], JobOutcome]
    state: dict[str, Any]
    apply: Callable[[Any], None] | None = None
    timings: dict[str, float] = field(default_factory=dict)
    message: str = "waiting for the language model"

    @property
    def finish_path(self) -> str:
        path = f"{self.finish.__module__}.{self.finish.__qualname__}"
        if "<" in path:
            raise ValueError(f"AwaitLLM.finish must be a module-level function, not {path}")
        return path
