"""``manage.py train_failure_model`` and the first-run demo (``apps/manufacturing/demo.py``)."""
from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from apps.manufacturing import demo
from apps.manufacturing.models import FailureModelVersion, Prediction
from apps.manufacturing.tests.fixtures import *  # noqa: F403
from apps.manufacturing.tests.fixtures import cmapss_bytes
from core.models import Batch

pytestmark = pytest.mark.django_db


def test_train_command_stores_and_activates(tmp_path, fd001_frame):
    path = tmp_path / "history.txt"
    path.write_bytes(cmapss_bytes(fd001_frame, {u: 400 for u in range(1, 11)}))
    out = io.StringIO()
    call_command("train_failure_model", "--data", str(path), "--format", "cmapss", "--horizon", "20",
                 "--name", "ten engines", "--activate", stdout=out)
    version = FailureModelVersion.objects.get()
    assert version.is_active and version.horizon == 20 and version.name == "ten engines"
    assert version.metadata["machines"] == 10 and version.cv_metrics["oof_auc"] > 0.9
    assert f"stored version {version.model_version}" in out.getvalue()
    # the same data and seed give the same model (deterministic)
    call_command("train_failure_model", "--data", str(path), "--format", "cmapss", "--horizon", "20",
                 stdout=out)
    first, second = FailureModelVersion.objects.order_by("id")
    assert first.model_version == second.model_version and not second.is_active
    with pytest.raises(CommandError, match="no such file"):
        call_command("train_failure_model", "--data", str(tmp_path / "missing.txt"))
    bad = tmp_path / "bad.txt"
    bad.write_text("1 2 3\n4 5 6\n")
    with pytest.raises(CommandError, match="bad.txt"):
        call_command("train_failure_model", "--data", str(bad), "--format", "cmapss")


def test_demo_seed_queues_one_worked_example(make_user, active_model):
    owner = make_user("admin", "admin")
    out = io.StringIO()
    batch = demo.demo_seed(owner=owner, stdout=out)
    assert batch.original_filename == demo.DEMO_FILENAME and batch.file.name.endswith(".csv")
    assert "already present" in out.getvalue()  # the existing model is kept
    with batch.file.open("rb") as fh:
        header = fh.readline().decode()
    assert header.startswith("machine_id,cycle,op_setting_1")
    assert demo.demo_seed(owner=owner, stdout=out).pk == batch.pk  # idempotent
    assert Batch.objects.filter(app="manufacturing").count() == 1
    from apps.manufacturing import services

    services.batch_ingest(batch_id=batch.pk)
    assert Prediction.objects.filter(batch=batch).count() == len(demo.DEMO_ENGINES)


def test_key_rotation_resign_command_and_a_refused_artifact(settings, engineer_client, active_model,
                                                            fd001_frame, run_jobs, llm_off):
    """Rotate SECRET_KEY: the old model still loads via the fallback; resign_model_artifacts signs it
    anew, so the fallback can go; an artifact changed in storage fails its job with a clear message."""
    from apps.manufacturing import services
    from core.signing import artifact_signed_with_current_key

    old_key = settings.SECRET_KEY
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "rotated-" + "Zx9Yw8Vu" * 8, [old_key]
    services.failure_model_cache.clear()
    old_name = active_model.artifact.name
    assert services.failure_model_load(active_model) is not None  # readable through the fallback

    out = io.StringIO()
    call_command("resign_model_artifacts", stdout=out)
    assert "1 re-signed, 0 already current, 0 refused" in out.getvalue()
    version = FailureModelVersion.objects.get(pk=active_model.pk)
    assert version.artifact.name != old_name and not version.artifact.storage.exists(old_name)
    with version.artifact.open("rb") as fh:
        assert artifact_signed_with_current_key(fh.read())
    settings.SECRET_KEY_FALLBACKS = []
    services.failure_model_cache.clear()
    assert services.failure_model_load(version) is not None  # no fallback needed any more
    call_command("resign_model_artifacts", stdout=out)
    assert "0 re-signed, 1 already current, 0 refused" in out.getvalue()

    # someone with write access to the bucket swaps the file: the prediction fails alone, clearly
    with version.artifact.open("rb") as fh:
        blob = fh.read()
    with version.artifact.storage.open(version.artifact.name, "wb") as fh:
        fh.write(blob[:-8] + b"tampered")
    services.failure_model_cache.clear()
    batch = Batch.objects.get(pk=engineer_client.post("/api/v1/manufacturing/uploads/", {
        "file": io.BytesIO(cmapss_bytes(fd001_frame, {92: 150}))}, format="multipart").json()["id"])
    [prediction] = run_jobs(batch=batch)
    prediction = Prediction.objects.get(pk=prediction.pk)
    assert prediction.status == "failed" and prediction.error_code == "model_artifact_refused"
    assert "signature does not match" in prediction.error_message
    with pytest.raises(CommandError, match="retrain them"):
        call_command("resign_model_artifacts", stdout=out)


# --- the stored form of a failure model (core's signed artifact format; legacy files still load) -------
def _legacy_version(model, name="legacy model"):
    """A version stored the way it was before core's artifact format: signed ``fm.dump`` bytes."""
    from django.core.files.base import ContentFile

    from apps.manufacturing import failure_model as fm
    from core.signing import artifact_sign

    version = FailureModelVersion(name=name, model_version=model.metadata["model_version"],
                                  metadata=model.metadata, horizon=model.horizon,
                                  horizon_unit=model.horizon_unit)
    version.artifact.save("legacy.mfm", ContentFile(artifact_sign(fm.dump(model))), save=False)
    version.save()
    return version


def test_artifact_round_trip_in_core_format(active_model, trained_model_bytes):
    from apps.manufacturing import failure_model as fm
    from apps.manufacturing import services
    from core.artifacts import ArtifactError, artifact_header, artifact_pack, is_artifact

    with active_model.artifact.open("rb") as fh:
        blob = fh.read()
    assert is_artifact(blob)
    header = artifact_header(blob)  # readable without unpickling
    assert header["kind"] == services.ARTIFACT_KIND == "manufacturing.failure_model"
    assert header["metadata"]["model_version"] == active_model.model_version
    assert active_model.model_version == active_model.metadata["model_version"]
    assert header["metadata"]["horizon"] == 30
    services.failure_model_cache.clear()
    model = services.failure_model_load(active_model)
    assert isinstance(model, fm.FailureModel) and model.metadata == fm.load(trained_model_bytes).metadata
    assert services.failure_model_load(active_model) is model  # cached per process
    with pytest.raises(ArtifactError, match="not 'manufacturing.failure_model'"):
        services.failure_model_unpack(artifact_pack({"not": "a model"}, kind="finance.scorecard"))
    with pytest.raises(ArtifactError, match="not a failure model"):
        services.failure_model_unpack(artifact_pack({"not": "a model"}, kind=services.ARTIFACT_KIND))


def test_a_legacy_artifact_still_loads_and_predicts(db, trained_model_bytes, fd001_frame):
    from apps.manufacturing import failure_model as fm
    from apps.manufacturing import services

    version = _legacy_version(fm.load(trained_model_bytes))
    services.failure_model_cache.clear()
    model = services.failure_model_load(version)
    series = fd001_frame[fd001_frame["machine_id"] == "85"].drop(
        columns=["machine_id", "rul", "rul_capped"]).set_index("cycle")
    assert model.predict(series)["failure_probability"] > 0.8


def test_resign_converts_a_legacy_artifact(db, trained_model_bytes):
    from apps.manufacturing import failure_model as fm
    from apps.manufacturing import services
    from core.artifacts import artifact_header, is_artifact
    from core.models import AuditEvent

    version = _legacy_version(fm.load(trained_model_bytes))
    old_name = version.artifact.name
    stats = services.failure_model_artifacts_resign()
    label = f"{version.pk} legacy model ({version.model_version})"
    assert stats == {"resigned": [label], "current": [], "refused": []}
    version.refresh_from_db()
    assert version.artifact.name != old_name and not version.artifact.storage.exists(old_name)
    with version.artifact.open("rb") as fh:
        blob = fh.read()
    assert is_artifact(blob) and artifact_header(blob)["metadata"]["model_version"] == version.model_version
    services.failure_model_cache.clear()
    assert isinstance(services.failure_model_load(version), fm.FailureModel)
    assert AuditEvent.objects.filter(action="admin", object_id=str(version.pk)).count() == 1
    assert services.failure_model_artifacts_resign() == {"resigned": [], "current": [label], "refused": []}
