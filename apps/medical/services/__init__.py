"""Medical writes: uploads (web, REST, STOW-RS) → de-identified instances grouped into Study jobs →
features, key images and an AI draft → edit, sign, addenda → PDF, DICOM SR and FHIR outputs.

Privacy rules kept here:

* every file is de-identified (PS3.15 Annex E basic profile) in the ingest task, before anything
  else reads it; only the de-identified copy is stored, the raw upload is deleted once ingested
  (retried, logged without PHI; ``medical.raw_uploads_sweep`` removes leftovers);
* file names and ZIP paths are pseudonyms everywhere; the originals are in :class:`UploadIdentity`;
* the original identifiers go to :class:`~apps.medical.models.StudyIdentity` only;
* the prompt is built from de-identified features and a scrubbed indication, then checked once
  more against the study's own identifiers before it is sent (fail closed);
* log lines name job, batch and study ids, never file names, patient data or UIDs.

Original identifiers must not reach a log line: highdicom logs the UIDs of the data sets it copies
from at INFO, and pydicom's validation warnings quote element values (a patient name with a bad
character, an invalid UID): settings.LOGGING keeps both quiet. Python warnings are silenced around
the DICOM work for the same reason (the worker's stderr is its log).

Modules (import from the package, ``from apps.medical import services``):

- :mod:`.uploads` checks and stores an upload, queues its ingest (``upload_create``);
- :mod:`.batches` the ingest task: read, de-identify, group into Study jobs (``upload_ingest``);
- :mod:`.studies` the study job: features, key images, the AI draft (``study_process``);
- :mod:`.reports` edit, sign, addenda (``report_edit``, ``report_sign``, ``addendum_add``);
- :mod:`.exports` SR, PDF, FHIR and PNG (``study_document``, ``study_sr_bytes``, ``instance_png``...);
- :mod:`.audit` read events (view, download) shared by the pages and the API;
- :mod:`.config` and :mod:`.storage` settings and stored-file helpers.

The user-facing errors are in :mod:`apps.medical.errors` (re-exported here).
"""
from __future__ import annotations

from apps.medical.errors import ReportError, ReportLocked, ReportNotFinal, UploadRefused

from .audit import study_export_record, study_view_record, upload_results_export_record
from .batches import SKIP_CODES, upload_ingest
from .config import LANGUAGES, deid_salt, organization_name, zip_limits
from .exports import (
    DOCUMENT_KINDS,
    Document,
    instance_png,
    study_document,
    study_fhir,
    study_pdf_bytes,
    study_sr_bytes,
)
from .reports import addendum_add, report_edit, report_sign
from .storage import delete_prefix, local_path, raw_uploads_delete, raw_uploads_sweep
from .studies import (
    DRAFT_FREQUENCY_PENALTY,
    DRAFT_MAX_TOKENS,
    KEY_IMAGES_PER_SERIES,
    MAX_KEY_IMAGES_PER_STUDY,
    study_process,
)
from .uploads import (
    UploadFile,
    as_upload_files,
    upload_create,
    upload_files_check,
    upload_length_check,
    upload_precheck,
)

__all__ = [
    "DOCUMENT_KINDS",
    "DRAFT_FREQUENCY_PENALTY",
    "DRAFT_MAX_TOKENS",
    "KEY_IMAGES_PER_SERIES",
    "LANGUAGES",
    "MAX_KEY_IMAGES_PER_STUDY",
    "SKIP_CODES",
    "Document",
    "ReportError",
    "ReportLocked",
    "ReportNotFinal",
    "UploadFile",
    "UploadRefused",
    "addendum_add",
    "as_upload_files",
    "deid_salt",
    "delete_prefix",
    "instance_png",
    "local_path",
    "organization_name",
    "raw_uploads_delete",
    "raw_uploads_sweep",
    "report_edit",
    "report_sign",
    "study_document",
    "study_export_record",
    "study_fhir",
    "study_pdf_bytes",
    "study_process",
    "study_sr_bytes",
    "study_view_record",
    "upload_create",
    "upload_files_check",
    "upload_ingest",
    "upload_length_check",
    "upload_precheck",
    "upload_results_export_record",
    "zip_limits",
]
