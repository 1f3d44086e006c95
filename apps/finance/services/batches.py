"""Batches: an uploaded applications CSV becomes one assessment per row (core's one ingest routine,
``core.services.batch_ingest``, with the finance reader below)."""
from __future__ import annotations

from django.conf import settings
from django.utils import timezone

from apps.finance import ingest
from apps.finance.models import Assessment, CreditModelVersion
from apps.finance.services.assessments import REPORT_MAX_CHARS, applicant_complete, language_check
from apps.finance.services.credit_models import credit_model_active_or_error
from core import services as core_services
from core.models import Batch, JobStatus


def batch_create(*, owner, upload, language: str = "en", request=None) -> Batch:
    """Store an uploaded applications CSV and queue its parsing; audited ``submit``.

    Raises :class:`apps.finance.errors.FinanceInputError` (bad language, no active scorecard).
    """
    language_check(language)
    credit_model_active_or_error()
    return core_services.batch_create(owner=owner, app="finance", kind=Assessment.job_type, upload=upload,
                                      options={"language": language}, request=request)


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
