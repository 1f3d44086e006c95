"""The ingest task of an upload: read the stored files, de-identify them study by study, group them
into one Study job per study; a file that cannot be used is an Instance row in error naming the file.

It plugs into core's one batch routine (:func:`core.services.batch_ingest`), which claims the batch,
caps attempts, creates the jobs and enqueues them on commit.

Privacy: every file is de-identified (PS3.15 Annex E basic profile) before anything else reads it;
only the de-identified copy is stored and the raw upload is deleted once ingested; the original
identifiers go to :class:`~apps.medical.models.StudyIdentity` only.
"""
from __future__ import annotations

import io
import logging
import re
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from apps.medical import deidentify as deid
from apps.medical import selectors
from apps.medical.deidentify import vocabulary
from apps.medical.ingest import FileError, IngestError, group_instances, ingest, load_dataset
from apps.medical.models import Instance, Series, Study, StudyIdentity, UploadIdentity
from apps.medical.prompting import scrub_indication
from core import services as core_services
from core.models import Batch

from .config import deid_salt, zip_limits
from .storage import delete_prefix, raw_uploads_delete

logger = logging.getLogger(__name__)

#: ingest error codes that mean "not an image, nothing wrong with it" (listed as skipped, not failed)
SKIP_CODES = frozenset({"no_pixel_data", "dicomdir"})


def upload_ingest(*, batch_id) -> str:
    """The ``medical.batch_ingest`` task body (core's ingest routine with the reader below)."""
    return core_services.batch_ingest(batch_id=batch_id, read=_upload_read)


def _fail_items(batch: Batch, errors: list[FileError]) -> None:
    for e in errors:
        status = Instance.Status.SKIPPED if e.code in SKIP_CODES else Instance.Status.ERROR
        Instance.objects.create(batch=batch, file_name=e.name[:500], status=status, error_code=e.code[:64],
                                error_message=e.message)


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
                read_errors.append(FileError(f["name"], "invalid",
                                             f"the stored upload cannot be read ({exc})"))
                continue
            yield f["name"], data

    # A redelivered task starts again from the raw files: drop what an earlier attempt stored.
    delete_prefix(f"medical/studies/{batch.id}/")
    Instance.objects.filter(batch=batch).delete()
    with tempfile.TemporaryDirectory(prefix="medical-ingest-") as tmp:
        result = ingest(items(), dest_dir=tmp, limits=zip_limits(), check_pixels=True)
        errors = read_errors + list(result.errors)
        studies = group_instances(result.instances)
        grouped = {id(i) for s in studies for g in s.series for i in g.instances}
        duplicates = [i for i in result.instances if id(i) not in grouped]
        upload_identity = UploadIdentity.objects.filter(batch=batch).first()
        originals = _original_names(upload_identity, result.member_paths)
        indication = (upload_identity.indication if upload_identity is not None
                      else (batch.options or {}).get("indication", ""))
        built = [_deidentify_study(batch, group, originals, indication) for group in studies]
    # the upload shows the indication filtered without any study's identifiers (each study its own)
    batch.options = {**(batch.options or {}), "indication": scrub_indication(indication, max_chars=4000)}
    for plan in built:
        errors.extend(plan.errors)

    def create() -> list[Study]:
        UploadIdentity.objects.update_or_create(batch=batch, defaults={"files": originals,
                                                                        "indication": indication})
        Batch.objects.filter(pk=batch.pk).update(options=batch.options)
        jobs = [plan.save() for plan in built if plan.study is not None]
        _fail_items(batch, errors)
        for inst in duplicates:
            Instance.objects.create(batch=batch, file_name=inst.name[:500], status=Instance.Status.SKIPPED,
                                    error_code="duplicate",
                                    error_message="the same SOP Instance UID was uploaded twice: ignored",
                                    frames=inst.number_of_frames)
        logger.info("medical upload %s ingested: %d studies, %d file problems", batch.pk, len(jobs),
                    len(errors))
        return jobs

    return core_services.BatchItems(
        create=create,
        errors=[str(e) for e in errors if e.code not in SKIP_CODES],
        warnings=[str(e) for e in errors if e.code in SKIP_CODES]
        + [f"{i.name}: duplicate SOP Instance UID, ignored" for i in duplicates],
        on_commit=lambda: _delete_raw_uploads(files),
    )


def _original_names(row: UploadIdentity | None, member_paths: dict[str, str]) -> dict[str, str]:
    """Pseudonym → original name of every file and ZIP member of the upload (for its identity row)."""
    files = dict(row.files) if row is not None else {}
    for pseudonym, rel in member_paths.items():
        archive = pseudonym.rsplit("/", 1)[0]
        files[pseudonym] = f"{files.get(archive, archive)}/{rel}"[:1000]
    return files


def _delete_raw_uploads(files: list[dict]) -> None:
    """Only the de-identified copies are kept once an upload has been ingested."""
    raw_uploads_delete(paths=[f["path"] for f in files if f.get("path")])


@dataclass
class _StudyPlan:
    """A de-identified study ready to be saved (files already in storage)."""

    study: Study | None
    identity: StudyIdentity | None
    series: list[tuple[Series, list[Instance]]]
    errors: list[FileError]

    def save(self) -> Study:
        # the same study uploaded before: still processed, marked as a repeat of the first upload
        # (matched on the de-identified UID, a keyed hash of the original, or the identity row)
        self.study.duplicate_of = selectors.study_first_upload(
            study_instance_uid=self.study.study_instance_uid,
            original_study_instance_uid=self.identity.original_study_instance_uid,
            exclude_batch_id=self.study.batch_id)
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


def _name_words(name: str) -> set[str]:
    """The words of an original file name that are not clinical or common words (likely a name)."""
    words = re.findall(r"[A-Za-z][A-Za-z'\-]{2,}|[\u4e00-\u9fff]{2,}", name)
    return {w for w in words if not vocabulary.english_known(w) and w.lower() not in _FILE_WORDS
            and vocabulary.chinese_segments(w) != [(w, True)]}


_FILE_WORDS = {"dcm", "dicom", "zip", "img", "ima", "upload", "file", "files", "export", "anon"}


def _deidentify_study(batch: Batch, group, originals: dict[str, str], indication: str) -> _StudyPlan:
    """De-identify every instance of one study group and store the copies; build unsaved rows."""
    salt = deid_salt()
    options = batch.options or {}
    study = Study(owner_id=batch.owner_id, batch=batch,
                  language=options.get("language", "en"), source=options.get("source", "upload")[:16])
    identity: StudyIdentity | None = None
    uid_map: dict[str, str] = {}
    collected: set[str] = set()
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
            collected.update(result.identifiers.get("collected") or [])
            flags.update(result.flags)
            if not series.series_instance_uid:
                series.series_instance_uid = str(out.SeriesInstanceUID)
                series.description = str(out.get("SeriesDescription", "") or "")[:200]
            sop = str(out.SOPInstanceUID)
            name = f"medical/studies/{batch.id}/{study.id}/{s_index:03d}/{order:05d}.dcm"
            path = default_storage.save(name, ContentFile(buf.getvalue()))
            rows.append(Instance(
                batch=batch, file_name=ing.name[:500], status=Instance.Status.OK, warnings=ing.warnings[:20],
                sop_instance_uid=sop, sop_class_uid=ing.sop_class_uid[:64], modality=ing.modality[:16],
                transfer_syntax=ing.transfer_syntax_name[:100],
                photometric_interpretation=ing.photometric_interpretation[:32], rows=ing.rows,
                columns=ing.columns,
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
    # the original file names (and the words in them) are this study's identifiers too
    names = {r.file_name: originals[r.file_name] for _, rows in series_rows for r in rows
             if r.file_name in originals}
    identity.identifiers["files"] = names
    identity.identifiers["collected"] = sorted(collected.union(*(_name_words(n) for n in names.values())))
    # the indication as entered stays with the identity; the study keeps it filtered
    identity.identifiers["indication"] = indication
    study.indication = scrub_indication(indication, deid.phi_strings(identity.identifiers), max_chars=4000)
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
