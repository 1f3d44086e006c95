"""A job from a web request to a stored result, through a real worker and the real model service."""
import pytest

from conftest import wait_for

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


def test_rest_request_to_stored_result(celery_worker, make_user, api_client_for):
    from core.models import DiagnosticJob, JobAttempt

    user = make_user("ops", "admin")
    client = api_client_for(user)
    response = client.post("/api/v1/diagnostics/",
                           {"prompt": "Reply with one word: OK", "delay_seconds": 0.5},
                           format="json")
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "queued"
    job_id = body["id"]
    assert DiagnosticJob.objects.filter(pk=job_id).exists()  # the row exists before any worker ran

    def finished():
        data = client.get(f"/api/v1/jobs/{job_id}/").json()
        return data if data["status"] in ("succeeded", "failed") else None

    data = wait_for(finished, timeout=120, message="the job to finish")
    assert data["status"] == "succeeded", data
    assert data["result"]["answer"]  # the model service answered
    assert data["result"]["usage"]["completion_tokens"] > 0
    assert data["model"]["name"]  # which model produced it is recorded
    job = DiagnosticJob.objects.get(pk=job_id)
    assert job.attempts == 1 and job.finished_at and job.started_at
    assert JobAttempt.objects.filter(job_id=job.pk, outcome="succeeded").count() == 1
    listed = client.get("/api/v1/jobs/").json()
    assert any(row["id"] == job_id for row in listed["results"])


def test_job_delivered_twice_produces_one_result(celery_worker, make_user):
    """A second message for a finished job is skipped; the stored result is untouched."""
    from celery import current_app

    from core import services
    from core.models import DiagnosticJob, JobAttempt

    user = make_user("ops", "admin")
    job = services.diagnostic_job_create(owner=user, use_model=False)
    wait_for(lambda: DiagnosticJob.objects.get(pk=job.pk).status == "succeeded", timeout=60,
             message="first run")
    first = DiagnosticJob.objects.get(pk=job.pk)
    current_app.send_task("core.diagnostic_run", args=[str(job.pk)])
    current_app.send_task("core.diagnostic_run", args=[str(job.pk)])
    import time

    time.sleep(3)
    again = DiagnosticJob.objects.get(pk=job.pk)
    assert again.attempts == 1
    assert again.finished_at == first.finished_at
    assert JobAttempt.objects.filter(job_id=job.pk).count() == 1
