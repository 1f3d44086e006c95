"""The failure-model registry: trained models stored as signed artifacts, the active version, loading
(once per process) and re-signing after a ``SECRET_KEY`` rotation.

Artifacts use core's one signed format (:mod:`core.artifacts`, kind :data:`ARTIFACT_KIND`, the model's
metadata in the header, readable without unpickling). Files written before it, in the signed
``failure_model.dump`` form (signing magic + HMAC + ``failure_model.MAGIC`` header + pickle), still
load; :func:`failure_model_artifacts_resign` writes them again in the new format.
"""
from __future__ import annotations

import logging

from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from apps.manufacturing import failure_model as fm
from apps.manufacturing.models import FailureModelVersion
from core.artifacts import (
    ArtifactCache,
    ArtifactError,
    artifact_header,
    artifact_pack,
    artifact_unpack,
    is_artifact,
)
from core.audit import audit_record
from core.signing import (
    ArtifactSignatureError,
    artifact_sign,
    artifact_signed_with_current_key,
    artifact_verify,
)

logger = logging.getLogger(__name__)

ARTIFACT_KIND = "manufacturing.failure_model"
#: Trained models loaded in this process, keyed by (version id, artifact name).
failure_model_cache = ArtifactCache(size=4)


def failure_model_active() -> FailureModelVersion | None:
    return FailureModelVersion.objects.filter(is_active=True).first()


def failure_model_pack(model: fm.FailureModel) -> bytes:
    """A trained model as signed artifact bytes (core's format, kind :data:`ARTIFACT_KIND`)."""
    return artifact_pack(model, kind=ARTIFACT_KIND, metadata=model.metadata)


def failure_model_unpack(blob: bytes, *, name: str = "artifact") -> fm.FailureModel:
    """The model in stored bytes: core's artifact format, or the legacy signed ``fm.dump`` form.

    Raises :class:`core.signing.ArtifactSignatureError` when the signature matches no key, and
    :class:`core.artifacts.ArtifactError` when the bytes are not a readable failure model.
    """
    if is_artifact(blob):
        model = artifact_unpack(blob, kind=ARTIFACT_KIND, name=name)
    else:
        payload = artifact_verify(blob, name=name)  # legacy: verified before anything is unpickled
        try:
            model = fm.load(payload)  # nosec B301 - verified above
        except fm.ModelFormatError as exc:
            raise ArtifactError(f"{name}: {exc}") from None
    if not isinstance(model, fm.FailureModel):
        raise ArtifactError(f"{name}: holds a {type(model).__name__}, not a failure model")
    return model


def failure_model_load(version: FailureModelVersion) -> fm.FailureModel:
    """The trained model of a version (loaded once per process, see :data:`failure_model_cache`)."""
    name = version.artifact.name

    def read() -> fm.FailureModel:
        with version.artifact.open("rb") as fh:
            return failure_model_unpack(fh.read(), name=name)

    return failure_model_cache.get((version.pk, name), read)


def failure_model_register(*, model: fm.FailureModel, name: str, created_by=None, training_source: str = "",
                           activate: bool = False, cv_metrics: dict | None = None) -> FailureModelVersion:
    """Store a trained model as a new version (and activate it if asked)."""
    meta = model.metadata
    labelled = model.has_labels
    version = FailureModelVersion(
        name=name[:120], model_version=str(meta.get("model_version", ""))[:40],
        kind=str(meta.get("kind", "failure"))[:20], horizon=model.horizon if labelled else None,
        horizon_unit=model.horizon_unit if labelled else "", metadata=meta,
        cv_metrics=cv_metrics or dict(meta.get("metrics") or {}), training_source=training_source[:255],
        created_by=created_by,
    )
    version.artifact.save(f"{meta.get('model_version', 'model')}.mfm", ContentFile(failure_model_pack(model)),
                          save=False)
    version.save()
    if activate:
        failure_model_activate(version=version, user=created_by)
    return version


def failure_model_activate(*, version: FailureModelVersion, user=None, request=None) -> None:
    """Make ``version`` the model predictions use (audited: ``activate``; without a user, by "system")."""
    with transaction.atomic():
        FailureModelVersion.objects.filter(is_active=True).exclude(pk=version.pk).update(is_active=False)
        FailureModelVersion.objects.filter(pk=version.pk).update(is_active=True, activated_at=timezone.now())
        audit_record(actor=user or "system", action="activate", obj=version, request=request,
                     detail={"model_version": version.model_version})
    version.is_active = True


def failure_model_artifacts_resign() -> dict[str, list[str]]:
    """Write every stored model artifact anew in the current format, signed with the current
    ``SECRET_KEY`` (the end of a key rotation, and the migration of legacy ``fm.dump`` files).

    An artifact signed with a key in ``SECRET_KEY_FALLBACKS``, or a legacy file under any valid key, is
    written again under a new name and the old file deleted (``resigned``); one in the current format
    with the current key is left alone (``current``); one whose signature matches no key, or whose
    bytes cannot be read, is left alone and reported (``refused``: retrain that version). Each
    re-written artifact is audited (``admin``, by "system": the command runs without a user).
    """
    stats: dict[str, list[str]] = {"resigned": [], "current": [], "refused": []}
    for version in FailureModelVersion.objects.order_by("pk"):
        label = f"{version.pk} {version.name} ({version.model_version})"
        old_name = version.artifact.name
        with version.artifact.open("rb") as fh:
            blob = fh.read()
        try:
            new_blob = _resigned(blob, name=old_name)
        except (ArtifactSignatureError, ArtifactError) as exc:
            logger.error("failure model %s: %s", label, exc)
            stats["refused"].append(f"{label}: {exc}")
            continue
        if new_blob is None:
            stats["current"].append(label)
            continue
        version.artifact.save(old_name.rsplit("/", 1)[-1], ContentFile(new_blob), save=False)
        FailureModelVersion.objects.filter(pk=version.pk).update(artifact=version.artifact.name)
        version.artifact.storage.delete(old_name)
        audit_record(actor="system", action="admin", obj=version,
                     detail={"artifact": "re-signed", "from": old_name, "to": version.artifact.name})
        stats["resigned"].append(label)
    return stats


def _resigned(blob: bytes, *, name: str) -> bytes | None:
    """The artifact written anew (None: already current). A current-format artifact is signed again as
    it is (nothing unpickled); a legacy one is loaded (after its signature is checked) and packed."""
    if not is_artifact(blob):
        return failure_model_pack(failure_model_unpack(blob, name=name))
    if artifact_signed_with_current_key(blob, name=name):
        return None
    kind = artifact_header(blob, name=name).get("kind")
    if kind != ARTIFACT_KIND:
        raise ArtifactError(f"{name}: holds a {kind!r} model, not {ARTIFACT_KIND!r}")
    return artifact_sign(artifact_verify(blob, name=name))
