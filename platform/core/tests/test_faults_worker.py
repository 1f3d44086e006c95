"""A worker killed with SIGKILL mid-job: after a new worker starts, the job completes, once."""
import time

import pytest

from conftest import wait_for

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

FAST_LEASE = {"JOB_LEASE_SECONDS": "6", "JOB_SOFT_TIME_LIMIT": "20", "JOB_TIME_LIMIT": "25",
              "CELERY_VISIBILITY_TIMEOUT": "30"}


def test_sigkill_mid_job_then_new_worker_completes_once(worker_factory, make_user):
    from core import services
    from core.models import DiagnosticJob, JobAttempt

    user = make_user("ops", "admin")
    first = worker_factory(env=FAST_LEASE, concurrency=1, name="victim").start()
    job = services.diagnostic_job_create(owner=user, delay_seconds=8, use_model=False)
    wait_for(lambda: DiagnosticJob.objects.get(pk=job.pk).progress > 0, timeout=60,
             message="the job to start")
    first.kill()
    running = DiagnosticJob.objects.get(pk=job.pk)
    assert running.status == "running" and running.attempts == 1

    second = worker_factory(env=FAST_LEASE, concurrency=1, name="rescuer").start()
    # The sweeper finds the expired lease and sends the job again (beat does this every few seconds
    # in production; here we call the same function once the lease has run out).
    def lease_expired():
        row = DiagnosticJob.objects.get(pk=job.pk)
        return row.status != "running" or row.lease_expires_at.timestamp() < time.time()

    wait_for(lease_expired, timeout=30, message="the dead worker's lease to expire")
    stats = services.jobs_sweep()
    assert stats["requeued"] >= 1 or DiagnosticJob.objects.get(pk=job.pk).attempts == 2
    wait_for(lambda: DiagnosticJob.objects.get(pk=job.pk).status == "succeeded", timeout=90,
             message="the rescued job to succeed")
    done = DiagnosticJob.objects.get(pk=job.pk)
    assert done.attempts == 2
    outcomes = sorted(JobAttempt.objects.filter(job_id=job.pk).values_list("outcome", flat=True))
    assert outcomes == ["abandoned", "succeeded"]
    # Any message still pending for it (the redelivery of the killed one) must not run it again.
    time.sleep(2)
    assert DiagnosticJob.objects.get(pk=job.pk).attempts == 2
    assert second.proc.poll() is None


def test_beat_sweeper_resends_a_lost_message(worker_factory, make_user):
    """A queued job whose message never reached the broker is found by beat's sweeper and run."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from django.utils import timezone

    from conftest import ROOT, _test_db_env
    from core.models import DiagnosticJob

    user = make_user("ops", "admin")
    # A row with no message at all, as if the broker had lost it.
    job = DiagnosticJob.objects.create(owner=user, use_model=False,
                                       queued_at=timezone.now() - timezone.timedelta(minutes=30))
    env = dict(os.environ, **_test_db_env(), JOB_SWEEP_INTERVAL="1", JOB_REQUEUE_AFTER="1")
    worker_factory(env={"JOB_REQUEUE_AFTER": "1"}, concurrency=1, name="sweepw").start()
    beat = subprocess.Popen([sys.executable, "-m", "celery", "-A", "config.celery_app", "beat", "-l", "info",
                             "-s", str(Path(os.environ["VAR_DIR"]) / f"beat-{os.getpid()}")], cwd=ROOT,
                            env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: DiagnosticJob.objects.get(pk=job.pk).status == "succeeded", timeout=60,
                 message="beat's sweeper to re-send the lost job")
    finally:
        beat.terminate()
        beat.wait(timeout=20)
