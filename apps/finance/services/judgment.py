"""The language model's judgment measured as a second opinion: ``judgment_calibrate`` runs the active
judgment prompt over the held-out labelled applications and stores what it measured with the scorecard
version (``CreditModelVersion.judgment_calibration[language]``). The rule that uses it is
:func:`apps.finance.decisions.combine`; the measure is :mod:`apps.finance.second_opinion`."""
from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from apps.finance import decisions, evaluation, second_opinion
from apps.finance.errors import FinanceInputError
from apps.finance.models import CreditModelVersion
from apps.finance.services.credit_models import scorecard_load
from core.audit import audit_record


def judgment_calibrate(*, version: CreditModelVersion | None = None, language: str = "en",
                       limit: int | None = None, concurrency: int = evaluation.CONCURRENCY,
                       actor=None) -> dict:
    """Measure the judgment on ``judgment_<language>.jsonl`` against ``version`` (the active one by
    default) and store it; returns the measurement. Errors of the model service propagate."""
    version = version or CreditModelVersion.objects.filter(is_active=True).first()
    if version is None:
        raise FinanceInputError("no scorecard version is active", field="version")
    try:
        items = evaluation.labelled_set("judgment", language)[:limit]
    except LookupError as exc:
        raise FinanceInputError(str(exc), field="language") from None
    runs = evaluation.judgment_run(items=items, language=language, concurrency=concurrency)
    answered = [r for r in runs if r["model"]]
    if not answered:
        problems = "; ".join(p for r in runs for p in r["problems"])[:300]
        raise FinanceInputError(f"the model service gave no answer: {problems}", field="model")
    predictions = scorecard_load(version).predict_many([item["applicant"] for item in items])
    measured = second_opinion.calibration_measure(
        runs=runs, pds=[p["probability_of_default"] for p in predictions],
        scorecard_levels=[p["risk_level"] for p in predictions], model=answered[0]["model"],
        prompt=answered[0]["prompt"].split(" (")[0], language=language,
        low_confidence=decisions.LOW_CONFIDENCE)
    measured["measured_at"] = timezone.now().isoformat(timespec="seconds")
    measured["data"] = f"evaluation_data/judgment_{language}.jsonl"
    with transaction.atomic():
        row = CreditModelVersion.objects.select_for_update().get(pk=version.pk)
        row.judgment_calibration = {**(row.judgment_calibration or {}), language: measured}
        row.save(update_fields=["judgment_calibration"])
        audit_record(actor=actor or "system", action="calibrate", obj=row,
                     detail={"language": language, "auc": measured["auc"],
                             "informative": measured["informative"], "weight": measured["weight"]})
    version.judgment_calibration = row.judgment_calibration
    return measured
