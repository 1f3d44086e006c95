"""Assessments: create (validate and queue), the job handler ``assessment_process``, and review.

The assessment pipeline (``assessment_process``), one job per application:

1. If a report is given and applicant fields are missing, the language model extracts them (constrained
   JSON, each value with its quote); a value is kept only when its quote occurs in the report and
   supports it, and fields the report does not state stay missing and are listed.
2. The active scorecard (calibrated, scikit-learn) gives the probability of default, the score, the
   risk level by PD cut-offs and up to four reason codes.
3. The language model judges the risk (the reference guide's prompt, constrained JSON
   ``{risk_level, rationale, key_factors}``), with label probabilities from its logprobs.
4. ``decisions.combine`` merges the two by the documented rule and says whether a person must review;
   the judgment counts only as far as it measured informative (``CreditModelVersion.judgment_calibration``).
"""
from __future__ import annotations

import time

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.finance import decisions, ingest, scorecard, second_opinion
from apps.finance import fields as catalogue
from apps.finance.errors import FinanceConflict, FinanceInputError
from apps.finance.models import RISK_LABELS, Assessment, CreditModelVersion, Review
from apps.finance.services.credit_models import credit_model_active_or_error, scorecard_job_load
from apps.finance.services.llm import fields_extract, risk_judge
from core import services as core_services
from core.audit import audit_record
from core.jobs import AwaitLLM, JobOutcome, PermanentJobError
from core.llm import LLMStep
from core.models import JobStatus

REPORT_MAX_CHARS = 20_000

NOTES = {
    "llm_off": ("Language model switched off (LLM_ENABLED=false): the calibrated scorecard result stands "
                "alone.",
                "大模型已关闭（LLM_ENABLED=false）：仅以校准评分卡的结果为准。"),
    "llm_off_no_extraction": ("Language model switched off: fields missing from the applicant were not "
                              "extracted from the report.",
                              "大模型已关闭：未从报告中提取申请人缺失的字段。"),
    "llm_unusable": ("The language model's judgment was not usable and is not shown ({reasons}); the "
                     "calibrated scorecard result stands alone.",
                     "大模型的判断不可用，未予显示（{reasons}）；仅以校准评分卡的结果为准。"),
    "llm_unavailable": ("The language model was unavailable ({reasons}); the calibrated scorecard result "
                        "stands alone.",
                        "大模型不可用（{reasons}）；仅以校准评分卡的结果为准。"),
    "llm_extraction_failed": ("Fields could not be extracted from the report by the language model "
                              "({reasons}); they stay missing.",
                              "大模型未能从报告中提取字段（{reasons}），这些字段仍缺失。"),
}


def _note(code: str, **kw) -> dict:
    en, zh = NOTES[code]
    return {"code": code, "text_en": en.format(**kw), "text_zh": zh.format(**kw)}


def applicant_complete(applicant: dict) -> bool:
    """Whether every model input is given (nothing would be left for the language model to extract)."""
    return all(applicant.get(name) not in (None, "") for name in catalogue.MODEL_INPUTS)


def language_check(language: str) -> None:
    if language not in Assessment.Language.values:
        raise FinanceInputError(f"language: must be one of {', '.join(Assessment.Language.values)}",
                                field="language")


# --- create ------------------------------------------------------------------------------------------
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


def assessment_create(*, owner, applicant=None, report: str = "", language: str = "en",
                      application_id: str = "", source: str = Assessment.Source.FORM,
                      request=None) -> Assessment:
    """Validate one application, store it and queue its assessment; audited ``submit``.

    Raises :class:`FinanceInputError` naming the field at fault.
    """
    report = (report or "").strip()
    clean = applicant_clean(applicant, report=report)
    if len(report) > REPORT_MAX_CHARS:
        raise FinanceInputError(f"report: {len(report)} characters is over the limit of {REPORT_MAX_CHARS}",
                                field="report")
    if not clean and not report:
        raise FinanceInputError("give the applicant's fields, a report text, or both", field="applicant")
    language_check(language)
    if report and not settings.LLM_ENABLED and not applicant_complete(clean):
        raise FinanceInputError(
            "the language model is switched off (LLM_ENABLED=false), so fields cannot be extracted from the "
            "report; give every applicant field", field="applicant")
    model = credit_model_active_or_error()
    with transaction.atomic():
        job = Assessment.objects.create(
            owner=owner, application_id=(application_id or "").strip()[:100], applicant=clean, report=report,
            language=language, source=source, credit_model=model,
        )
        core_services.job_enqueue(job=job)
        audit_record(actor=owner, action="submit", obj=job, request=request,
                     detail={"source": source, "application_id": job.application_id})
    return job


# --- the job handler ---------------------------------------------------------------------------------
def assessment_process(job: Assessment) -> JobOutcome | AwaitLLM:
    """Job handler. With the language model on, the whole assessment is language-model work (the
    scorecard takes milliseconds): hand it on to the language-model pool (:func:`assessment_assess`), so
    many applications' model calls are in flight together. Without it, assess here."""
    if settings.LLM_ENABLED:
        return AwaitLLM(finish=assessment_assess, state={})
    return assessment_assess(job, {})


def assessment_assess(job: Assessment, state: dict) -> JobOutcome:
    """Extraction (if needed) → scorecard → LLM judgment → combination. No row writes."""
    timings: dict[str, float] = {}
    versions = CreditModelVersion.objects.defer("artifact", "calibration_png", "metadata", "fairness",
                                                "calibration")
    version = (versions.filter(pk=job.credit_model_id).first() if job.credit_model_id
               else versions.filter(is_active=True).first())
    if version is None:
        raise PermanentJobError("no scorecard version is active; an administrator must activate one",
                                code="no_active_model")
    model = scorecard_job_load(version)
    llm_enabled = bool(settings.LLM_ENABLED)
    notes: list[dict] = []
    applicant = dict(job.applicant or {})
    extraction = None
    if job.report and not applicant_complete(applicant):
        if llm_enabled:
            core_services.job_progress(job=job, fraction=0.1, message="extracting fields from the report")
            started = time.monotonic()
            applicant, extraction = fields_extract(job, applicant)
            timings["extraction_s"] = round(time.monotonic() - started, 3)
            if extraction["status"] != "ok":
                notes.append(_note("llm_extraction_failed",
                                   reasons="; ".join(extraction.get("problems") or [])))
        elif not applicant:
            raise PermanentJobError("the report needs the language model to extract fields, and it is "
                                    "switched off (LLM_ENABLED=false); send the applicant fields",
                                    code="llm_disabled")
        else:
            notes.append(_note("llm_off_no_extraction"))
    core_services.job_progress(job=job, fraction=0.4, message="scoring")
    started = time.monotonic()
    try:
        score = model.predict(applicant)
    except scorecard.ScorecardInputError as exc:
        raise PermanentJobError(str(exc).replace("applicant 0, ", "")) from None
    timings["scorecard_s"] = round(time.monotonic() - started, 4)
    if not [n for n in catalogue.MODEL_INPUTS if n not in score["missing_fields"]]:
        if extraction is not None and extraction["status"] != "ok":
            raise PermanentJobError("no applicant field was given and the language model could not extract "
                                    f"any from the report: {'; '.join(extraction.get('problems') or [])}",
                                    code="extraction_failed")
        if extraction is not None:
            unsupported = len(extraction.get("rejected") or {})
            raise PermanentJobError(
                "the report states none of the applicant's fields with words that support a value (the "
                f"language model answered {unsupported} field(s) without evidence in the report; none was "
                "kept), so there is nothing to score", code="no_fields")
        raise PermanentJobError("no applicant field could be read from the input, so there is nothing to "
                                "score", code="no_fields")

    llm = None
    step: LLMStep | None = None
    if llm_enabled:
        core_services.job_progress(job=job, fraction=0.6, message="language model judgment")
        started = time.monotonic()
        llm, step = risk_judge(job, applicant)
        if not step.ok:
            notes.append(_note("llm_unusable" if step.status == "rejected" else "llm_unavailable",
                               reasons="; ".join(step.problems)))
        timings["judgment_s"] = round(time.monotonic() - started, 3)
    else:
        notes.append(_note("llm_off"))

    given = sum(1 for n in catalogue.MODEL_INPUTS if (job.applicant or {}).get(n) not in (None, ""))
    calibration = None
    if step is not None and step.ok:
        calibration = second_opinion.calibration_for(version.judgment_calibration, language=job.language,
                                                     model=step.model,
                                                     prompt=f"{step.template} v{step.template_version}")
    combined = decisions.combine(score, llm, calibration=calibration,
                                 given_fields=given,
                                 extracted_fields=len((extraction or {}).get("fields") or {}))
    llm_block = None if llm is None else {**llm, "confidence": combined.get("llm_confidence")}
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
            "rule": combined.get("rule"), "rule_text": decisions.RULE_TEXT,
            "notes": combined.get("notes") or [],
            "scorecard_risk_level": score["risk_level"], "llm_risk_level": combined.get("llm_risk_level"),
            "llm_confidence": combined.get("llm_confidence"),
            "judgment": combined.get("judgment"), "stacked_pd": combined.get("stacked_pd"),
            "given_fields": given,
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


# --- review ------------------------------------------------------------------------------------------
def assessment_review(*, assessment: Assessment, reviewer, decision: str, final_risk_level: int | None = None,
                      comment: str = "", request=None) -> Review:
    """An analyst approves the model's level or overrides it (a comment is required to override).

    The rule is :func:`apps.finance.decisions.review_final_level`. The assessment keeps its model outputs;
    the final decision is stored apart. A pending review (status ``needs_review``) becomes ``succeeded``
    once decided. Audited ``review``. Raises :class:`FinanceInputError` (bad decision, level or comment)
    and :class:`FinanceConflict` (the assessment has not finished).
    """
    comment = (comment or "").strip()
    finished = assessment.status in (JobStatus.SUCCEEDED, JobStatus.NEEDS_REVIEW)
    if not finished or assessment.risk_level is None:
        raise FinanceConflict(f"this assessment is {assessment.status}; only finished assessments can be "
                              "reviewed", field="status")
    final = decisions.review_final_level(decision=decision, model_level=assessment.risk_level,
                                         final_risk_level=final_risk_level, comment=comment)
    now = timezone.now()
    with transaction.atomic():
        locked = Assessment.objects.select_for_update().get(pk=assessment.pk)
        review = Review.objects.create(assessment=locked, reviewer=reviewer, decision=decision,
                                       model_risk_level=locked.risk_level, final_risk_level=final,
                                       comment=comment, created_at=now)
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
                     detail={"decision": decision, "model_risk_level": locked.risk_level,
                             "final_risk_level": final, "comment": comment[:500], "review_id": review.pk})
    assessment.refresh_from_db()
    return review
