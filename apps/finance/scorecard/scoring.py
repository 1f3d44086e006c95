"""The trained scorecard: scores applicants (probability of default, score, risk level) and explains
them (reason codes in English and Chinese, missing fields)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from apps.finance import metrics
from apps.finance.fields import FIELDS_BY_NAME, MODEL_INPUTS

from .inputs import applicants_to_frame
from .scale import _EPS, RISK_LABELS, ScoreScale, check_cutoffs

MAX_REASON_CODES = 4

_UNITS = {
    "duration_in_month": ("{:g} months", "{:g} 个月"),
    "credit_amount": ("{:,.0f} DM", "{:,.0f} 马克"),
    "age_in_years": ("{:g} years", "{:g} 岁"),
    "installment_rate_in_percentage_of_disposable_income": ("class {:g} of 4", "第 {:g} 档（共 4 档）"),
    "present_residence_since": ("class {:g} of 4", "第 {:g} 档（共 4 档）"),
    "number_of_existing_credits_at_this_bank": ("{:g}", "{:g} 笔"),
    "number_of_people_being_liable_to_provide_maintenance_for": ("{:g}", "{:g} 人"),
}


def _value_text(name: str, value, lang: str) -> str:
    f = FIELDS_BY_NAME[name]
    if f.kind == "categorical":
        return f.category_label(value, lang)
    en, zh = _UNITS.get(name, ("{:g}", "{:g}"))
    return (zh if lang.startswith("zh") else en).format(value)


class TrainedScorecard:
    """A trained, explainable scorecard: ``predict``, ``predict_many``, ``metadata``, ``report``."""
    __module__ = "apps.finance.scorecard"  # the path stored artifacts name: see artifact.py

    def __init__(self, model, *, scale: ScoreScale, cutoffs: tuple[float, float], metadata: dict,
                 report: dict):
        self._model = model
        self.scale = scale
        self.cutoffs = cutoffs
        self.metadata = metadata
        self.report = report

    @property
    def algorithm(self) -> str:
        """``random_forest`` or ``woe_logistic``."""
        return self._model.name

    def risk_level(self, pd_: float, cutoffs: Sequence[float] | None = None) -> int:
        """1, 2 or 3 for a probability of default under ``cutoffs`` (the model's own when None)."""
        c1, c2 = check_cutoffs(cutoffs) if cutoffs is not None else self.cutoffs
        return 1 if pd_ < c1 else 2 if pd_ < c2 else 3

    def predict(self, applicant: dict, *, cutoffs: Sequence[float] | None = None) -> dict:
        """Score one applicant (field name -> value; None or absent = missing). See :meth:`predict_many`."""
        return self.predict_many([applicant], cutoffs=cutoffs)[0]

    def predict_many(self, applicants: Sequence[dict], *,
                     cutoffs: Sequence[float] | None = None) -> list[dict]:
        """Score many applicants at once.

        Each result: ``{"probability_of_default": float, "score": int, "risk_level": 1|2|3,
        "risk_label": "low"|"medium"|"high", "reason_codes": [{"code", "field", "text_en", "text_zh",
        "impact"}], "missing_fields": [...]}``. Reason codes are the up to four provided fields that
        raised this applicant's risk most; ``impact`` is in score points. Raises
        :class:`ScorecardInputError` for values that cannot be scored.
        """
        c1, c2 = check_cutoffs(cutoffs) if cutoffs is not None else self.cutoffs
        if not applicants:
            return []
        X, missing = applicants_to_frame(applicants)
        pd_, impacts = self._model.explain(X, self.scale.factor)
        pd_ = np.clip(pd_, _EPS, 1 - _EPS)
        scores = self.scale.score(pd_)
        levels = np.digitize(pd_, (c1, c2)) + 1
        values = {name: X[name].to_numpy(dtype=object) for name in MODEL_INPUTS}
        results = []
        for i in range(len(X)):
            row_missing = missing[i]
            results.append({
                "probability_of_default": round(float(pd_[i]), 4),
                "score": int(scores[i]),
                "risk_level": int(levels[i]),
                "risk_label": RISK_LABELS[int(levels[i])],
                "reason_codes": self._reasons(values, i, impacts[i], row_missing),
                "missing_fields": list(row_missing),
            })
        return results

    def _reasons(self, values: dict[str, np.ndarray], i: int, impacts: np.ndarray,
                 missing: list[str]) -> list[dict]:
        reasons = []
        for j in np.argsort(-impacts, kind="stable"):
            name = MODEL_INPUTS[j]
            if impacts[j] <= 0.05 or len(reasons) == MAX_REASON_CODES:
                break
            if name in missing:
                continue
            f = FIELDS_BY_NAME[name]
            reasons.append({
                "code": f.reason_code, "field": name,
                "text_en": f"{f.reason_en}: {_value_text(name, values[name][i], 'en')}",
                "text_zh": f"{f.reason_zh}：{_value_text(name, values[name][i], 'zh')}",
                "impact": round(float(impacts[j]), 1),
            })
        return reasons

    def calibration_plot_png(self, path: str | None = None) -> bytes:
        """PNG reliability diagram of the out-of-fold calibration curve."""
        title = f"Calibration ({self.algorithm}, out-of-fold)"
        return metrics.render_calibration_plot(self.report["calibration"], title=title, path=path)
