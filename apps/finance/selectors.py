"""Finance reads: assessments (filtered, sorted), the review queue, the risk distribution, exports, models."""
from __future__ import annotations

from datetime import datetime, time, timedelta

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from apps.finance.errors import FilterError  # raised by assessment_filter; callers use selectors.FilterError
from apps.finance.models import RISK_LABELS, Assessment, CreditModelVersion, Review
from core.models import JobStatus
from core.roles import user_has_role

#: sort keys the results table and the API accept (``-`` prefix for descending)
SORTS = {
    "queued_at": "queued_at",
    "application_id": "application_id",
    "risk_level": "risk_level",
    "probability_of_default": "probability_of_default",
    "pd": "probability_of_default",
    "score": "score",
    "status": "status",
    "llm_risk_level": "llm_risk_level",
    "final_risk_level": "final_risk_level",
    "row": "row_number",
}
REVIEW_STATES = ("pending", "reviewed", "not_required")


def assessments_for_user(user) -> QuerySet[Assessment]:
    """Assessments a user may see: the whole finance team's work (credit decisions are shared)."""
    if not user_has_role(user, "finance"):
        return Assessment.objects.none()
    return Assessment.objects.select_related("credit_model", "owner", "reviewed_by").defer(
        "credit_model__artifact", "credit_model__calibration_png", "credit_model__metadata",
        "credit_model__fairness", "credit_model__calibration")


def assessment_get_for_user(*, user, job_id) -> Assessment | None:
    return assessments_for_user(user).filter(pk=job_id).first()


def _parse_date(value: str, field: str) -> datetime:
    try:
        day = datetime.strptime(value.strip(), "%Y-%m-%d").date()
    except ValueError:
        raise FilterError(field, f"{value!r} is not a date in the form YYYY-MM-DD") from None
    return timezone.make_aware(datetime.combine(day, time.min))


def assessment_filter(qs: QuerySet[Assessment], params) -> QuerySet[Assessment]:
    """Apply the results-table filters (query parameters) to ``qs``; raises :class:`FilterError`.

    ``q`` (application id contains), ``status``, ``risk_level`` (1-3), ``llm_risk_level``,
    ``needs_review`` (true/false), ``review`` (pending/reviewed/not_required), ``batch`` (uuid),
    ``source``, ``from``/``to`` (dates, inclusive), ``min_pd``/``max_pd``, ``sort``.
    """
    get = params.get
    q = (get("q") or "").strip()
    if q:
        qs = qs.filter(application_id__icontains=q)
    status = (get("status") or "").strip()
    if status:
        if status not in JobStatus.values:
            raise FilterError("status", f"must be one of {', '.join(JobStatus.values)}")
        qs = qs.filter(status=status)
    for name in ("risk_level", "llm_risk_level", "final_risk_level"):
        value = (get(name) or "").strip()
        if value:
            if value not in ("1", "2", "3"):
                raise FilterError(name, "must be 1, 2 or 3")
            qs = qs.filter(**{name: int(value)})
    needs = (get("needs_review") or "").strip().lower()
    if needs:
        if needs not in ("true", "false", "1", "0", "yes", "no"):
            raise FilterError("needs_review", "must be true or false")
        qs = qs.filter(needs_review=needs in ("true", "1", "yes"))
    review = (get("review") or "").strip()
    if review:
        if review not in REVIEW_STATES:
            raise FilterError("review", f"must be one of {', '.join(REVIEW_STATES)}")
        if review == "pending":
            qs = qs.filter(needs_review=True, final_decision="")
        elif review == "reviewed":
            qs = qs.exclude(final_decision="")
        else:
            qs = qs.filter(needs_review=False, final_decision="")
    batch = (get("batch") or "").strip()
    if batch:
        import uuid

        try:
            qs = qs.filter(batch_id=uuid.UUID(batch))
        except ValueError:
            raise FilterError("batch", f"{batch!r} is not a batch id") from None
    source = (get("source") or "").strip()
    if source:
        if source not in Assessment.Source.values:
            raise FilterError("source", f"must be one of {', '.join(Assessment.Source.values)}")
        qs = qs.filter(source=source)
    start = (get("from") or "").strip()
    if start:
        qs = qs.filter(queued_at__gte=_parse_date(start, "from"))
    end = (get("to") or "").strip()
    if end:
        qs = qs.filter(queued_at__lt=_parse_date(end, "to") + timedelta(days=1))
    for name, lookup in (("min_pd", "gte"), ("max_pd", "lte")):
        value = (get(name) or "").strip()
        if value:
            try:
                number = float(value)
            except ValueError:
                raise FilterError(name, f"{value!r} is not a number") from None
            if not 0 <= number <= 1:
                raise FilterError(name, "must be between 0 and 1")
            qs = qs.filter(**{f"probability_of_default__{lookup}": number})
    return assessment_sort(qs, get("sort") or "")


def assessment_sort(qs: QuerySet[Assessment], sort: str) -> QuerySet[Assessment]:
    sort = (sort or "").strip()
    if not sort:
        return qs.order_by("-queued_at", "row_number")
    desc = sort.startswith("-")
    key = sort.lstrip("-")
    if key not in SORTS:
        raise FilterError("sort", f"must be one of {', '.join(sorted(SORTS))} (prefix - for descending)")
    field = SORTS[key]
    from django.db.models import F

    expr = F(field).desc(nulls_last=True) if desc else F(field).asc(nulls_last=True)
    return qs.order_by(expr, "-queued_at")


def review_queue(user) -> QuerySet[Assessment]:
    """Assessments waiting for a human decision, oldest first."""
    return assessments_for_user(user).filter(status=JobStatus.NEEDS_REVIEW, needs_review=True,
                                             final_decision="").order_by("queued_at")


def assessment_reviews(assessment: Assessment) -> list[Review]:
    return list(assessment.reviews.select_related("reviewer").order_by("created_at"))


def risk_distribution(qs: QuerySet[Assessment]) -> dict:
    """Counts per risk level (combined, scorecard, language model, final), a PD histogram, statuses."""
    done = qs.exclude(risk_level__isnull=True)
    levels = {}
    for field in ("risk_level", "scorecard_risk_level", "llm_risk_level", "final_risk_level"):
        counts = dict(done.values_list(field).annotate(n=Count("pk")).values_list(field, "n"))
        levels[field] = [counts.get(level, 0) for level in (1, 2, 3)]
    edges = [i / 10 for i in range(11)]
    pds = list(done.values_list("probability_of_default", flat=True))
    histogram = [0] * 10
    for value in pds:
        if value is None:
            continue
        histogram[min(9, int(value * 10))] += 1
    statuses = dict(qs.values_list("status").annotate(n=Count("pk")).values_list("status", "n"))
    return {
        "labels": [RISK_LABELS[level] for level in (1, 2, 3)],
        "levels": levels,
        "pd_edges": edges,
        "pd_histogram": histogram,
        "statuses": statuses,
        "total": sum(statuses.values()),
        "scored": len(pds),
        "pending_review": qs.filter(needs_review=True, final_decision="",
                                    status=JobStatus.NEEDS_REVIEW).count(),
    }


# --- exports ------------------------------------------------------------------------------------
EXPORT_COLUMNS = [
    "application_id", "row", "status", "error", "risk_level", "risk_label", "probability_of_default", "score",
    "reason_codes", "scorecard_risk_level", "llm_risk_level", "llm_risk_label", "llm_rationale",
    "llm_key_factors", "llm_label_probs_1", "llm_label_probs_2", "llm_label_probs_3", "llm_confidence",
    "llm_status",
    "needs_review", "review_reasons", "missing_fields", "final_decision", "final_risk_level", "reviewed_by",
    "reviewed_at", "scorecard_version", "llm_model", "prompt_version", "assessment_id", "queued_at",
    "finished_at",
]


def assessment_export_row(a: Assessment, *, lang: str = "en") -> dict:
    """One flat row of an assessment for CSV/XLSX (nested result fields flattened with ``_``)."""
    result = a.result or {}
    llm = result.get("llm") or {}
    probs = llm.get("label_probs") or {}
    text_key = "text_zh" if lang.startswith("zh") else "text_en"
    reasons = result.get("reason_codes") or []
    return {
        "application_id": a.application_id,
        "row": a.row_number,
        "status": a.status,
        "error": (f"{a.error_code}: {a.error_message}"
                  if a.error_code and a.status == JobStatus.FAILED else ""),
        "risk_level": result.get("risk_level"),
        "risk_label": result.get("risk_label"),
        "probability_of_default": result.get("probability_of_default"),
        "score": result.get("score"),
        "reason_codes": "; ".join(f"{r.get('code')}: {r.get(text_key) or r.get('text_en', '')}"
                                  for r in reasons),
        "scorecard_risk_level": (result.get("scorecard") or {}).get("risk_level"),
        "llm_risk_level": llm.get("risk_level"),
        "llm_risk_label": llm.get("risk_label"),
        "llm_rationale": llm.get("rationale"),
        "llm_key_factors": "; ".join(str(k) for k in (llm.get("key_factors") or [])),
        "llm_label_probs_1": probs.get("1"),
        "llm_label_probs_2": probs.get("2"),
        "llm_label_probs_3": probs.get("3"),
        "llm_confidence": llm.get("confidence"),
        "llm_status": llm.get("status", ""),
        "needs_review": result.get("needs_review") if result else None,
        "review_reasons": "; ".join((r.get(text_key) or r.get("text_en", "")) if isinstance(r, dict)
                                    else str(r) for r in (result.get("review_reasons") or [])),
        "missing_fields": "; ".join(result.get("missing_fields") or []),
        "final_decision": a.final_decision,
        "final_risk_level": a.final_risk_level,
        "reviewed_by": a.reviewed_by.get_username() if a.reviewed_by_id and a.reviewed_by else "",
        "reviewed_at": a.reviewed_at.isoformat() if a.reviewed_at else "",
        "scorecard_version": (result.get("versions") or {}).get("scorecard", ""),
        "llm_model": (result.get("versions") or {}).get("llm_model", ""),
        "prompt_version": (result.get("versions") or {}).get("judgment_prompt", ""),
        "assessment_id": str(a.pk),
        "queued_at": a.queued_at.isoformat() if a.queued_at else "",
        "finished_at": a.finished_at.isoformat() if a.finished_at else "",
    }


def batch_result_rows(batch) -> list[dict]:
    """Every row of a batch (good and bad), in file order, flattened for the results CSV."""
    qs = (Assessment.objects.filter(batch_id=batch.pk).select_related("reviewed_by")
          .order_by("row_number", "queued_at"))
    return [assessment_export_row(a) for a in qs.iterator(chunk_size=500)]


# --- scorecard versions ---------------------------------------------------------------------------
def credit_model_active() -> CreditModelVersion | None:
    return CreditModelVersion.objects.filter(is_active=True).defer("artifact", "calibration_png").first()


def credit_model_list() -> list[CreditModelVersion]:
    return list(CreditModelVersion.objects.defer("artifact", "calibration_png").select_related(
        "trained_by", "activated_by").order_by("-version"))


def credit_model_get(version: int) -> CreditModelVersion | None:
    return CreditModelVersion.objects.defer("artifact").filter(version=version).first()


def assessment_counts(qs: QuerySet[Assessment]) -> dict:
    return qs.aggregate(
        total=Count("pk"),
        pending=Count("pk", filter=Q(status=JobStatus.NEEDS_REVIEW, needs_review=True, final_decision="")),
        failed=Count("pk", filter=Q(status=JobStatus.FAILED)),
        high=Count("pk", filter=Q(risk_level=3)),
    )


def attention(*, user) -> list[dict]:
    """The dashboard's registry hook (``FinanceConfig.attention``): what waits for this finance user."""
    from django.urls import reverse
    from django.utils.translation import gettext as _

    failed = assessments_for_user(user).filter(status=JobStatus.FAILED).count()
    return [
        {"label": _("Applications waiting for review"), "count": review_queue(user).count(),
         "url": reverse("finance:review_queue")},
        {"label": _("Assessments that failed"), "count": failed,
         "url": f"{reverse('finance:assessment_list')}?status={JobStatus.FAILED}"},
    ]


JUDGMENT_REVIEW_CODES = ("level_gap", "low_confidence")


def judgment_information(version: CreditModelVersion | None) -> list[dict]:
    """How informative the language model's judgment measured with ``version``, one row per language
    (``measured`` False where it has not been measured: then it counts as not informative)."""
    from apps.finance import second_opinion

    stored = (version.judgment_calibration if version is not None else None) or {}
    rows = []
    for language, label in Assessment.Language.choices:
        found = stored.get(language)
        if isinstance(found, dict):
            why = found.get("why")
            why_en, why_zh = second_opinion.why_text(why, found) if why else ("", "")
            rows.append({**found, "measured": True, "language": language, "language_label": label,
                         "why_en": why_en, "why_zh": why_zh})
        else:
            why_en, why_zh = second_opinion.why_text("not_measured")
            rows.append({"measured": False, "informative": False, "weight": 0.0, "review_rate": 0.0,
                         "language": language, "language_label": label, "why_en": why_en, "why_zh": why_zh})
    return rows


def judgment_review_rate(qs: QuerySet[Assessment]) -> dict:
    """Among the finished assessments of ``qs``: how many the judgment sent to review, how many it
    would have sent had it measured informative (only noted), and the share of each."""
    finished = qs.filter(status__in=(JobStatus.SUCCEEDED, JobStatus.NEEDS_REVIEW))
    total = sent = noted = 0
    for reasons, notes in finished.values_list("result__review_reasons", "result__notes").iterator():
        total += 1
        if any(isinstance(r, dict) and r.get("code") in JUDGMENT_REVIEW_CODES for r in reasons or []):
            sent += 1
        elif any(isinstance(n, dict) and n.get("code") == "disagreement_noted" for n in notes or []):
            noted += 1
    return {"total": total, "sent": sent, "noted": noted,
            "sent_rate": sent / total if total else None, "noted_rate": noted / total if total else None}
