"""Scorecard versions: load, train, store, activate, training jobs, and their signed artifacts.

A version's trained scorecard is stored in ``CreditModelVersion.artifact`` in the platform's one signed
format (:mod:`core.artifacts`, kind ``finance.scorecard``): the signature is checked before anything is
unpickled, so whoever can write to the database cannot run code on the workers. A version whose
artifact does not verify fails its jobs with ``model_artifact_refused``. Loaded scorecards are kept in
one :class:`core.artifacts.ArtifactCache` per process.
"""
from __future__ import annotations

import hashlib
import logging

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from apps.finance import ingest, scorecard
from apps.finance.errors import FinanceInputError
from apps.finance.models import CreditModelVersion, ModelTraining
from core import services as core_services
from core.artifacts import ArtifactCache, ArtifactError, artifact_pack, artifact_unpack, is_artifact
from core.audit import audit_record
from core.jobs import JobOutcome, PermanentJobError
from core.signing import (
    ArtifactSignatureError,
    artifact_sign,
    artifact_signed_with_current_key,
    artifact_verify,
)

logger = logging.getLogger(__name__)

SCORECARD_KIND = "finance.scorecard"
TRAINING_SEED = 0
RESIGN_HINT = ("an admin must retrain it, or run `manage.py resign_model_artifacts` after a SECRET_KEY "
               "rotation")

scorecards = ArtifactCache(size=8)


# --- artifacts -------------------------------------------------------------------------------------------
def _artifact_name(version_number) -> str:
    return f"scorecard v{version_number}"


def scorecard_artifact_pack(trained: scorecard.TrainedScorecard, *, metadata: dict | None = None) -> bytes:
    """A trained scorecard as signed artifact bytes (``core.artifacts``, kind ``finance.scorecard``)."""
    if not isinstance(trained, scorecard.TrainedScorecard):
        raise TypeError(f"expected a TrainedScorecard, got {type(trained).__name__}")
    return artifact_pack(trained, kind=SCORECARD_KIND,
                         metadata={"algorithm": trained.algorithm, **(metadata or {})})


def scorecard_artifact_unpack(blob: bytes, *, name: str = "scorecard") -> scorecard.TrainedScorecard:
    """The scorecard in signed artifact bytes. Raises :class:`core.signing.ArtifactSignatureError` when
    the signature does not verify and :class:`core.artifacts.ArtifactError` for another kind or corrupt
    bytes."""
    model = artifact_unpack(bytes(blob), kind=SCORECARD_KIND, name=name)
    if not isinstance(model, scorecard.TrainedScorecard):
        raise ArtifactError(f"{name}: holds a {type(model).__name__}, not a TrainedScorecard")
    return model


def scorecard_artifact_upgrade(blob: bytes, *, metadata: dict | None = None) -> bytes | None:
    """Old unsigned ``scorecard.dump`` bytes re-packed as a signed artifact; None when ``blob`` is already
    in the signed format. Raises :class:`apps.finance.scorecard.ModelFormatError` for bytes that are
    neither. Only for bytes this platform wrote itself before artifacts were signed (the data migration
    ``0002_sign_scorecard_artifacts``): they are unpickled unchecked."""
    blob = bytes(blob or b"")
    if blob and is_artifact(blob):
        return None
    return scorecard_artifact_pack(scorecard.load(blob), metadata=metadata)  # nosec B301 - migration only


def scorecard_load(version: CreditModelVersion) -> scorecard.TrainedScorecard:
    """The trained scorecard of a version (verified and deserialised once per process).

    Raises :class:`core.jobs.PermanentJobError` (``model_missing``) when the version has no stored model,
    :class:`core.signing.ArtifactSignatureError` when its artifact does not verify and
    :class:`core.artifacts.ArtifactError` when it is not a readable scorecard artifact.
    """
    name = _artifact_name(version.version)

    def load() -> scorecard.TrainedScorecard:
        blob = CreditModelVersion.objects.filter(pk=version.pk).values_list("artifact", flat=True).first()
        if not blob:
            raise PermanentJobError(f"{name} has no stored model", code="model_missing")
        return scorecard_artifact_unpack(bytes(blob), name=name)

    # created_at tells a version from an earlier one that had the same primary key (a deleted row)
    return scorecards.get((version.pk, version.version, version.created_at), load)


def scorecard_job_load(version: CreditModelVersion) -> scorecard.TrainedScorecard:
    """:func:`scorecard_load` for a job handler: a refused or unreadable artifact fails the job for good."""
    try:
        return scorecard_load(version)
    except ArtifactSignatureError as exc:
        raise PermanentJobError(f"the scorecard model was refused: {exc}; {RESIGN_HINT}",
                                code="model_artifact_refused") from None
    except ArtifactError as exc:
        raise PermanentJobError(f"the scorecard model cannot be used: {exc}",
                                code="model_artifact_invalid") from None


def credit_model_artifacts_resign() -> dict[str, list[str]]:
    """Re-sign every stored scorecard artifact with the current ``SECRET_KEY`` (the end of a key rotation).

    An artifact signed with a key in ``SECRET_KEY_FALLBACKS`` is written again, signed with the current
    key. One whose signature matches no key (or that is not signed at all) is left alone and reported:
    retrain that version. Returns the version labels by outcome (``manage.py resign_model_artifacts``).
    """
    stats: dict[str, list[str]] = {"resigned": [], "current": [], "refused": []}
    for pk, number in CreditModelVersion.objects.order_by("pk").values_list("pk", "version"):
        label = _artifact_name(number)
        stored = CreditModelVersion.objects.filter(pk=pk).values_list("artifact", flat=True).first()
        blob = bytes(stored or b"")
        try:
            if artifact_signed_with_current_key(blob, name=label):
                stats["current"].append(label)
                continue
            payload = artifact_verify(blob, name=label)
        except ArtifactSignatureError as exc:
            logger.error("%s: %s", label, exc)
            stats["refused"].append(str(exc))
            continue
        CreditModelVersion.objects.filter(pk=pk).update(artifact=artifact_sign(payload))
        stats["resigned"].append(label)
    return stats


# --- training ---------------------------------------------------------------------------------------------
def training_frame_read(data: bytes, *, filename: str = "training.csv"):
    """A labelled training CSV (bytes) as a DataFrame with catalogue column names.

    UTF-8 or GBK/GB18030; headers may be the field names or their English/Chinese labels; the label
    column ``creditability`` holds good/bad. Any bad row rejects the file (a model must not be
    trained on silently dropped rows): :class:`FinanceInputError` names the rows and columns.
    """
    parsed = ingest.parse_applications_csv(data, training=True, filename=filename)
    if parsed.file_errors:
        raise FinanceInputError("; ".join(parsed.file_errors), field="file")
    bad = parsed.invalid_rows
    if bad:
        shown = "; ".join(e for r in bad[:5] for e in r.errors[:2])
        more = f" (and {len(bad) - 5} more rows)" if len(bad) > 5 else ""
        raise FinanceInputError(f"{filename}: {len(bad)} row(s) cannot be used for training: {shown}{more}",
                                field="file")
    return parsed.to_dataframe()


def credit_model_train_compute(*, data: bytes, filename: str, seed: int = TRAINING_SEED,
                               algorithm: str = "auto") -> tuple[scorecard.TrainedScorecard, str]:
    """Train (no database writes): the trained scorecard and the SHA-256 of the uploaded bytes."""
    frame = training_frame_read(data, filename=filename)
    try:
        trained = scorecard.train_scorecard(frame, seed=seed, algorithm=algorithm)
    except scorecard.ScorecardError as exc:
        raise FinanceInputError(f"{filename}: {exc}", field="file") from None
    return trained, hashlib.sha256(data).hexdigest()


def credit_model_store(*, trained: scorecard.TrainedScorecard, data_sha256: str, filename: str,
                       trained_by=None, activate: bool = False, note: str = "", training_job: str = "",
                       request=None) -> CreditModelVersion:
    """Save a trained scorecard as the next version, signed (and activate it when asked).

    Audited once: ``train`` (and ``activate`` when asked, by :func:`credit_model_activate`).
    """
    report = trained.report
    headline = report["metrics"]["out_of_fold"]
    with transaction.atomic():
        latest = CreditModelVersion.objects.select_for_update().aggregate(v=Max("version"))["v"]
        next_version = (latest or 0) + 1
        artifact = scorecard_artifact_pack(trained, metadata={"version": next_version,
                                                              "data_sha256": data_sha256})
        version = CreditModelVersion.objects.create(
            version=next_version, algorithm=trained.algorithm, artifact=artifact,
            metadata={**trained.metadata, "selection": report.get("selection"),
                      "risk_levels": report.get("risk_levels"),
                      "feature_importance": report.get("feature_importance"),
                      "in_sample": report["metrics"].get("in_sample")},
            metrics={**headline, "curves": report["curves"]} if report.get("curves") else headline,
            fairness=report.get("fairness") or {},
            calibration=report.get("calibration") or [], calibration_png=trained.calibration_plot_png(),
            data_sha256=data_sha256, data_filename=filename[:255],
            data_rows=int(trained.metadata.get("rows", 0)), trained_by=trained_by, note=note[:300],
        )
        detail = {"version": version.version, "data_sha256": data_sha256, "metrics": headline}
        if training_job:
            detail["training_job"] = str(training_job)
        audit_record(actor=trained_by or "system", action="train", obj=version, detail=detail,
                     request=request)
        if activate:
            credit_model_activate(version=version, actor=trained_by, request=request)
    return version


def credit_model_train(*, data: bytes, filename: str, trained_by=None, activate: bool = False, note: str = "",
                       seed: int = TRAINING_SEED) -> CreditModelVersion:
    """Train a new scorecard version synchronously (management command, demo setup)."""
    trained, sha = credit_model_train_compute(data=data, filename=filename, seed=seed)
    return credit_model_store(trained=trained, data_sha256=sha, filename=filename, trained_by=trained_by,
                              activate=activate, note=note)


def credit_model_activate(*, version: CreditModelVersion, actor=None, request=None) -> CreditModelVersion:
    """Make ``version`` the one new assessments use (exactly one version is active); audited ``activate``."""
    with transaction.atomic():
        CreditModelVersion.objects.filter(is_active=True).exclude(pk=version.pk).update(is_active=False)
        CreditModelVersion.objects.filter(pk=version.pk).update(
            is_active=True, activated_at=timezone.now(),
            activated_by=actor if getattr(actor, "is_authenticated", False) else None,
        )
    version.refresh_from_db(fields=["is_active", "activated_at", "activated_by"])
    audit_record(actor=actor or "system", action="activate", obj=version, detail={"version": version.version},
                 request=request)
    return version


def credit_model_active_or_error() -> CreditModelVersion:
    """The active version (primary key and number only); :class:`FinanceInputError` when none is."""
    model = CreditModelVersion.objects.filter(is_active=True).only("pk", "version").first()
    if model is None:
        raise FinanceInputError("no scorecard version is active: an administrator must train and activate "
                                "one (Credit risk → Models, or `manage.py train_credit_model --activate`)",
                                field="model")
    return model


def model_training_create(*, owner, upload, activate: bool = False, note: str = "",
                          request=None) -> ModelTraining:
    """Queue training from an uploaded labelled CSV (the web page's asynchronous path); audited ``submit``."""
    job = ModelTraining(owner=owner, original_filename=getattr(upload, "name", "")[:255], activate=activate,
                        note=note[:300])
    job.data.save(f"{job.pk}.csv", upload, save=False)
    job.save()
    core_services.job_enqueue(job=job)
    audit_record(actor=owner, action="submit", obj=job, request=request,
                 detail={"filename": job.original_filename})
    return job


def model_training_process(job: ModelTraining) -> JobOutcome:
    """Job handler: train from the stored file; ``apply`` stores the version (once)."""
    with job.data.open("rb") as fh:
        data = fh.read()
    core_services.job_progress(job=job, fraction=0.1, message="training (5-fold cross-validation)")
    try:
        trained, sha = credit_model_train_compute(data=data, filename=job.original_filename or "training.csv")
    except FinanceInputError as exc:
        raise PermanentJobError(exc.message) from None
    holder: dict = {}

    def apply(row: ModelTraining) -> None:
        if row.credit_model_id:
            holder["version"] = row.credit_model.version
            return
        version = credit_model_store(trained=trained, data_sha256=sha, filename=row.original_filename,
                                     trained_by=row.owner, activate=row.activate, note=row.note,
                                     training_job=str(row.pk))
        row.credit_model = version
        holder["version"] = version.version

    headline = trained.report["metrics"]["out_of_fold"]
    return JobOutcome(
        result={"algorithm": trained.algorithm, "metrics": headline, "data_sha256": sha,
                "rows": trained.metadata.get("rows")},
        model_name="scorecard", model_version=trained.algorithm,
        timings={"training_s": trained.metadata.get("training_seconds", 0.0)}, apply=apply,
    )
