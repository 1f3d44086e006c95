"""core.charts (inline SVG charts), core.curves (validation-curve points) and the core_charts tags."""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from django.template import Context, Template
from django.utils import translation

from core import charts, curves

SVG = "{http://www.w3.org/2000/svg}"


def _parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)  # well-formed XML, or this raises
    assert root.tag == f"{SVG}svg"
    return root


def test_line_chart_is_valid_accessible_svg_with_points_inside_the_plot_area():
    points = [(0.0, 0.0), (0.1, 0.5), (0.4, 0.9), (1.0, 1.0), (1.7, -3.0)]  # the last one is off the axes
    svg = charts.line_chart([{"label": "model", "points": points, "mode": "both"}], title="ROC curve",
                            x_label="FPR", y_label="TPR", diagonal=True, diagonal_label="chance",
                            width=360, height=300)
    root = _parse(svg)
    assert root.get("role") == "img" and root.get("aria-label") == "ROC curve"
    assert root.find(f"{SVG}title").text == "ROC curve"
    plot = root.find(f".//{SVG}rect[@class='chart-plot']")
    left, top = float(plot.get("x")), float(plot.get("y"))
    right, bottom = left + float(plot.get("width")), top + float(plot.get("height"))
    circles = root.findall(f".//{SVG}g[@class='chart-series']/{SVG}circle")
    assert len(circles) == len(points)
    for c in circles:
        assert left <= float(c.get("cx")) <= right and top <= float(c.get("cy")) <= bottom
    # (0, 0) is the bottom-left corner, (1, 1) the top-right one; y grows downwards in SVG
    first, fourth = circles[0], circles[3]
    assert (float(first.get("cx")), float(first.get("cy"))) == pytest.approx((left, bottom), abs=0.1)
    assert (float(fourth.get("cx")), float(fourth.get("cy"))) == pytest.approx((right, top), abs=0.1)
    line = root.find(f".//{SVG}polyline")
    coords = [tuple(map(float, p.split(","))) for p in line.get("points").split()]
    assert len(coords) == len(points) and all(left <= x <= right and top <= y <= bottom for x, y in coords)
    diagonal = root.find(f".//{SVG}line[@class='chart-diagonal']")
    assert float(diagonal.get("x1")) == pytest.approx(left)
    assert float(diagonal.get("y2")) == pytest.approx(top)
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "FPR" in texts and "TPR" in texts and "chance" in texts and "model" in texts
    assert "0" in texts and "1" in texts  # tick labels at both ends


def test_every_text_is_escaped():
    evil = '<script>alert("x")</script> & "quotes"'
    svg = charts.line_chart([{"label": evil, "points": [(0.5, 0.5)], "mode": "markers"}], title=evil,
                            x_label=evil, y_label=evil, diagonal=True, diagonal_label=evil,
                            tick_format=lambda v: f"<{v}>")
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    root = _parse(svg)
    assert root.get("aria-label") == evil and root.find(f"{SVG}title").text == evil
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert texts.count(evil) == 4  # x and y labels, the series' and the diagonal's legend
    assert "<0.2>" in texts  # tick labels too


def test_axis_ticks_are_round_and_cover_the_range():
    assert charts.axis_ticks(0, 1, 6) == [0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert charts.axis_ticks(0, 0.25, 6) == [0, 0.05, 0.1, 0.15, 0.2, 0.25]
    with pytest.raises(ValueError):
        charts.line_chart([], title="t", x_range=(1, 1))


def test_validation_curves_roc_and_reliability():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 2000)
    p = np.clip(0.35 * y + 0.65 * rng.random(2000), 0, 1)
    c = curves.validation_curves(y, p)
    fpr, tpr = c["roc"]["fpr"], c["roc"]["tpr"]
    assert 2 < len(fpr) <= curves.ROC_MAX_POINTS and len(fpr) == len(tpr)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0, 0, 1, 1)
    assert all(np.diff(fpr) >= 0) and all(np.diff(tpr) >= 0)
    from sklearn.metrics import roc_auc_score

    assert c["roc"]["auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-3)
    bins = c["reliability"]
    assert len(bins) == 10 and sum(b["count"] for b in bins) == len(y) == c["rows"]
    assert [b["mean_predicted"] for b in bins] == sorted(b["mean_predicted"] for b in bins)
    assert c["positives"] == int(y.sum())
    assert curves.validation_curves(np.zeros(5), np.linspace(0, 1, 5)) is None  # one class: no ROC curve


def test_roc_with_ties_and_few_points():
    roc = curves.roc_points([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5])
    assert roc == {"fpr": [0.0, 1.0], "tpr": [0.0, 1.0], "auc": 0.5}


@pytest.mark.parametrize("lang", ["en", "zh-hans"])
def test_validation_curves_tag_renders_svg_tables_and_a_note_without_curves(lang):
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 300)
    stored = curves.validation_curves(y, np.clip(0.3 * y + 0.7 * rng.random(300), 0, 1))
    template = Template("{% load core_charts %}{% validation_curves c chart_id='m' %}")
    with translation.override(lang):
        html = template.render(Context({"c": stored}))
        missing = template.render(Context({"c": None}))
    svgs = re.findall(r"<svg.*?</svg>", html, flags=re.S)
    assert len(svgs) == 2 and all(_parse(s).get("role") == "img" for s in svgs)
    assert 'id="m-roc"' in html and 'id="m-reliability"' in html and "<details>" in html
    assert "<svg" not in missing and "curves-missing" in missing
    if lang == "zh-hans":
        assert "左上角" in html and "对角线" in html and "ROC 曲线" in html and "未记录曲线" in missing
    else:
        assert "top-left corner" in html and "diagonal" in html and "not recorded" in missing
