"""The one "live status card" answer: htmx polls a job's (or a batch's) status partial while it runs;
once it is final, the answer tells the page to reload (or fires an event) so the result shows at once."""
from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import render


def job_status_response(request, *, job, template: str = "core/_job_status.html",
                        on_finish: str = "refresh") -> HttpResponse:
    """Render ``template`` with ``job``; when the job is final and htmx asked, add ``HX-Refresh`` (reload
    the page: ``on_finish="refresh"``) or ``HX-Trigger: job-finished`` (``on_finish="event"``)."""
    response = render(request, template, {"job": job})
    if job.is_terminal and request.headers.get("HX-Request"):
        if on_finish == "event":
            response["HX-Trigger"] = "job-finished"
        else:
            response["HX-Refresh"] = "true"
    return response


def batch_status_response(request, *, batch, template: str, context: dict) -> HttpResponse:
    """Render a batch's live partial; once the batch is done or failed and htmx asked, fire
    ``HX-Trigger: batch-finished`` (the page then stops polling and shows the results)."""
    from core.models import Batch

    response = render(request, template, context)
    if batch.status in (Batch.Status.DONE, Batch.Status.FAILED) and request.headers.get("HX-Request"):
        response["HX-Trigger"] = "batch-finished"
    return response
