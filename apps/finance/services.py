"""Finance writes: scorecard versions (train, activate), assessments (create, process, review), batches.

The assessment pipeline (``assessment_process``), one job per application:

1. If a report is given and applicant fields are missing, the language model extracts them (constrained
   JSON, the extraction schema); fields the report does not state stay missing and are listed.
2. The active scorecard (calibrated, scikit-learn) gives the probability of default, the score, the
   risk level by PD cut-offs and up to four reason codes.
3. The language model judges the risk (the reference guide's prompt, constrained JSON
   ``{risk_level, rationale, key_factors}``), with label probabilities from its logprobs.
4. ``prompting.combine`` merges the two by the documented rule and says whether a person must review.
"""
from __future__ import annotations

import hashlib
import logging
import threading
import time

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from apps.finance import fields as catalogue
from apps.finance import ingest, prompting, scorecard
from apps.finance.models import RISK_LABELS, Assessment, CreditModelVersion, ModelTraining, Review
from core import services as core_services
from core.audit import audit_record
from core.jobs import JobOutcome, PermanentJobError
from core.llm import LLMOutputInvalid, LLMStep, llm_step
from core.models import Batch, JobStatus

logger = logging.getLogger(__name__)

JUDGMENT_TEMPLATE = "finance.risk_judgment"
EXTRACTION_TEMPLATE = "finance.field_extraction"
# The longest answer the schema allows (rationale ≤ 200 characters, 3 factors ≤ 40) fits even at one
# token per character (Chinese), so a constrained answer is never cut off.
JUDGMENT_MAX_TOKENS = 360
EXTRACTION_MAX_TOKENS = 400  # the 18-key JSON needs about 350 tokens with this schema
REPORT_MAX_CHARS = 20_000
TRAINING_SEED = 0


NOTES = {
    "llm_off": ("Language model switched off (LLM_ENABLED=false): the calibrated scorecard result stands alone.",
                "大模型已关闭（LLM_ENABLED=false）：仅以校准评分卡的结果为准。"),
    "llm_off_no_extraction": ("Language model switched off: fields missing from the applicant were not extracted "
                              "from the report.",
                              "大模型已关闭：未从报告中提取申请人缺失的字段。"),
    "llm_unusable": ("The language model's judgment was not usable and is not shown ({reasons}); the calibrated "
                     "scorecard result stands alone.",
                     "大模型的判断不可用，未予显示（{reasons}）；仅以校准评分卡的结果为准。"),
    "llm_unavailable": ("The language model was unavailable ({reasons}); the calibrated scorecard result stands "
                        "alone.",
                        "大模型不可用（{reasons}）；仅以校准评分卡的结果为准。"),
    "llm_extraction_failed": ("Fields could not be extracted from the report by the language model ({reasons}); "
                              "they stay missing.",
                              "大模型未能从报告中提取字段（{reasons}），这些字段仍缺失。"),
}


def _note(code: str, **kw) -> dict:
    en, zh = NOTES[code]
    return {"code": code, "text_en": en.format(**kw), "text_zh": zh.format(**kw)}


class FinanceInputError(ValueError):
    """Bad input from a user: ``field`` names the field (or row/column) at fault."""

    def __init__(self, message: str, *, field: str = ""):
        super().__init__(message)
        self.field = field
        self.message = message


# ==================================================================================================
# Scorecard versions
# ==================================================================================================
_scorecards: dict[int, scorecard.TrainedScorecard] = {}
_scorecards_lock = threading.Lock()


def scorecard_load(version: CreditModelVersion) -> scorecard.TrainedScorecard:
    """The trained scorecard of a version (deserialised once per process)."""
    with _scorecards_lock:
        model = _scorecards.get(version.pk)
        if model is None:
            artifact = CreditModelVersion.objects.filter(pk=version.pk).values_list("artifact", flat=True).first()
            if artifact is None:
                raise PermanentJobError(f"scorecard v{version.version} has no stored model", code="model_missing")
            model = scorecard.load(bytes(artifact))
            if len(_scorecards) > 8:
                _scorecards.clear()
            _scorecards[version.pk] = model
        return model


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


def credit_model_store(*, trained: scorecard.TrainedScorecard, data_sha256: str, filename: str, trained_by=None,
                       activate: bool = False, note: str = "") -> CreditModelVersion:
    """Save a trained scorecard as the next version (and activate it when asked)."""
    report = trained.report
    headline = report["metrics"]["out_of_fold"]
    with transaction.atomic():
        next_version = (CreditModelVersion.objects.select_for_update().aggregate(v=Max("version"))["v"] or 0) + 1
        version = CreditModelVersion.objects.create(
            version=next_version, algorithm=trained.algorithm, artifact=scorecard.dump(trained),
            metadata={**trained.metadata, "selection": report.get("selection"),
                      "risk_levels": report.get("risk_levels"),
                      "feature_importance": report.get("feature_importance"),
                      "in_sample": report["metrics"].get("in_sample")},
            metrics=headline, fairness=report.get("fairness") or {}, calibration=report.get("calibration") or [],
            calibration_png=trained.calibration_plot_png(), data_sha256=data_sha256, data_filename=filename[:255],
            data_rows=int(trained.metadata.get("rows", 0)), trained_by=trained_by, note=note[:300],
        )
        if activate:
            credit_model_activate(version=version, actor=trained_by)
    return version


def credit_model_train(*, data: bytes, filename: str, trained_by=None, activate: bool = False, note: str = "",
                       seed: int = TRAINING_SEED) -> CreditModelVersion:
    """Train a new scorecard version synchronously (management command, demo setup)."""
    trained, sha = credit_model_train_compute(data=data, filename=filename, seed=seed)
    version = credit_model_store(trained=trained, data_sha256=sha, filename=filename, trained_by=trained_by,
                                 activate=activate, note=note)
    audit_record(actor=trained_by or "system", action="train", obj=version,
                 detail={"version": version.version, "data_sha256": sha, "metrics": version.metrics})
    return version


def credit_model_activate(*, version: CreditModelVersion, actor=None, request=None) -> CreditModelVersion:
    """Make ``version`` the one new assessments use (exactly one version is active)."""
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


def model_training_create(*, owner, upload, activate: bool = False, note: str = "") -> ModelTraining:
    """Queue training from an uploaded labelled CSV (the web page's asynchronous path)."""
    job = ModelTraining(owner=owner, original_filename=getattr(upload, "name", "")[:255], activate=activate,
                        note=note[:300])
    job.data.save(f"{job.pk}.csv", upload, save=False)
    job.save()
    core_services.job_enqueue(job=job)
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
                                     trained_by=row.owner, activate=row.activate, note=row.note)
        row.credit_model = version
        holder["version"] = version.version
        audit_record(actor=row.owner, action="train", obj=version,
                     detail={"version": version.version, "data_sha256": sha, "training_job": str(row.pk)})

    headline = trained.report["metrics"]["out_of_fold"]
    return JobOutcome(
        result={"algorithm": trained.algorithm, "metrics": headline, "data_sha256": sha,
                "rows": trained.metadata.get("rows")},
        model_name="scorecard", model_version=trained.algorithm,
        timings={"training_s": trained.metadata.get("training_seconds", 0.0)}, apply=apply,
    )


# ==================================================================================================
# Assessments
# ==================================================================================================
def applicant_clean(applicant, *, report: str = "") -> dict:
    """Validated applicant fields (canonical names and values; only the fields given, None never stored).

    Raises :class:`FinanceInputError` whose message names every field at fault.
    """
    if applicant in (None, "") or applicant == {}:
        return {}
    if not isinstance(applicant, dict):
        raise FinanceInputError("applicant: expected an object of field: value pairs", field="applicant")
    clean, errors = ingest.parse_applicant(applicant, report=report or None, where="applicant")
    if errors:
        raise FinanceInputError("; ".join(errors), field="applicant")
    return {name: value for name, value in clean.items() if value is not None}


def assessment_create(*, owner, applicant=None, report: str = "", language: str = "en", application_id: str = "",
                      source: str = Assessment.Source.FORM, request=None) -> Assessment:
    """Validate one application, store it and queue its assessment; raises :class:`FinanceInputError`."""
    report = (report or "").strip()
    clean = applicant_clean(applicant, report=report)
    if len(report) > REPORT_MAX_CHARS:
        raise FinanceInputError(f"report: {len(report)} characters is over the limit of {REPORT_MAX_CHARS}",
                                field="report")
    if not clean and not report:
        raise FinanceInputError("give the applicant's fields, a report text, or both", field="applicant")
    if language not in Assessment.Language.values:
        raise FinanceInputError(f"language: must be one of {', '.join(Assessment.Language.values)}",
                                field="language")
    if report and not settings.LLM_ENABLED and not _has_all_inputs(clean):
        raise FinanceInputError(
            "the language model is switched off (LLM_ENABLED=false), so fields cannot be extracted from the "
            "report; give every applicant field", field="applicant")
    model = _active_model_or_error()
    with transaction.atomic():
        job = Assessment.objects.create(
            owner=owner, application_id=(application_id or "").strip()[:100], applicant=clean, report=report,
            language=language, source=source, credit_model=model,
        )
        core_services.job_enqueue(job=job)
    audit_record(actor=owner, action="submit", obj=job, request=request,
                 detail={"source": source, "application_id": job.application_id})
    return job


def _has_all_inputs(applicant: dict) -> bool:
    return all(applicant.get(name) not in (None, "") for name in catalogue.MODEL_INPUTS)


def _active_model_or_error() -> CreditModelVersion:
    model = CreditModelVersion.objects.filter(is_active=True).only("pk", "version").first()
    if model is None:
        raise FinanceInputError("no scorecard version is active: an administrator must train and activate one "
                                "(Credit risk → Models, or `manage.py train_credit_model --activate`)",
                                field="model")
    return model


def _extract(job: Assessment, applicant: dict) -> tuple[dict, dict]:
    """LLM extraction of the fields the applicant lacks. Returns (merged applicant, extraction info)."""
    step = llm_step(template=EXTRACTION_TEMPLATE, language=job.language, max_tokens=EXTRACTION_MAX_TOKENS,
                    variables=prompting.extraction_variables(job.report, language=job.language),
                    validate=_extraction_valid, final_attempt=job.attempts >= settings.JOB_MAX_ATTEMPTS)
    extracted, warnings = step.value if step.ok else ({}, [])
    merged = dict(applicant)
    filled = []
    for name, value in extracted.items():
        if value is not None and merged.get(name) in (None, ""):
            merged[name] = value
            filled.append(name)
    info = {
        **step.meta(),
        "fields": {name: extracted.get(name) for name in filled},
        "not_stated": sorted(n for n in catalogue.MODEL_INPUTS if extracted.get(n) is None and merged.get(n) in (None, "")),
        "warnings": warnings,
    }
    return merged, info


def _extraction_valid(parsed) -> tuple[dict, list[str]]:
    if not isinstance(parsed, dict):
        raise LLMOutputInvalid(f"expected a JSON object, got {type(parsed).__name__}")
    return prompting.extraction_result_to_applicant(parsed)


def _judgment_valid(parsed) -> dict:
    if not isinstance(parsed, dict):
        raise LLMOutputInvalid(f"expected a JSON object, got {type(parsed).__name__}")
    try:
        level = int(parsed.get("risk_level"))
    except (TypeError, ValueError):
        level = None
    if level not in (1, 2, 3):
        raise LLMOutputInvalid(f"risk_level must be 1, 2 or 3, got {parsed.get('risk_level')!r}")
    return {**parsed, "risk_level": level}


def _judge(job: Assessment, applicant: dict) -> tuple[dict, LLMStep]:
    """LLM risk judgment with label probabilities. Returns (llm block, the step)."""
    step = llm_step(template=JUDGMENT_TEMPLATE, language=job.language, max_tokens=JUDGMENT_MAX_TOKENS,
                    variables=prompting.judgment_variables(applicant, job.report, language=job.language),
                    validate=_judgment_valid, top_logprobs=5,
                    final_attempt=job.attempts >= settings.JOB_MAX_ATTEMPTS)
    parsed = step.value or {}
    level = parsed.get("risk_level")
    raw_probs = (prompting.label_probs_from_logprobs(step.answer.logprobs) if step.ok and step.answer else None) or {}
    probs = {str(k): round(float(v), 4) for k, v in sorted(raw_probs.items())}
    block = {
        **step.meta(),
        "risk_level": level,
        "risk_label": RISK_LABELS.get(level, ""),
        "rationale": str(parsed.get("rationale") or "")[:2000],
        "key_factors": [str(k)[:200] for k in (parsed.get("key_factors") or [])][:8],
        "label_probs": probs,
        "calibrated": False,
    }
    return block, step


def assessment_process(job: Assessment) -> JobOutcome:
    """Job handler: extraction (if needed) → scorecard → LLM judgment → combination. No row writes."""
    timings: dict[str, float] = {}
    versions = CreditModelVersion.objects.defer("artifact", "calibration_png", "metadata", "fairness", "calibration")
    version = (versions.filter(pk=job.credit_model_id).first() if job.credit_model_id
               else versions.filter(is_active=True).first())
    if version is None:
        raise PermanentJobError("no scorecard version is active; an administrator must activate one",
                                code="no_active_model")
    model = scorecard_load(version)
    llm_enabled = bool(settings.LLM_ENABLED)
    notes: list[dict] = []
    applicant = dict(job.applicant or {})
    extraction = None
    if job.report and not _has_all_inputs(applicant):
        if llm_enabled:
            core_services.job_progress(job=job, fraction=0.1, message="extracting fields from the report")
            started = time.monotonic()
            applicant, extraction = _extract(job, applicant)
            timings["extraction_s"] = round(time.monotonic() - started, 3)
            if extraction["status"] != "ok":
                notes.append(_note("llm_extraction_failed", reasons="; ".join(extraction.get("problems") or [])))
        elif not applicant:
            raise PermanentJobError("the report needs the language model to extract fields, and it is switched "
                                    "off (LLM_ENABLED=false); send the applicant fields", code="llm_disabled")
        else:
            notes.append(_note("llm_off_no_extraction"))
    core_services.job_progress(job=job, fraction=0.4, message="scoring")
    started = time.monotonic()
    try:
        score = model.predict(applicant)
    except scorecard.ScorecardInputError as exc:
        raise PermanentJobError(str(exc).replace("applicant 0, ", "")) from None
    timings["scorecard_s"] = round(time.monotonic() - started, 4)
    scored_inputs = [n for n in catalogue.MODEL_INPUTS if n not in score["missing_fields"]]
    if not scored_inputs:
        if extraction is not None and extraction["status"] != "ok":
            raise PermanentJobError("no applicant field was given and the language model could not extract any "
                                    f"from the report: {'; '.join(extraction.get('problems') or [])}",
                                    code="extraction_failed")
        raise PermanentJobError("no applicant field could be read from the input, so there is nothing to score",
                                code="no_fields")

    llm = None
    step: LLMStep | None = None
    if llm_enabled:
        core_services.job_progress(job=job, fraction=0.6, message="language model judgment")
        started = time.monotonic()
        llm, step = _judge(job, applicant)
        if not step.ok:
            notes.append(_note("llm_unusable" if step.status == "rejected" else "llm_unavailable",
                               reasons="; ".join(step.problems)))
        timings["judgment_s"] = round(time.monotonic() - started, 3)
    else:
        notes.append(_note("llm_off"))

    combined = prompting.combine(score, llm)
    llm_block = None
    if llm is not None:
        llm_block = {**llm, "confidence": combined.get("llm_confidence")}
    needs_review = bool(combined["needs_review"])
    level = int(combined["risk_level"])
    result = {
        "application_id": job.application_id,
        "risk_level": level,
        "risk_label": RISK_LABELS[level],
        "probability_of_default": score["probability_of_default"],
        "score": score["score"],
        "reason_codes": score["reason_codes"],
        "llm": llm_block,
        "needs_review": needs_review,
        "review_reasons": combined.get("review_reasons") or [],
        "combination": {
            "rule": combined.get("rule"), "rule_text": prompting.RULE_TEXT,
            "notes": combined.get("notes") or [],
            "scorecard_risk_level": score["risk_level"], "llm_risk_level": combined.get("llm_risk_level"),
            "llm_confidence": combined.get("llm_confidence"),
        },
        "scorecard": {
            "risk_level": score["risk_level"], "risk_label": score["risk_label"],
            "probability_of_default": score["probability_of_default"], "score": score["score"],
            "version": version.version, "algorithm": model.algorithm, "cutoffs": list(model.cutoffs),
            "score_scale": {"base_points": model.scale.base_points, "base_odds": model.scale.base_odds,
                            "pdo": model.scale.pdo},
            "calibrated": True,
        },
        "missing_fields": score["missing_fields"],
        "extraction": extraction,
        "applicant": applicant,
        "llm_enabled": llm_enabled,
        "notes": notes + list(combined.get("notes") or []),
        "versions": {
            "scorecard": f"v{version.version}",
            "scorecard_algorithm": model.algorithm,
            "llm_model": (step.model if step is not None else ""),
            "judgment_prompt": (f"{step.template} v{step.template_version}" if step is not None else ""),
            "extraction_prompt": (extraction or {}).get("prompt", ""),
        },
    }
    return JobOutcome(
        result=result,
        status=JobStatus.NEEDS_REVIEW if needs_review else JobStatus.SUCCEEDED,
        model_name=(step.model if step is not None and step.model else f"scorecard ({model.algorithm})"),
        model_version=f"scorecard v{version.version}",
        prompt_template=step.template if step is not None else "",
        prompt_version=step.template_version if step is not None else None,
        timings=timings,
        fields={
            "credit_model_id": version.pk,
            "risk_level": level,
            "scorecard_risk_level": score["risk_level"],
            "llm_risk_level": (llm or {}).get("risk_level"),
            "probability_of_default": score["probability_of_default"],
            "score": score["score"],
            "needs_review": needs_review,
        },
    )


# ==================================================================================================
# Review
# ==================================================================================================
def assessment_review(*, assessment: Assessment, reviewer, decision: str, final_risk_level: int | None = None,
                      comment: str = "", request=None) -> Review:
    """An analyst approves the model's level or overrides it (a comment is required to override).

    The assessment keeps its model outputs; the final decision is stored apart. A pending review
    (status ``needs_review``) becomes ``succeeded`` once decided.
    """
    comment = (comment or "").strip()
    if decision not in Review.Decision.values:
        raise FinanceInputError(f"decision: must be one of {', '.join(Review.Decision.values)}", field="decision")
    if assessment.status not in (JobStatus.SUCCEEDED, JobStatus.NEEDS_REVIEW) or assessment.risk_level is None:
        raise FinanceInputError(f"this assessment is {assessment.status}; only finished assessments can be reviewed",
                                field="status")
    if decision == Review.Decision.APPROVE:
        final = assessment.risk_level
        if final_risk_level not in (None, "", final):
            raise FinanceInputError("final_risk_level: approving keeps the model's level; choose override to change "
                                    "it", field="final_risk_level")
    else:
        try:
            final = int(final_risk_level)
        except (TypeError, ValueError):
            final = None
        if final not in (1, 2, 3):
            raise FinanceInputError("final_risk_level: an override needs the final risk level 1, 2 or 3",
                                    field="final_risk_level")
        if not comment:
            raise FinanceInputError("comment: say why you override the model", field="comment")
    if len(comment) > 4000:
        raise FinanceInputError("comment: at most 4000 characters", field="comment")
    now = timezone.now()
    with transaction.atomic():
        locked = Assessment.objects.select_for_update().get(pk=assessment.pk)
        review = Review.objects.create(assessment=locked, reviewer=reviewer, decision=decision,
                                       model_risk_level=locked.risk_level, final_risk_level=final, comment=comment,
                                       created_at=now)
        locked.final_decision = (Assessment.Decision.APPROVED if decision == Review.Decision.APPROVE
                                 else Assessment.Decision.OVERRIDDEN)
        locked.final_risk_level = final
        locked.reviewed_by = reviewer
        locked.reviewed_at = now
        update = ["final_decision", "final_risk_level", "reviewed_by", "reviewed_at"]
        if locked.status == JobStatus.NEEDS_REVIEW:
            locked.status = JobStatus.SUCCEEDED
            update.append("status")
        locked.save(update_fields=update)
    audit_record(actor=reviewer, action="review", obj=locked, request=request,
                 detail={"decision": decision, "model_risk_level": locked.risk_level, "final_risk_level": final,
                         "comment": comment[:500], "review_id": review.pk})
    assessment.refresh_from_db()
    return review


# ==================================================================================================
# Batches
# ==================================================================================================
def batch_create(*, owner, upload, language: str = "en", request=None) -> Batch:
    """Store an uploaded applications CSV and queue its parsing; raises :class:`FinanceInputError`."""
    if language not in Assessment.Language.values:
        raise FinanceInputError(f"language: must be one of {', '.join(Assessment.Language.values)}",
                                field="language")
    _active_model_or_error()
    batch = core_services.batch_create(owner=owner, app="finance", kind=Assessment.job_type, upload=upload,
                                       options={"language": language})
    audit_record(actor=owner, action="submit", obj=batch, request=request,
                 detail={"filename": batch.original_filename, "size_bytes": batch.size_bytes})
    return batch


def batch_ingest(*, batch_id) -> str:
    """The ``finance.batch_ingest`` task body (core's ingest routine with the CSV reader below)."""
    return core_services.batch_ingest(batch_id=batch_id, read=_batch_read)


def _batch_read(batch: Batch) -> core_services.BatchItems:
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
        if not errors and job.report and not llm_enabled and not _has_all_inputs(job.applicant):
            errors.append(f"row {row.row_number}: fields are missing and the language model that would extract "
                          "them from the report is switched off (LLM_ENABLED=false)")
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
