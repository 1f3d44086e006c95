"""The diagnostic job (platform self-test): a worker waits, reports progress, asks the model service."""
from __future__ import annotations

import socket
import time

from core.jobs import JobOutcome
from core.models import DiagnosticJob
from core.services.jobs import job_enqueue, job_progress


def diagnostic_job_create(*, owner, prompt: str = "Say OK.", delay_seconds: float = 0.0,
                          use_model: bool = True) -> DiagnosticJob:
    job = DiagnosticJob.objects.create(owner=owner, prompt=prompt[:2000],
                                       delay_seconds=max(0.0, min(delay_seconds, 600.0)),
                                       use_model=use_model)
    job_enqueue(job=job)
    return job


def diagnostic_process(job: DiagnosticJob) -> JobOutcome:
    """Wait ``delay_seconds`` in steps (reporting progress), then ask the model service."""
    from core.model_client import get_model_client

    steps = max(1, int(job.delay_seconds * 2))
    for step in range(steps if job.delay_seconds > 0 else 0):
        time.sleep(job.delay_seconds / steps)
        job_progress(job=job, fraction=(step + 1) / (steps + 1), message=f"step {step + 1} of {steps}")
    import platform

    result = {"worker": socket.gethostname(), "attempt": job.attempts, "platform": platform.system()}
    model_name = ""
    if job.use_model:
        answer = get_model_client("core.diagnostic").chat(
            messages=[{"role": "user", "content": job.prompt}], max_tokens=16, temperature=0.0
        )
        result.update(answer=answer.content, latency_s=round(answer.latency_s, 3), usage=answer.usage)
        model_name = answer.model
    return JobOutcome(result=result, model_name=model_name)
