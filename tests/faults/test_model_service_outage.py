"""The model service goes away for ~30 s while jobs that need it are running.

Real parts only: the model service with the embedded model (its own instance, on its own port), a real
Celery worker, the platform's diagnostic job submitted over the REST API. The model service is
stopped with SIGTERM in the middle of the batch and started again on the same port.

It shows: jobs wait and retry (JobAttempt rows with outcome ``retry``), none fails; ``/readyz``
answers 503 with ``model_service.ok == false`` and the UI's degraded banner says so; after the
service returns every job ends ``succeeded`` with exactly one stored result.
"""
from __future__ import annotations

import os
import time

import pytest

from conftest import TEST_MODEL_KEY, ModelServiceProcess, wait_for

from .conftest import record_figures

pytestmark = [pytest.mark.live, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

N_JOBS = 10
OUTAGE_SECONDS = float(os.environ.get("FAULT_OUTAGE_SECONDS", "30"))

# Retries within seconds: Celery's retry countdown is capped at CELERY_VISIBILITY_TIMEOUT / 4 (10 s);
# no in-call retry (each failed call is one visible attempt); the breaker opens after 2 failures
# and probes again after 3 s, so it does not hold jobs back long after the service returns.
# The give-up policy (JOB_MAX_ATTEMPTS, JOB_RETRY_WINDOW) is deliberately left at its production
# default: a 30 s outage must not fail jobs in a deployment as shipped.
WORKER_ENV = {
    "JOB_SOFT_TIME_LIMIT": "30",
    "JOB_TIME_LIMIT": "35",
    "CELERY_VISIBILITY_TIMEOUT": "40",
    "MODEL_SERVICE_RETRIES": "0",
    "MODEL_SERVICE_CONNECT_TIMEOUT": "1",
    "MODEL_SERVICE_TIMEOUT": "25",
    "MODEL_SERVICE_BREAKER_THRESHOLD": "2",
    "MODEL_SERVICE_BREAKER_COOLDOWN": "3",
}
TERMINAL = ("succeeded", "failed", "needs_review")


@pytest.fixture
def own_model_service():
    """A model service of this test's own: the session's shared one must not be stopped."""
    service = ModelServiceProcess()
    service.start()
    yield service
    service.stop()


def test_model_service_outage_jobs_wait_then_all_succeed_once(own_model_service, worker_factory, make_user,
                                                             api_client_for, settings):
    from django.test import Client

    from core import model_client
    from core.models import DiagnosticJob, JobAttempt

    service = own_model_service
    # This process answers /readyz and the banner: point it at the same service.
    settings.MODEL_SERVICE_URL = service.url
    settings.MODEL_SERVICE_API_KEY = TEST_MODEL_KEY
    settings.LLM_ENABLED = True
    model_client._clients.clear()

    worker = worker_factory(env=dict(WORKER_ENV, MODEL_SERVICE_URL=service.url,
                                     MODEL_SERVICE_API_KEY=TEST_MODEL_KEY),
                            concurrency=2, name="outage").start()
    user = make_user("ops", "admin")
    api = api_client_for(user)
    browser = Client()
    browser.force_login(user)

    # Healthy before the fault: readiness 200, no banner (this also caches an "ok" report for 10 s).
    ready = browser.get("/readyz")
    assert ready.status_code == 200, ready.content
    assert b"degraded-banner" not in browser.get("/status/").content

    ids = []
    for i in range(N_JOBS):
        response = api.post("/api/v1/diagnostics/", {"prompt": f"Job {i}: reply with one word.",
                                                     "delay_seconds": 1, "use_model": True}, format="json")
        assert response.status_code == 202, response.content
        ids.append(response.json()["id"])
    jobs = DiagnosticJob.objects.filter(pk__in=ids)

    # Stop the service in the middle of the batch: some done, most still to do.
    wait_for(lambda: jobs.filter(status="succeeded").count() >= 2, timeout=120,
             message="the first jobs to succeed")
    service.stop()
    outage_started = time.monotonic()
    time.sleep(1)  # a result the service sent just before it stopped may still be being stored
    waiting_at_stop = jobs.exclude(status__in=TERMINAL).count()
    assert waiting_at_stop >= 3, "the outage must hit jobs still in flight"

    # /readyz: 503, the model service check says why, the others still answer.
    def not_ready():
        response = browser.get("/readyz")
        return response if response.status_code == 503 else None

    response = wait_for(not_ready, timeout=10, message="/readyz to answer 503")
    checks = response.json()["checks"]
    assert checks["model_service"]["ok"] is False and checks["model_service"].get("error"), checks
    assert checks["database"]["ok"] and checks["redis"]["ok"], checks
    # The UI's banner partial (it caches the readiness report for 10 s, so allow for that).
    def degraded_banner():
        html = browser.get("/status/").content.decode()
        return html if "degraded-banner" in html else None

    banner = wait_for(degraded_banner, timeout=15, message="the degraded banner")
    banner_after_s = round(time.monotonic() - outage_started, 1)
    assert "model_service" in banner and "Degraded" in banner, banner

    # Jobs wait and retry; none fails while the service is away.
    wait_for(lambda: JobAttempt.objects.filter(job_id__in=ids, outcome="retry").exists(), timeout=20,
             message="a retry to be recorded")
    while time.monotonic() - outage_started < OUTAGE_SECONDS:
        assert not jobs.filter(status="failed").exists(), list(
            jobs.filter(status="failed").values("error_code", "error_message"))
        time.sleep(1)
    still_waiting = jobs.exclude(status__in=TERMINAL).count()
    assert still_waiting == waiting_at_stop, "a job finished while the model service was down"
    assert not jobs.filter(status="failed").exists()

    # The service comes back on the same port; jobs resume by themselves.
    restart_began = time.monotonic()
    service.start()
    restarted = time.monotonic()
    outage_s = round(restarted - outage_started, 1)
    restart_s = round(restarted - restart_began, 1)
    wait_for(lambda: browser.get("/readyz").status_code == 200, timeout=10, message="/readyz to be 200 again")
    wait_for(lambda: jobs.filter(status__in=TERMINAL).count() == N_JOBS, timeout=120,
             message="every job to finish after the service returned")
    recovered_s = round(time.monotonic() - restarted, 1)
    wait_for(lambda: b"degraded-banner" not in browser.get("/status/").content, timeout=15,
             message="the banner to clear")

    # Every job succeeded, with one stored result, and its attempts tell the story.
    assert sorted(jobs.values_list("status", flat=True)) == ["succeeded"] * N_JOBS, \
        list(jobs.values("status", "error_code", "error_message"))
    retried = 0
    for job in jobs:
        attempts = list(JobAttempt.objects.filter(job_id=job.pk).order_by("number"))
        outcomes = [a.outcome for a in attempts]
        assert outcomes.count("succeeded") == 1, outcomes
        assert outcomes[-1] == "succeeded", outcomes
        assert job.attempts == len(attempts) == attempts[-1].number, (job.attempts, outcomes)
        assert job.result["answer"] and job.result["usage"]["completion_tokens"] > 0
        assert job.model_name and job.error_code == ""
        retried += outcomes.count("retry") > 0
    assert retried >= 1
    all_attempts = JobAttempt.objects.filter(job_id__in=ids)
    codes = sorted(set(all_attempts.filter(outcome="retry").values_list("error_code", flat=True)))
    assert set(codes) <= {"model_service_unavailable", "model_service_circuit_open",
                          "model_service_timeout"}, codes
    # Nothing runs twice after the fact: a late duplicate delivery finds the job done.
    time.sleep(2)
    assert JobAttempt.objects.filter(job_id__in=ids).count() == all_attempts.count()
    assert worker.proc.poll() is None

    record_figures("model_service_outage", {
        "jobs": N_JOBS, "waiting_at_stop": waiting_at_stop, "service_down_s": outage_s,
        "restart_load_s": restart_s,
        "banner_shown_after_s": banner_after_s, "jobs_retried": retried,
        "retry_attempts": all_attempts.filter(outcome="retry").count(),
        "circuit_open_attempts": all_attempts.filter(error_code="model_service_circuit_open").count(),
        "max_attempts_per_job": max(jobs.values_list("attempts", flat=True)),
        "all_done_after_restart_s": recovered_s, "retry_error_codes": codes,
    })
