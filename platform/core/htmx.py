"""The one "live status card" answer: htmx polls a job's status partial while it runs; once the job is
final, the answer tells the page to reload (or fires an event) so the result shows at once."""
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
