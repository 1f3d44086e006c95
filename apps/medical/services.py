"""Medical writes: uploads (web, REST, STOW-RS) → de-identified instances grouped into Study jobs →
features, key images and an AI draft → edit, sign, addenda → PDF, DICOM SR and FHIR outputs.

Privacy rules kept here:

* every file is de-identified (PS3.15 Annex E basic profile) in the ingest task, before anything
  else reads it; only the de-identified copy is stored, the raw upload is deleted once ingested;
* the original identifiers go to :class:`StudyIdentity` only;
* the prompt is built from de-identified features and a scrubbed indication, then checked once
  more against the study's own identifiers before it is sent (fail closed);
* log lines name job, batch and study ids, never file names, patient data or UIDs.
"""
from __future__ import annotations

import contextlib
import hashlib
import hmac
import io
import logging
import os
import tempfile
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile, File
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from apps.medical import deidentify as deid
from apps.medical.imaging import ImagingError, render_png, series_features, study_summary
from apps.medical.ingest import (
    FileError,
    IngestError,
    ZipLimits,
    ZipRefused,
    group_instances,
    ingest,
    iter_zip_members,
    load_dataset,
    read_dataset,
)
from apps.medical.models import Addendum, Instance, KeyImage, Report, Series, Study, StudyIdentity
from apps.medical.prompting import (
    REPORT_FIELDS,
    ReportError,
    draft_variables,
    normalize_report,
    postcheck,
    template_name_for,
)
from core import services as core_services
from core.jobs import JobOutcome, PermanentJobError
from core.llm import llm_step
from core.models import Batch, JobStatus

logger = logging.getLogger(__name__)
# Original identifiers must not reach a log line: highdicom logs the UIDs of the data sets it copies
# from at INFO, and pydicom's validation warnings quote element values (a patient name with a bad
# character, an invalid UID): settings.LOGGING keeps both quiet. Python warnings are silenced around
# the DICOM work below for the same reason (the worker's stderr is its log).

#: ingest error codes that mean "not an image, nothing wrong with it" (listed as skipped, not failed)
SKIP_CODES = frozenset({"no_pixel_data", "dicomdir"})
#: the draft must stay small: the embedded model runs on CPU
DRAFT_MAX_TOKENS = int(getattr(settings, "MEDICAL_DRAFT_MAX_TOKENS", 300))
#: discourages the small embedded model from repeating itself until max_tokens (measured: it then stops)
DRAFT_FREQUENCY_PENALTY = float(getattr(settings, "MEDICAL_DRAFT_FREQUENCY_PENALTY", 0.5))
KEY_IMAGES_PER_SERIES = 3
MAX_KEY_IMAGES_PER_STUDY = 12
LANGUAGES = ("en", "zh-hans")


class UploadRefused(Exception):
    """The whole upload is refused before anything is stored (hostile ZIP, nothing usable)."""

    def __init__(self, message: str, *, code: str = "upload_refused"):
        super().__init__(message)
        self.code = code


# --- configuration -------------------------------------------------------------------------------
def deid_salt() -> bytes:
    """The per-installation secret behind replacement UIDs and pseudonyms.

    ``MEDICAL_DEID_SALT`` when set (keep it stable: changing it changes every replacement UID),
    otherwise derived from ``SECRET_KEY`` so that it is secret and stable per installation.
    """
    explicit = getattr(settings, "MEDICAL_DEID_SALT", "") or os.environ.get("MEDICAL_DEID_SALT", "")
    if explicit:
        return explicit.encode()
    return hmac.new(settings.SECRET_KEY.encode(), b"medical-deidentification-salt", hashlib.sha256).digest()


def zip_limits() -> ZipLimits:
    """ZIP limits: members, total expanded size (default 2 GiB or 10× the upload limit), ratio."""
    total = int(getattr(settings, "MEDICAL_ZIP_MAX_UNCOMPRESSED", 0) or max(2 * 1024**3, 10 * settings.UPLOAD_MAX_BYTES))
    return ZipLimits(max_members=int(getattr(settings, "MEDICAL_ZIP_MAX_MEMBERS", 20_000)),
                     max_total_uncompressed=total, max_member_uncompressed=min(total, 2 * 1024**3))


def organization_name() -> str:
    return str(getattr(settings, "MEDICAL_ORGANIZATION", "") or os.environ.get("MEDICAL_ORGANIZATION", "")
               or "Radiology")


# --- storage helpers -----------------------------------------------------------------------------
@contextlib.contextmanager
def local_path(name: str) -> Iterator[str]:
    """A local file path for a stored file (the file itself on disk storage, a temp copy on S3)."""
    try:
        yield default_storage.path(name)
        return
    except NotImplementedError:
        pass
    fd, tmp = tempfile.mkstemp(suffix=".dcm")
    try:
        with os.fdopen(fd, "wb") as out, default_storage.open(name, "rb") as src:
            for chunk in iter(lambda: src.read(1 << 20), b""):
                out.write(chunk)
        yield tmp
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


# --- uploads -------------------------------------------------------------------------------------
@dataclass
class UploadFile:
    """One file of an upload: a display name and a readable, seekable file object."""

    name: str
    file: Any
    size: int


def as_upload_files(files: Iterable[Any]) -> list[UploadFile]:
    """Django UploadedFiles, ``(name, bytes)`` pairs or Django Files → :class:`UploadFile`."""
    out = []
    for item in files:
        if isinstance(item, tuple):
            name, data = item
            out.append(UploadFile(str(name), io.BytesIO(bytes(data)), len(data)))
        else:
            size = getattr(item, "size", None)
            out.append(UploadFile(str(getattr(item, "name", "") or "upload"), item, int(size or 0)))
    return out


def _is_zip(fileobj) -> bool:
    fileobj.seek(0)
    head = fileobj.read(4)
    fileobj.seek(0)
    return head in (b"PK\x03\x04", b"PK\x05\x06")


def upload_precheck(files: list[UploadFile]) -> None:
    """Refuse hostile ZIPs before anything is stored: member paths climbing out of the archive,
    symlinks, encrypted members and declared sizes or ratios past the limits (a bomb whose headers
    lie is still stopped while it is expanded in the ingest task)."""
    limits = zip_limits()
    for f in files:
        if not _is_zip(f.file):
            continue
        members = iter_zip_members(f.file, archive_name=f.name, limits=limits)
        try:
            next(members, None)
        except ZipRefused as exc:
            raise UploadRefused(str(exc), code=exc.code) from None
        finally:
            members.close()
            f.file.seek(0)


def upload_create(*, owner, files: Iterable[Any], indication: str = "", language: str = "en",
                  source: str = "upload") -> Batch:
    """Store the uploaded files as one batch and queue its ingest (one Study job per study in it).

    Raises :class:`UploadRefused` for a hostile ZIP (nothing is stored then).
    """
    items = as_upload_files(files)
    if not items:
        raise UploadRefused("no files", code="upload_missing")
    upload_precheck(items)
    language = language if language in LANGUAGES else "en"
    batch = Batch(owner=owner, app="medical", kind=Study.job_type,
                  original_filename=(items[0].name if len(items) == 1 else f"{len(items)} files")[:255],
                  size_bytes=sum(f.size for f in items))
    stored = []
    for n, item in enumerate(items):
        item.file.seek(0)
        path = default_storage.save(f"medical/uploads/{batch.id}/{n:05d}_{core_services.safe_name(item.name)}", File(item.file))
        stored.append({"name": item.name[:500], "path": path, "size": item.size})
    batch.options = {"files": stored, "indication": (indication or "")[:4000], "language": language,
                     "source": source}
    batch.save()
    core_services.batch_enqueue(batch=batch)
    return batch


def _fail_items(batch: Batch, errors: list[FileError]) -> None:
    for e in errors:
        Instance.objects.create(batch=batch, file_name=e.name[:500],
                                status=Instance.Status.SKIPPED if e.code in SKIP_CODES else Instance.Status.ERROR,
                                error_code=e.code[:64], error_message=e.message)


def upload_ingest(*, batch_id) -> str:
    """The ``medical.batch_ingest`` task body (core's ingest routine with the reader below)."""
    return core_services.batch_ingest(batch_id=batch_id, read=_upload_read)


def _upload_read(batch: Batch) -> core_services.BatchItems:
    """Parse, de-identify and group an upload: one Study job per study in it; a file that cannot be used
    is an Instance row in error naming the file."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _upload_read_files(batch)


def _upload_read_files(batch: Batch) -> core_services.BatchItems:
    files = list(batch.options.get("files") or [])
    read_errors: list[FileError] = []

    def items() -> Iterator[tuple[str, bytes]]:
        for f in files:
            try:
                with default_storage.open(f["path"], "rb") as fh:
                    data = fh.read()
            except OSError as exc:
                read_errors.append(FileError(f["name"], "invalid", f"the stored upload cannot be read ({exc})"))
                continue
            yield f["name"], data

    # A redelivered task starts again from the raw files: drop what an earlier attempt stored.
    _delete_prefix(f"medical/studies/{batch.id}/")
    Instance.objects.filter(batch=batch).delete()
    with tempfile.TemporaryDirectory(prefix="medical-ingest-") as tmp:
        result = ingest(items(), dest_dir=tmp, limits=zip_limits(), check_pixels=True)
        errors = read_errors + list(result.errors)
        studies = group_instances(result.instances)
        grouped = {id(i) for s in studies for g in s.series for i in g.instances}
        duplicates = [i for i in result.instances if id(i) not in grouped]
        built = [_deidentify_study(batch, group) for group in studies]
    for plan in built:
        errors.extend(plan.errors)

    def create() -> list[Study]:
        jobs = [plan.save() for plan in built if plan.study is not None]
        _fail_items(batch, errors)
        for inst in duplicates:
            Instance.objects.create(batch=batch, file_name=inst.name[:500], status=Instance.Status.SKIPPED,
                                    error_code="duplicate",
                                    error_message="the same SOP Instance UID was uploaded twice: ignored",
                                    frames=inst.number_of_frames)
        logger.info("medical upload %s ingested: %d studies, %d file problems", batch.pk, len(jobs), len(errors))
        return jobs

    return core_services.BatchItems(
        create=create,
        errors=[str(e) for e in errors if e.code not in SKIP_CODES],
        warnings=[str(e) for e in errors if e.code in SKIP_CODES]
        + [f"{i.name}: duplicate SOP Instance UID, ignored" for i in duplicates],
        on_commit=lambda: _delete_raw_uploads(files),
    )


def _delete_raw_uploads(files: list[dict]) -> None:
    """Only the de-identified copies are kept once an upload has been ingested. A raw file that cannot be
    deleted still holds identities: it is logged (by its storage path, not its name) for an operator."""
    for f in files:
        try:
            default_storage.delete(f["path"])
        except Exception as exc:
            logger.error("medical: could not delete the raw upload %s (%s); delete it by hand",
                         f.get("path"), type(exc).__name__)


def _delete_prefix(prefix: str) -> None:
    try:
        dirs, names = default_storage.listdir(prefix)
    except (FileNotFoundError, NotImplementedError, OSError):
        return
    for name in names:
        with contextlib.suppress(Exception):
            default_storage.delete(prefix + name)
    for d in dirs:
        _delete_prefix(f"{prefix}{d}/")


@dataclass
class _StudyPlan:
    """A de-identified study ready to be saved (files already in storage)."""

    study: Study | None
    identity: StudyIdentity | None
    series: list[tuple[Series, list[Instance]]]
    errors: list[FileError]

    def save(self) -> Study:
        self.study.save(force_insert=True)
        self.identity.study = self.study
        self.identity.save()
        for series, instances in self.series:
            series.study = self.study
            series.save()
            for inst in instances:
                inst.study, inst.series = self.study, series
            Instance.objects.bulk_create(instances)
        return self.study


def _deidentify_study(batch: Batch, group) -> _StudyPlan:
    """De-identify every instance of one study group and store the copies; build unsaved rows."""
    salt = deid_salt()
    options = batch.options or {}
    study = Study(owner_id=batch.owner_id, batch=batch, indication=options.get("indication", ""),
                  language=options.get("language", "en"), source=options.get("source", "upload")[:16])
    identity: StudyIdentity | None = None
    uid_map: dict[str, str] = {}
    series_rows: list[tuple[Series, list[Instance]]] = []
    errors: list[FileError] = []
    modalities: list[str] = []
    flags: set[str] = set()
    for s_index, sgroup in enumerate(group.series):
        rows: list[Instance] = []
        series = Series(order=s_index, series_number=sgroup.series_number, modality=sgroup.modality[:16])
        for order, ing in enumerate(sgroup.instances):
            try:
                ds = load_dataset(ing)
                result = deid.deidentify(ds, salt, in_place=True)
                buf = io.BytesIO()
                try:
                    result.dataset.save_as(buf, enforce_file_format=True)
                except Exception:
                    buf = io.BytesIO()
                    result.dataset.save_as(buf, enforce_file_format=False)
            except IngestError as exc:
                errors.append(FileError(exc.name, exc.code, exc.message))
                continue
            except Exception as exc:  # one file that cannot be de-identified fails alone
                errors.append(FileError(ing.name, "deidentify_failed",
                                        f"cannot be de-identified ({type(exc).__name__}: {str(exc)[:200]})"))
                continue
            out = result.dataset
            if identity is None:
                identity = _identity_from(result.identifiers)
                study.study_instance_uid = str(out.StudyInstanceUID)
                study.description = str(out.get("StudyDescription", "") or "")[:200]
                study.body_part = str(out.get("BodyPartExamined", "") or "")[:64]
            uid_map.update(result.identifiers.get("uid_map", {}))
            flags.update(result.flags)
            if not series.series_instance_uid:
                series.series_instance_uid = str(out.SeriesInstanceUID)
                series.description = str(out.get("SeriesDescription", "") or "")[:200]
            sop = str(out.SOPInstanceUID)
            path = default_storage.save(f"medical/studies/{batch.id}/{study.id}/{s_index:03d}/{order:05d}.dcm",
                                        ContentFile(buf.getvalue()))
            rows.append(Instance(
                batch=batch, file_name=ing.name[:500], status=Instance.Status.OK, warnings=ing.warnings[:20],
                sop_instance_uid=sop, sop_class_uid=ing.sop_class_uid[:64], modality=ing.modality[:16],
                transfer_syntax=ing.transfer_syntax_name[:100],
                photometric_interpretation=ing.photometric_interpretation[:32], rows=ing.rows, columns=ing.columns,
                frames=ing.number_of_frames, instance_number=ing.instance_number, order=order,
                size_bytes=len(buf.getvalue()), file=path,
            ))
            del ds, out, result, buf
        if rows:
            series.instance_count = len(rows)
            series.frame_count = sum(r.frames for r in rows)
            if series.modality and series.modality not in modalities:
                modalities.append(series.modality)
            series_rows.append((series, rows))
    if identity is None:
        return _StudyPlan(None, None, [], errors)
    identity.identifiers["uid_map"] = uid_map
    identity.original_study_instance_uid = str(group.study_instance_uid)[:64]
    study.modality = "/".join(modalities)[:64]
    study.series_count = len(series_rows)
    study.instance_count = sum(len(r) for _, r in series_rows)
    study.frame_count = sum(s.frame_count for s, _ in series_rows)
    study.flags = sorted(flags)
    return _StudyPlan(study, identity, series_rows, errors)


def _first(value: Any) -> str:
    if isinstance(value, list):
        return str(value[0]) if value else ""
    return "" if value is None else str(value)


def _identity_from(identifiers: dict[str, Any]) -> StudyIdentity:
    return StudyIdentity(
        patient_name=_first(identifiers.get("patient_name"))[:200],
        patient_id=_first(identifiers.get("patient_id"))[:200],
        patient_birth_date=_first(identifiers.get("patient_birth_date"))[:32],
        patient_sex=_first(identifiers.get("patient_sex"))[:16],
        accession_number=_first(identifiers.get("accession_number"))[:64],
        study_date=_first(identifiers.get("study_date"))[:32],
        institution_name=_first(identifiers.get("institution_name"))[:200],
        referring_physician_name=_first(identifiers.get("referring_physician_name"))[:200],
        pseudonym=_first(identifiers.get("pseudonym"))[:64],
        identifiers={k: v for k, v in identifiers.items() if k != "uid_map"},
    )


# --- the study job -------------------------------------------------------------------------------
def _series_sources(instances: list[Instance]) -> Iterator[str]:
    """Local paths of a series' de-identified files, one at a time (a temp copy lives only while used)."""
    for inst in instances:
        with local_path(inst.file.name) as path:
            yield path


def _fallback_draft(summary: dict[str, Any], reason: str, lang: str) -> dict[str, Any]:
    modalities = ", ".join(summary.get("modalities") or []) or "imaging"
    frames = summary.get("total_frames") or 0
    if lang == "zh-hans":
        return {"technique": f"{modalities} 检查,共 {summary.get('series_count', 0)} 个序列,{frames} 帧图像。",
                "comparison": "", "findings": [], "impression": f"无 AI 草稿:{reason}。请根据图像书写报告。",
                "recommendations": [], "limitations": ""}
    return {"technique": f"{modalities} examination, {summary.get('series_count', 0)} series, {frames} images.",
            "comparison": "", "findings": [],
            "impression": f"No AI draft: {reason}. Write the report from the images.",
            "recommendations": [], "limitations": ""}


def study_process(study: Study) -> JobOutcome:
    """Features of each series (streamed slice by slice), key images, then the constrained AI draft."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _study_process(study)


def _study_process(study: Study) -> JobOutcome:
    timings: dict[str, float] = {}
    started = timezone.now()
    series_rows = list(study.series.order_by("order"))
    total = sum(s.frame_count for s in series_rows) or 1
    done = 0
    features_list: list[dict[str, Any]] = []
    series_updates: dict[int, dict[str, Any]] = {}
    key_images: list[dict[str, Any]] = []
    problems: list[str] = []
    for series in series_rows:
        instances = list(series.instances.filter(status=Instance.Status.OK).order_by("order"))
        by_sop = {i.sop_instance_uid: i for i in instances}
        try:
            result = series_features(_series_sources(instances), key_images=KEY_IMAGES_PER_SERIES)
        except ImagingError as exc:
            series_updates[series.pk] = {"features": None, "error_message": exc.message}
            problems.append(f"series {series.order + 1}: {exc.message}")
            continue
        features = result.features
        for err in features.get("errors") or []:
            problems.append(f"series {series.order + 1}: {err}")
        series_updates[series.pk] = {"features": features, "error_message": ""}
        features_list.append(features)
        for k in result.key_images:
            key_images.append({"series_id": series.pk, "instance": by_sop.get(k.sop_instance_uid), **k.meta(),
                               "png": k.png})
        done += series.frame_count
        core_services.job_progress(job=study, fraction=0.7 * done / total,
                                   message=f"series {series.order + 1} of {len(series_rows)} read")
    timings["features_s"] = round((timezone.now() - started).total_seconds(), 3)
    if not features_list:
        raise PermanentJobError("no series could be read: " + "; ".join(problems[:5]), code="undecodable")
    summary = study_summary(features_list)
    identity = StudyIdentity.objects.filter(study=study).first()
    phi = deid.phi_strings({**(identity.identifiers if identity else {}),
                            "uid_map": (identity.identifiers if identity else {}).get("uid_map", {})})
    if identity is not None:
        phi |= {s for s in (identity.patient_name, identity.patient_id, identity.patient_birth_date,
                            identity.accession_number, identity.original_study_instance_uid) if len(s) >= 3}
    lang = study.language if study.language in LANGUAGES else "en"
    variables = draft_variables(summary, study.indication, lang, phi=phi)
    template_name = f"medical.{template_name_for(summary.get('modalities') or [study.modality])}"
    result_doc: dict[str, Any] = {"summary": _summary_for_result(summary), "problems": problems[:50],
                                  "indication_sent": variables["indication"], "language": lang}
    outcome = JobOutcome(result=result_doc, timings=timings)
    ai_generated = False
    draft: dict[str, Any]
    if not settings.LLM_ENABLED:
        draft = _fallback_draft(summary, "the language model is disabled" if lang == "en" else "语言模型已关闭", lang)
        result_doc["llm"] = {"enabled": False, "note": "LLM_ENABLED is false: no AI draft was written"}
    else:
        core_services.job_progress(job=study, fraction=0.75, message="writing the draft")
        step = llm_step(template=template_name, language=lang, variables=variables, max_tokens=DRAFT_MAX_TOKENS,
                        validate=_draft_valid, privacy=lambda messages: deid.find_phi(messages, phi),
                        frequency_penalty=DRAFT_FREQUENCY_PENALTY,
                        final_attempt=study.attempts >= settings.JOB_MAX_ATTEMPTS)
        timings["llm_s"] = round(step.latency_s, 3)
        outcome.prompt_template, outcome.prompt_version = step.template, step.template_version
        outcome.model_name = step.model
        if step.ok:
            draft = step.value
            ai_generated = True
        else:
            reason = {("en", True): "the model's answer was unusable", ("en", False): "the model was unavailable",
                      ("zh-hans", True): "模型回答不可用", ("zh-hans", False): "模型不可用"}[lang, step.status == "rejected"]
            draft = _fallback_draft(summary, reason, lang)
            problems.extend(f"the model's draft was not usable: {p}" for p in step.problems)
        if ai_generated and step.truncated:
            note = (f"The AI draft was cut at {DRAFT_MAX_TOKENS} tokens and may be incomplete." if lang == "en"
                    else f"AI 草稿在 {DRAFT_MAX_TOKENS} 个词元处被截断,可能不完整。")
            draft["limitations"] = " ".join(x for x in (draft.get("limitations", ""), note) if x)
        result_doc["llm"] = {"enabled": True, **step.meta()}
    draft = normalize_report(draft)
    check_warnings = postcheck(draft, summary, variables["indication"]) if ai_generated else []
    if ai_generated and result_doc["llm"].get("truncated"):
        check_warnings.append(f"the model's answer was cut at {DRAFT_MAX_TOKENS} tokens; the draft may be incomplete")
    result_doc["draft"] = draft
    result_doc["postcheck_warnings"] = check_warnings
    result_doc["ai_generated"] = ai_generated
    outcome.status = JobStatus.NEEDS_REVIEW if (check_warnings or problems or not ai_generated) else JobStatus.SUCCEEDED
    first = features_list[0]
    outcome.fields = {
        "body_part": (", ".join(summary.get("body_parts") or []) or study.body_part)[:64],
        "description": (summary.get("study_description") or study.description or "")[:200],
        "flags": sorted(set(study.flags) | ({"burned_in_annotation"} if summary.get("burned_in_annotation") else set())),
    }
    if not study.modality:
        outcome.fields["modality"] = first.get("modality", "")[:64]

    def apply(row: Study) -> None:
        for series_id, values in series_updates.items():
            Series.objects.filter(pk=series_id).update(**values)
        KeyImage.objects.filter(study=row).delete()
        for order, k in enumerate(key_images[:MAX_KEY_IMAGES_PER_STUDY]):
            inst = k["instance"]
            KeyImage.objects.create(study=row, series_id=k["series_id"], instance=inst,
                                    sop_instance_uid=k["sop_instance_uid"], frame=k["frame"], index=k["index"],
                                    order=order, window=k["window"], width=k["width"], height=k["height"],
                                    png=k["png"])
        report = Report.objects.filter(study=row).first()
        if report is not None and report.is_final:
            return
        now = timezone.now()
        Report.objects.update_or_create(study=row, defaults={
            "status": Report.Status.DRAFT, "ai_generated": ai_generated, "ai_sections": draft if ai_generated else None,
            "sections": draft, "language": lang, "postcheck_warnings": check_warnings, "edits": [], "edited_by": None,
            "edited_at": None, "created_at": now, "updated_at": now,
        })

    outcome.apply = apply
    return outcome


def _draft_valid(parsed: Any) -> dict[str, Any]:
    """The model's draft as report sections (:class:`ReportError`, a ValueError, when it is not one)."""
    if not isinstance(parsed, dict):
        raise ReportError("report", "the answer is not a JSON object")
    return normalize_report(parsed)


def _summary_for_result(summary: dict[str, Any]) -> dict[str, Any]:
    """The study summary without bulky key-image metadata (it has its own table)."""
    out = dict(summary)
    out["series"] = [{k: v for k, v in s.items() if k not in ("key_images",)} for s in summary.get("series", [])]
    return out


# --- the report workflow ----------------------------------------------------------------------------
class ReportLocked(Exception):
    """A signed report is never edited again: add an addendum instead."""


def report_edit(*, report: Report, user, sections: dict[str, Any]) -> Report:
    """Replace the draft's sections (validated); record who changed which sections."""
    with transaction.atomic():
        report = Report.objects.select_for_update().get(pk=report.pk)
        if report.is_final:
            raise ReportLocked("this report is signed and final; add an addendum instead")
        merged = {**report.sections, **{k: v for k, v in sections.items() if k in REPORT_FIELDS}}
        clean = normalize_report(merged)
        changed = [k for k in REPORT_FIELDS if clean.get(k) != report.sections.get(k)]
        if not changed:
            return report
        now = timezone.now()
        report.sections = clean
        report.edits = [*report.edits, {"at": now.isoformat(timespec="seconds"), "by": user.get_username(),
                                        "sections": changed}][-200:]
        report.edited_by, report.edited_at, report.updated_at = user, now, now
        report.save()
    return report


def report_sign(*, report: Report, user, name: str, organization: str = "") -> Report:
    """Sign (name and time): the report becomes final and is never edited again."""
    name = (name or "").strip()
    if not name:
        raise ValueError("the signer's name is required")
    with transaction.atomic():
        report = Report.objects.select_for_update().get(pk=report.pk)
        if report.is_final:
            raise ReportLocked("this report is already signed")
        normalize_report(report.sections)
        now = timezone.now()
        report.status = Report.Status.FINAL
        report.signed_by, report.signer_name = user, name[:200]
        report.signer_organization = (organization or organization_name()).strip()[:200]
        report.signed_at = now
        report.updated_at = now
        report.save()
    return report


def addendum_add(*, report: Report, user, text: str, name: str = "") -> Addendum:
    text = (text or "").strip()
    if not text:
        raise ValueError("the addendum text is empty")
    if not report.is_final:
        raise ValueError("a draft is edited directly; addenda are for signed reports")
    return Addendum.objects.create(report=report, text=text[:20000], author=user,
                                   author_name=((name or "").strip() or user.get_full_name() or user.get_username())[:200])


# --- outputs ---------------------------------------------------------------------------------------
def _signature(report: Report):
    from apps.medical.sr import Signature

    if not report.is_final:
        return None
    return Signature(name=report.signer_name, organization=report.signer_organization or organization_name(),
                     signed_at=report.signed_at)


def _version_uid(report: Report, kind: str, identified: bool) -> str:
    """A stable SOP Instance UID per report version (same content → same UID on every download)."""
    from pydicom.uid import generate_uid

    return str(generate_uid(entropy_srcs=[str(report.pk), kind, report.status, str(report.signed_at),
                                          str(report.addenda.count()), str(identified),
                                          report.updated_at.isoformat()]))


def _sr_series_uid(report: Report) -> str:
    if not report.sr_series_instance_uid:
        from pydicom.uid import generate_uid

        uid = str(generate_uid())
        Report.objects.filter(pk=report.pk, sr_series_instance_uid="").update(sr_series_instance_uid=uid)
        report.refresh_from_db(fields=["sr_series_instance_uid"])
    return report.sr_series_instance_uid


def _headers(study: Study, identified: bool) -> list:
    identity = StudyIdentity.objects.filter(study=study).first()
    out = []
    for inst in study.instances.filter(status=Instance.Status.OK).order_by("series__order", "order"):
        with local_path(inst.file.name) as path:
            ds = read_dataset(inst.file_name, path, stop_before_pixels=True)
        if identified and identity is not None:
            ds = deid.reidentify_header(ds, identity.identifiers)
        out.append(ds)
    return out


def _uid_back(identity: StudyIdentity | None, uid: str, identified: bool) -> str:
    if not identified or identity is None:
        return uid
    reverse = {new: old for old, new in identity.identifiers.get("uid_map", {}).items()}
    return reverse.get(uid, uid)


def study_sr_bytes(*, study: Study, identified: bool = True) -> bytes:
    """DICOM Comprehensive SR: PARTIAL/UNVERIFIED for a draft, COMPLETE/VERIFIED once signed.

    ``identified`` (the default, for the hospital's PACS) references the original study, series and
    instance UIDs and carries the patient module; otherwise the de-identified ones.
    """
    from apps.medical.sr import build_sr

    report = study.report
    identity = StudyIdentity.objects.filter(study=study).first()
    headers = _headers(study, identified)
    keys = [_uid_back(identity, k.sop_instance_uid, identified) for k in study.key_images.all()]
    keys = list(dict.fromkeys(keys))
    return build_sr(report.sections, headers, signature=_signature(report), key_image_uids=keys,
                    addenda=[a.as_dict() for a in report.addenda.all()],
                    series_instance_uid=_sr_series_uid(report),
                    sop_instance_uid=_version_uid(report, "sr", identified), model_name=study.model_name or None,
                    institution_name=(identity.institution_name or None) if identified and identity else None)


def study_pdf_bytes(*, study: Study, identified: bool = True) -> bytes:
    from apps.medical.report_pdf import render_pdf

    report = study.report
    identity = StudyIdentity.objects.filter(study=study).first()
    if identified and identity is not None:
        parts = [f"Patient: {identity.patient_name or '-'}", f"ID: {identity.patient_id or '-'}",
                 f"Birth date: {identity.patient_birth_date or '-'}", f"Accession: {identity.accession_number or '-'}",
                 f"Study date: {identity.study_date or '-'}"]
    else:
        parts = [f"Study {study.study_instance_uid}", f"Pseudonym: {identity.pseudonym if identity else '-'}"]
    parts.append(" ".join(x for x in (study.modality, study.body_part, study.description) if x))
    images = [(bytes(k.png), f"series {k.series.order + 1}, image {k.index + 1}") for k in
              study.key_images.select_related("series")[:6]]
    return render_pdf(report.sections, signature=_signature(report), key_images=images,
                      addenda=[a.as_dict() for a in report.addenda.all()],
                      title="Radiology report" if report.language != "zh-hans" else "影像诊断报告",
                      study_label=" · ".join(p for p in parts if p), review_notes=report.postcheck_warnings,
                      language=report.language)


def study_fhir(*, study: Study, identified: bool = True) -> dict[str, Any]:
    from apps.medical.fhir import build_diagnostic_report

    report = study.report
    identity = StudyIdentity.objects.filter(study=study).first()
    study_uid = study.study_instance_uid
    subject = None
    if identified and identity is not None:
        study_uid = identity.original_study_instance_uid or study_uid
        if identity.patient_id or identity.patient_name:
            subject = {"display": identity.patient_name or identity.patient_id}
            if identity.patient_id:
                subject["identifier"] = {"value": identity.patient_id}
    return build_diagnostic_report(report.sections, study_instance_uid=study_uid, signature=_signature(report),
                                   issued=report.updated_at, report_id=str(report.study_id),
                                   sr_sop_instance_uid=_version_uid(report, "sr", identified), subject=subject,
                                   language=report.language)


def instance_png(*, instance: Instance, frame: int = 0, preset: str = "auto", max_size: int = 768) -> bytes:
    with local_path(instance.file.name) as path:
        return render_png(path, frame=frame, preset=preset, max_size=max_size)
