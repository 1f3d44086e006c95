"""Jobs handed on to the language-model pool (``core.jobs.AwaitLLM``): the CPU part runs in a job task,
the language-model part in ``core.job_continue`` (queue ``llm``, a thread pool), with the guarantees of
any job: a lease per delivery, one stored result however often a message arrives, retries that keep
the CPU part's work, the sweeper for lost messages."""
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.utils import timezone

from core.jobs import AwaitLLM, JobOutcome, TransientJobError
from core.models import DiagnosticJob, JobAttempt, JobStatus
from core.services import job_execute, jobs_sweep

pytestmark = pytest.mark.django_db(transaction=True)
CALLS: list[str] = []


def cpu_part(job):
    CALLS.append("cpu")
    return AwaitLLM(finish=llm_part, state={"features": [1, 2, 3]}, timings={"features_s": 0.5},
                    apply=lambda row: setattr(row, "progress", 0.5))


def llm_part(job, state):
    CALLS.append("llm")
    if job.prompt == "flaky" and job.attempts < 3:
        raise TransientJobError("model service busy", code="model_service_unavailable")
    return JobOutcome(result={"sum": sum(state["features"]), "attempt": job.attempts},
                      timings={"llm_s": 0.25})


@pytest.fixture
def sent(monkeypatch):
    from core.services import jobs

    messages: list[tuple[str, list]] = []
    broker = SimpleNamespace(tasks={}, send_task=lambda name, args: messages.append((name, args)))
    monkeypatch.setattr(jobs, "current_app", broker)
    CALLS.clear()
    return messages


def _job(make_user, prompt="x"):
    return DiagnosticJob.objects.create(owner=make_user("pool_owner", "admin"), prompt=prompt)


def test_the_cpu_part_hands_the_job_on_and_the_pool_finishes_it(make_user, sent):
    job = _job(make_user)
    assert job_execute(model=DiagnosticJob, job_id=job.pk, handler=cpu_part) == "deferred"
    row = DiagnosticJob.objects.get(pk=job.pk)
    assert row.status == JobStatus.QUEUED and row.progress == 0.5 and row.lease_token is None
    assert row.stage["state"] == {"features": [1, 2, 3]}
    assert row.stage["finish"].endswith("test_llm_pool.llm_part")
    assert row.progress_message == "waiting for the language model"
    assert sent == [("core.job_continue", ["core.diagnostic", str(job.pk)])]

    assert job_execute(model=DiagnosticJob, job_id=job.pk) == JobStatus.SUCCEEDED
    row = DiagnosticJob.objects.get(pk=job.pk)
    assert row.result == {"sum": 6, "attempt": 2} and row.stage is None and row.status == JobStatus.SUCCEEDED
    assert row.timings["features_s"] == 0.5 and row.timings["llm_s"] == 0.25 and "total_s" in row.timings
    assert CALLS == ["cpu", "llm"]
    attempts = JobAttempt.objects.filter(job_id=job.pk).order_by("number")
    outcomes = list(attempts.values_list("outcome", flat=True))
    assert outcomes == ["handed_on", "succeeded"]
    # a second delivery of either message finds the job done
    assert job_execute(model=DiagnosticJob, job_id=job.pk) == "skipped"
    assert job_execute(model=DiagnosticJob, job_id=job.pk, handler=cpu_part) == "skipped"
    assert CALLS == ["cpu", "llm"]


def test_the_pool_never_takes_a_job_that_was_not_handed_on(make_user, sent):
    job = _job(make_user)
    assert job_execute(model=DiagnosticJob, job_id=job.pk) == "skipped"
    assert DiagnosticJob.objects.get(pk=job.pk).status == JobStatus.QUEUED and CALLS == []


def test_a_transient_failure_retries_the_language_model_part_only(make_user, sent):
    job = _job(make_user, prompt="flaky")
    job_execute(model=DiagnosticJob, job_id=job.pk, handler=cpu_part)
    with pytest.raises(TransientJobError):
        job_execute(model=DiagnosticJob, job_id=job.pk)
    row = DiagnosticJob.objects.get(pk=job.pk)
    assert row.status == JobStatus.QUEUED and row.stage is not None  # the CPU part's work is kept
    assert job_execute(model=DiagnosticJob, job_id=job.pk) == JobStatus.SUCCEEDED
    assert CALLS == ["cpu", "llm", "llm"]
    assert DiagnosticJob.objects.get(pk=job.pk).result["attempt"] == 3


def test_a_handed_on_job_redelivered_to_its_own_task_still_finishes_once(make_user, sent):
    job = _job(make_user)
    job_execute(model=DiagnosticJob, job_id=job.pk, handler=cpu_part)
    assert job_execute(model=DiagnosticJob, job_id=job.pk, handler=cpu_part) == JobStatus.SUCCEEDED
    assert CALLS == ["cpu", "llm"]


def test_the_sweeper_sends_a_lost_handed_on_job_back_to_the_pool(make_user, sent, settings):
    job = _job(make_user)
    job_execute(model=DiagnosticJob, job_id=job.pk, handler=cpu_part)
    sent.clear()
    stale = timezone.now() - timedelta(seconds=settings.JOB_REQUEUE_AFTER + 5)
    DiagnosticJob.objects.filter(pk=job.pk).update(enqueued_at=stale)
    jobs_sweep()
    assert sent == [("core.job_continue", ["core.diagnostic", str(job.pk)])]


def test_finish_must_be_a_module_level_function():
    with pytest.raises(ValueError, match="module-level"):
        _ = AwaitLLM(finish=lambda job, state: None, state={}).finish_path


def always_busy(job):
    raise TransientJobError("model service busy", code="model_service_unavailable")


def test_the_retry_window_runs_from_the_first_transient_failure(make_user, sent, settings):
    settings.JOB_RETRY_WINDOW = 60
    job = _job(make_user)
    # queued long ago (it waited behind a big batch): its first failure still gets a retry
    DiagnosticJob.objects.filter(pk=job.pk).update(queued_at=timezone.now() - timedelta(hours=2))
    with pytest.raises(TransientJobError):
        job_execute(model=DiagnosticJob, job_id=job.pk, handler=always_busy)
    assert DiagnosticJob.objects.get(pk=job.pk).status == JobStatus.QUEUED
    # failing since more than the window: it gives up
    JobAttempt.objects.filter(job_id=job.pk).update(finished_at=timezone.now() - timedelta(seconds=61))
    assert job_execute(model=DiagnosticJob, job_id=job.pk, handler=always_busy) == JobStatus.FAILED
    assert "gave up after 2 attempts" in DiagnosticJob.objects.get(pk=job.pk).error_message
