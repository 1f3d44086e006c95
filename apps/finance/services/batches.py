"""Batches: an uploaded applications CSV becomes one assessment per row (core's one ingest routine,
``core.services.batch_ingest``, with the finance reader below)."""
from __future__ import annotations

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.finance import ingest
from apps.finance.errors import FinanceInputError
from apps.finance.fields import FIELD_NAMES, OPTIONAL_COLUMNS
from apps.finance.models import Assessment, CreditModelVersion
from apps.finance.services.assessments import REPORT_MAX_CHARS, applicant_complete, language_check
from apps.finance.services.credit_models import credit_model_active_or_error
from core import services as core_services
from core.models import Batch, JobStatus


def batch_create(*, owner, upload, language: str = "en", request=None) -> Batch:
    """Store an uploaded applications CSV and queue its parsing; audited ``submit``.

    Raises :class:`apps.finance.errors.FinanceInputError` (bad language, a header without the required
    columns: see :func:`batch_header_check`, no active scorecard); nothing is stored then.
    """
    language_check(language)
    batch_header_check(upload=upload)
    credit_model_active_or_error()
    return core_services.batch_create(owner=owner, app="finance", kind=Assessment.job_type, upload=upload,
                                      options={"language": language}, request=request)


def batch_header_check(*, upload) -> None:
    """Refuse an upload at once when its header is not an applications header: it reads only the first
    ``ingest.HEADER_PEEK_BYTES`` (the parser's own header rule, :func:`ingest.check_header`) and leaves
    the file at its start. Raises :class:`FinanceInputError` on ``file``: code ``missing_columns`` (the
    message names them and lists the expected ones), ``invalid_header`` or ``unreadable_file``; its
    ``details`` carry ``missing``, ``expected``, ``optional`` and ``found``."""
    name = getattr(upload, "name", "") or "upload.csv"
    try:
        upload.seek(0)
        head = upload.read(ingest.HEADER_PEEK_BYTES + 1)
        upload.seek(0)
    except (OSError, ValueError, AttributeError) as exc:
        raise FinanceInputError(f"{name}: cannot be read: {exc}", code="unreadable_file",
                                field="file") from None
    check = ingest.check_header(bytes(head[:ingest.HEADER_PEEK_BYTES]), filename=name,
                                truncated=len(head) > ingest.HEADER_PEEK_BYTES)
    if check.ok:
        return
    optional = list(OPTIONAL_COLUMNS)
    details = {"field": "file", "missing": check.missing, "expected": list(FIELD_NAMES), "optional": optional,
               "found": check.found[:50]}
    expected = {"expected": ", ".join(FIELD_NAMES), "optional": ", ".join(optional)}
    if check.unreadable:
        raise FinanceInputError("; ".join(check.errors), code="unreadable_file", field="file",
                                details=details)
    if check.missing and not check.columns:
        message = _("%(file)s: the first line is not a header of applications (found: %(found)s). "
                    "Expected the columns %(expected)s; optional: %(optional)s.") % {
            "file": name, "found": ", ".join(c[:40] for c in check.found[:20]) or "—", **expected}
        raise FinanceInputError(message, code="invalid_header", field="file", details=details)
    if check.missing:
        message = _("%(file)s: missing required column(s): %(missing)s. Expected the columns %(expected)s; "
                    "optional: %(optional)s.") % {"file": name, "missing": ", ".join(check.missing),
                                                  **expected}
        raise FinanceInputError(message, code="missing_columns", field="file", details=details)
    raise FinanceInputError("; ".join(check.errors), code="invalid_header", field="file", details=details)


def batch_ingest(*, batch_id) -> str:
    """The ``finance.batch_ingest`` task body (core's ingest routine with the CSV reader below)."""
    return core_services.batch_ingest(batch_id=batch_id, read=batch_read)


def batch_read(batch: Batch) -> core_services.BatchItems:
    """One assessment per CSV row; invalid rows become failed items naming the row and column, so the
    results CSV lists every row."""
    name = batch.original_filename or "upload.csv"
    try:
        with batch.file.open("rb") as fh:
            data = fh.read()
    except (OSError, ValueError) as exc:
        raise core_services.BatchRejected([f"{name}: the stored file cannot be read: {exc}"]) from None
    parsed = ingest.parse_applications_csv(data, filename=name)
    if parsed.file_errors:
        raise core_services.BatchRejected(list(parsed.file_errors))
    model = CreditModelVersion.objects.filter(is_active=True).only("pk").first()
    if model is None:
        raise core_services.BatchRejected(["no scorecard version is active"])
    language = (batch.options or {}).get("language", "en")
    now = timezone.now()
    jobs: list[Assessment] = []
    row_errors: list[str] = []
    warnings = list(parsed.warnings)
    llm_enabled = bool(settings.LLM_ENABLED)
    for row in parsed.rows:
        applicant = {k: v for k, v in (row.applicant or {}).items() if v is not None}
        job = Assessment(
            owner=batch.owner, batch=batch, application_id=(row.application_id or "")[:100],
            applicant=applicant, report=(row.report or "")[:REPORT_MAX_CHARS], language=language,
            source=Assessment.Source.BATCH, row_number=row.row_number, credit_model=model, queued_at=now,
        )
        errors = list(row.errors)
        warnings.extend(row.warnings)
        if not errors and not job.applicant and not job.report:
            errors.append(f"row {row.row_number}: no applicant fields and no report")
        if not errors and job.report and not llm_enabled and not applicant_complete(job.applicant):
            errors.append(f"row {row.row_number}: fields are missing and the language model that would "
                          "extract them from the report is switched off (LLM_ENABLED=false)")
        if errors:
            job.status = JobStatus.FAILED
            job.error_code = "invalid_input"
            job.error_message = "; ".join(errors)[:4000]
            job.finished_at = now
            row_errors.extend(errors)
        jobs.append(job)
    if not jobs and not row_errors:
        row_errors = [f"{name}: no application rows"]
    return core_services.BatchItems(create=lambda: jobs, errors=row_errors, warnings=warnings)
