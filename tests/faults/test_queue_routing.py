"""Two workers on different queues against one broker (as on two hosts): each job runs on the worker
that serves its app's queue. A finance assessment goes to the ``finance`` worker; the core diagnostic
job (queue ``default``) to the ``manufacturing,default`` worker. Neither worker ever runs the other's."""
from __future__ import annotations

import pytest

from apps.finance.tests import conftest as finance_fixtures
from apps.finance.tests.conftest import applicant_of
from conftest import wait_for

credit_model = finance_fixtures.credit_model  # the finance app's fixtures
german_rows = finance_fixtures.german_rows

pytestmark = [pytest.mark.live, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

TERMINAL = ("succeeded", "failed", "needs_review")
FAST = {"LLM_ENABLED": "false"}


def test_jobs_run_on_the_worker_of_their_queue(worker_factory, make_user, credit_model, german_rows,
                                               settings):
    from apps.finance.models import Assessment
    from apps.finance.services import assessment_create
    from core import services
    from core.models import DiagnosticJob, JobAttempt

    settings.LLM_ENABLED = False
    finance_worker = worker_factory(queues="finance", concurrency=1, env=FAST, name="finq")
    other_worker = worker_factory(queues="manufacturing,default", concurrency=1, env=FAST, name="mfgq")
    finance_worker.start()
    other_worker.start()

    user = make_user("router", "admin")
    assessments = [assessment_create(owner=user, applicant=applicant_of(german_rows[i]),
                                     application_id=f"RQ-{i}", source=Assessment.Source.API)
                   for i in range(3)]
    diagnostics = [services.diagnostic_job_create(owner=user, use_model=False) for _ in range(3)]

    def all_done():
        return all(Assessment.objects.get(pk=a.pk).status in TERMINAL for a in assessments) and \
            all(DiagnosticJob.objects.get(pk=d.pk).status in TERMINAL for d in diagnostics)

    wait_for(all_done, timeout=60, interval=0.5, message="every job to finish")

    def workers_of(job_type, jobs):
        rows = JobAttempt.objects.filter(job_type=job_type, job_id__in=[j.pk for j in jobs])
        return {(str(r.job_id), r.worker, r.outcome) for r in rows}

    finance_attempts = workers_of("finance.assessment", assessments)
    diag_attempts = workers_of(DiagnosticJob.job_type, diagnostics)
    assert len(finance_attempts) == 3 and len(diag_attempts) == 3, (finance_attempts, diag_attempts)
    for _job, worker, outcome in finance_attempts:
        assert worker.startswith(f"{finance_worker.name}@"), (worker, finance_worker.name)
        assert outcome in ("succeeded", "needs_review"), outcome
    for _job, worker, outcome in diag_attempts:
        assert worker.startswith(f"{other_worker.name}@"), (worker, other_worker.name)
        assert outcome == "succeeded", outcome

    # The workers' own logs agree: each received only its queue's tasks.
    finance_log, other_log = finance_worker.log(), other_worker.log()
    assert "finance.assessment_run[" in finance_log and "core.diagnostic_run[" not in finance_log
    assert "core.diagnostic_run[" in other_log and "finance.assessment_run[" not in other_log
