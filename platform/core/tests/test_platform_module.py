"""`platform/` is a plain folder: Python's own `platform` module must survive Django and Celery."""
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def test_platform_folder_is_not_a_package():
    assert not (ROOT / "platform" / "__init__.py").exists()


def test_stdlib_platform_after_django_setup():
    import django

    django.setup()
    import platform

    assert platform.system() in {"Linux", "Darwin", "Windows"}
    assert Path(platform.__file__).parent != ROOT / "platform"


@pytest.mark.live
def test_stdlib_platform_inside_a_running_worker(celery_worker, make_user):
    """The diagnostic job reports platform.system() as seen inside the worker process."""
    from conftest import wait_for
    from core import services
    from core.models import DiagnosticJob

    user = make_user("ops", "admin")
    job = services.diagnostic_job_create(owner=user, use_model=False)
    wait_for(lambda: DiagnosticJob.objects.get(pk=job.pk).status == "succeeded", timeout=60,
             message="the diagnostic job")
    job.refresh_from_db()
    assert job.result["platform"] == __import__("platform").system()
