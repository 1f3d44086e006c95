"""Charts on pages: ``{% load core_charts %}``.

``{% line_chart series title=... x_label=... %}`` draws :func:`core.charts.line_chart` inline;
``{% validation_curves curves %}`` shows a trained model's stored validation curves
(:mod:`core.curves`): the ROC curve and the reliability curve, each with a sentence of help and its
numbers in a table, or a note that the version has none.
"""
from __future__ import annotations

from django import template
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _

from core import charts

from .core_tags import num, pct

register = template.Library()

_ZOOM = (0.1, 0.2, 0.25, 0.5, 1.0)


def _percent(value: float) -> str:
    return pct(value, 0)


@register.simple_tag
def line_chart(series, **options):
    """An inline SVG chart of ``series`` (see :func:`core.charts.line_chart` for the options)."""
    # core.charts escapes every text it writes (platform/core/tests/test_charts.py plants markup)
    return mark_safe(charts.line_chart(series, **options))  # nosec B308 B703


def _roc(curves: dict, chart_id: str) -> tuple[str, list[dict]]:
    roc = curves.get("roc") or {}
    rows = [{"fpr": f, "tpr": t} for f, t in zip(roc.get("fpr") or [], roc.get("tpr") or [], strict=False)]
    auc = roc.get("auc")
    title = _("ROC curve (AUC %(auc)s)") % {"auc": num(auc, 3)} if auc is not None else _("ROC curve")
    svg = charts.line_chart(
        [{"label": _("model"), "points": [(r["fpr"], r["tpr"]) for r in rows], "mode": "line"}],
        title=title, x_label=_("False-positive rate"), y_label=_("True-positive rate"),
        diagonal=True, diagonal_label=_("chance"), tick_format=_percent, chart_id=f"{chart_id}-roc")
    return svg, rows


def _reliability(curves: dict, chart_id: str) -> tuple[str, list[dict]]:
    rows = [r for r in curves.get("reliability") or [] if isinstance(r, dict)]
    top = max([0.0, *(float(r.get("mean_predicted") or 0) for r in rows),
               *(float(r.get("observed_rate") or 0) for r in rows)])
    top = next((z for z in _ZOOM if top <= z), 1.0)
    svg = charts.line_chart(
        [{"label": _("model"), "points": [(r.get("mean_predicted"), r.get("observed_rate")) for r in rows],
          "mode": "both"}],
        title=_("Reliability curve"), x_label=_("Mean predicted probability"), y_label=_("Observed rate"),
        x_range=(0.0, top), y_range=(0.0, top), diagonal=True, diagonal_label=_("perfect calibration"),
        tick_format=_percent, chart_id=f"{chart_id}-reliability")
    return svg, rows


@register.inclusion_tag("core/_validation_curves.html")
def validation_curves(curves, chart_id: str = "curves", suffix="") -> dict:
    """The two validation curves of ``curves`` (a version's ``metrics["curves"]``; None or empty when the
    version was trained before curves were recorded). The element ids start with ``chart_id`` followed by
    ``suffix`` (a version's primary key, when a page shows several)."""
    chart_id = f"{chart_id}{suffix}"
    if not isinstance(curves, dict) or not (curves.get("roc") or {}).get("fpr"):
        return {"curves": None, "chart_id": chart_id}
    roc_svg, roc_rows = _roc(curves, chart_id)
    rel_svg, rel_rows = _reliability(curves, chart_id)
    # the SVG comes from core.charts, which escapes every text it writes
    return {"curves": curves, "chart_id": chart_id, "roc_svg": mark_safe(roc_svg),  # nosec B308 B703
            "roc_rows": roc_rows, "reliability_svg": mark_safe(rel_svg),  # nosec B308 B703
            "reliability_rows": rel_rows}
