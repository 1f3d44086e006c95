"""Scorecard artifacts in the platform's one signed format: the round trip through the database, a tampered
or unsigned artifact refused (the job fails with ``model_artifact_refused``), the data migration that signs
old unsigned ``scorecard.dump`` bytes, and re-signing after a SECRET_KEY rotation."""
from __future__ import annotations

import importlib
import io

import pytest
from django.apps import apps as django_apps
from django.core.management import CommandError, call_command

from apps.finance import scorecard, services
from apps.finance.models import Assessment, CreditModelVersion
from apps.finance.services import credit_models
from apps.finance.tests.conftest import applicant_of, trained_scorecard
from core.artifacts import artifact_header, is_artifact
from core.models import JobStatus
from core.services import job_run_inline
from core.signing import ArtifactSignatureError

pytestmark = pytest.mark.django_db

migration = importlib.import_module("apps.finance.migrations.0002_sign_scorecard_artifacts")


@pytest.fixture(autouse=True)
def _fresh_cache():
    credit_models.scorecards.clear()
    yield
    credit_models.scorecards.clear()


def _stored(version: CreditModelVersion) -> bytes:
    return bytes(CreditModelVersion.objects.filter(pk=version.pk).values_list("artifact", flat=True).get())


def _store(version: CreditModelVersion, blob: bytes) -> None:
    CreditModelVersion.objects.filter(pk=version.pk).update(artifact=blob)
    credit_models.scorecards.clear()


def _run(user, row) -> Assessment:
    job = services.assessment_create(owner=user, applicant=applicant_of(row))
    job_run_inline(model=Assessment, job_id=str(job.pk), handler=services.assessment_process)
    job.refresh_from_db()
    return job


def test_signed_round_trip_through_the_database(credit_model, german_rows):
    blob = _stored(credit_model)
    assert is_artifact(blob)
    header = artifact_header(blob)
    assert header["kind"] == "finance.scorecard" == services.SCORECARD_KIND
    assert header["metadata"]["version"] == credit_model.version
    assert header["metadata"]["algorithm"] == credit_model.algorithm
    loaded = services.scorecard_load(credit_model)
    assert isinstance(loaded, scorecard.TrainedScorecard)
    assert services.scorecard_load(credit_model) is loaded  # one load per process (ArtifactCache)
    applicant = applicant_of(german_rows[0])
    assert loaded.predict(applicant) == trained_scorecard().predict(applicant)


@pytest.mark.parametrize("how", ["tampered", "unsigned", "other_key"])
def test_a_refused_artifact_fails_the_job_with_a_clear_code(how, make_user, credit_model, german_rows,
                                                            llm_off, settings):
    blob = _stored(credit_model)
    if how == "tampered":
        blob = blob[:-40] + bytes(b ^ 0xFF for b in blob[-40:])
    elif how == "unsigned":
        blob = scorecard.dump(trained_scorecard())
    else:
        settings.SECRET_KEY = "another key, not the one that signed the artifact"
    _store(credit_model, blob)
    with pytest.raises(ArtifactSignatureError):
        services.scorecard_load(credit_model)
    job = _run(make_user("ana", "finance"), german_rows[0])
    assert job.status == JobStatus.FAILED and job.error_code == "model_artifact_refused"
    assert "scorecard v1" in job.error_message and "resign_model_artifacts" in job.error_message
    assert job.result is None


def test_an_artifact_of_another_kind_fails_the_job(make_user, credit_model, german_rows, llm_off):
    from core.artifacts import artifact_pack

    _store(credit_model, artifact_pack({"not": "a scorecard"}, kind="manufacturing.other"))
    job = _run(make_user("ana", "finance"), german_rows[0])
    assert job.status == JobStatus.FAILED and job.error_code == "model_artifact_invalid"
    assert "not 'finance.scorecard'" in job.error_message


def test_the_migration_signs_old_unsigned_artifacts(credit_model, german_rows):
    old = scorecard.dump(trained_scorecard())  # what rows held before artifacts were signed
    assert not is_artifact(old)
    _store(credit_model, old)
    corrupt = CreditModelVersion.objects.create(version=99, algorithm="x", artifact=b"not a model")
    migration.sign_scorecard_artifacts(django_apps, None)
    signed = _stored(credit_model)
    assert is_artifact(signed) and artifact_header(signed)["metadata"]["version"] == credit_model.version
    applicant = applicant_of(german_rows[3])
    assert services.scorecard_load(credit_model).predict(applicant) == trained_scorecard().predict(applicant)
    assert _stored(corrupt) == b"not a model"  # left alone (its jobs are refused), the migration goes on
    migration.sign_scorecard_artifacts(django_apps, None)  # already signed: nothing changes
    assert _stored(credit_model) == signed
    migration.unsign_scorecard_artifacts(django_apps, None)  # reversible
    back = _stored(credit_model)
    assert not is_artifact(back)
    assert scorecard.load(back).predict(applicant) == trained_scorecard().predict(applicant)


def test_resign_after_a_key_rotation(credit_model, settings):
    old_key = settings.SECRET_KEY
    assert services.credit_model_artifacts_resign() == {"resigned": [], "current": ["scorecard v1"],
                                                         "refused": []}
    settings.SECRET_KEY = "the new key"
    settings.SECRET_KEY_FALLBACKS = [old_key]
    services.scorecard_load(credit_model)  # still verifies with the fallback key
    stats = services.credit_model_artifacts_resign()
    assert stats == {"resigned": ["scorecard v1"], "current": [], "refused": []}
    settings.SECRET_KEY_FALLBACKS = []
    credit_models.scorecards.clear()
    assert isinstance(services.scorecard_load(credit_model), scorecard.TrainedScorecard)

    out = io.StringIO()
    call_command("resign_model_artifacts", stdout=out)  # core's command asks the finance hook too
    assert "re-signed: finance" not in out.getvalue() and "0 refused" in out.getvalue()
    _store(credit_model, scorecard.dump(trained_scorecard()))  # unsigned: never signed blindly
    with pytest.raises(CommandError, match="finance: scorecard v1"):
        call_command("resign_model_artifacts", stdout=io.StringIO())
    assert not is_artifact(_stored(credit_model))


def test_the_finance_app_declares_the_resign_hook():
    from core.registry import suite_app

    assert suite_app("finance").hook("artifacts_resign") is services.credit_model_artifacts_resign
