"""Stored English texts in the page's language, at display time.

Alert reasons (``decisions.alert_decision``), the failure model's notes (``failure_model``) and the ingest
problems (``ingest``) are stored as English sentences, and stay so (exports, the API and the audit trail
read them as they are). The pages show them through :func:`text_display`: each known sentence form is
matched (a reason code, in effect) and rendered from a translatable message with its figures; a
probability becomes a percentage in the suite's one number format. A sentence no pattern knows is shown
as it is, never dropped.
"""
from __future__ import annotations

import re
from collections.abc import Callable

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from core.templatetags.core_tags import num, pct

_NUM = r"-?\d+(?:\.\d+)?"


def _unit(name: str) -> str:
    return {"cycles": _("cycles"), "hours": _("hours"), "cycle": _("cycle"), "timestamp": _("time")}.get(
        name, name)


def _p(value: str) -> str:
    return pct(value)


def _points(value: str) -> str:
    return num(float(value) * 100, 0)


# (pattern matched against the whole sentence, message, how each group is shown)
_Rule = tuple[re.Pattern, object, dict[str, Callable[[str], str]]]
_RULES: list[_Rule] = [(re.compile(p), m, f) for p, m, f in [
    # --- alert reasons (decisions.alert_decision) -------------------------------------------------
    (r"anomaly score above threshold on (?P<n>\d+) of the last (?P<m>\d+) steps",
     gettext_lazy("anomaly score above its threshold on %(n)s of the last %(m)s steps"), {}),
    (r"anomaly score above threshold, not yet persistent",
     gettext_lazy("anomaly score above its threshold, not yet persistent"), {}),
    (rf"failure probability (?P<p>{_NUM}) ≥ (?P<t>{_NUM}) for the first time",
     gettext_lazy("failure probability %(p)s ≥ %(t)s for the first time"), {"p": _p, "t": _p}),
    (rf"failure probability (?P<p>{_NUM}) ≥ (?P<t>{_NUM})",
     gettext_lazy("failure probability %(p)s ≥ %(t)s"), {"p": _p, "t": _p}),
    (r"awaiting confirmation", gettext_lazy("awaiting confirmation"), {}),
    (r"(?P<n>\d+) consecutive evaluations above the threshold",
     gettext_lazy("%(n)s consecutive evaluations above the threshold"), {}),
    (rf"above the threshold by ≥ (?P<m>{_NUM})",
     gettext_lazy("above the threshold by at least %(m)s percentage points"), {"m": _points}),
    (rf"remaining life (?P<r>{_NUM}) (?P<u>\w+) ≤ (?P<t>{_NUM}), corroborated by probability "
     rf"(?P<p>{_NUM}) ≥ (?P<q>{_NUM})",
     gettext_lazy("remaining life %(r)s %(u)s ≤ %(t)s, corroborated by a failure probability %(p)s ≥ %(q)s"),
     {"u": _unit, "p": _p, "q": _p, "r": num, "t": num}),
    (rf"remaining life (?P<r>{_NUM}) (?P<u>\w+) ≤ (?P<t>{_NUM})",
     gettext_lazy("remaining life %(r)s %(u)s ≤ %(t)s"), {"u": _unit, "r": num, "t": num}),
    (rf"critical: probability (?P<p>{_NUM}) ≥ (?P<t>{_NUM})",
     gettext_lazy("critical: failure probability %(p)s ≥ %(t)s"), {"p": _p, "t": _p}),
    (rf"critical: remaining life ≤ (?P<r>{_NUM}) (?P<u>\w+)",
     gettext_lazy("critical: remaining life ≤ %(r)s %(u)s"), {"u": _unit, "r": num}),
    # --- a horizon as the language model wrote it ("30 cycles") -------------------------------------
    (rf"(?:within )?(?P<n>{_NUM}) (?P<u>cycles|hours)", gettext_lazy("%(n)s %(u)s"), {"u": _unit, "n": num}),
    # --- the failure model's notes ---------------------------------------------------------------------
    (r"columns not used by the model: (?P<cols>.+)",
     gettext_lazy("columns not used by the model: %(cols)s"), {}),
    (r"anomaly detection only: sensors missing for the failure model: (?P<s>.+)",
     gettext_lazy("anomaly detection only: sensors missing for the failure model: %(s)s"), {}),
    (r"anomaly detection only: the model was trained without failure labels",
     gettext_lazy("anomaly detection only: the model was trained without failure labels"), {}),
    (r"sensors missing for the failure model: (?P<s>.+)",
     gettext_lazy("sensors missing for the failure model: %(s)s"), {}),
    (r"scored against this machine's own first (?P<n>\d+) steps",
     gettext_lazy("scored against this machine's own first %(n)s steps"), {}),
    (r"short series \((?P<n>\d+) steps < (?P<m>\d+)\): the early-life baseline is incomplete; treat the "
     r"numbers with caution",
     gettext_lazy("short series (%(n)s steps < %(m)s): the early-life baseline is incomplete; treat the "
                  "numbers with caution"), {}),
    # --- ingest problems (the batch's warnings and errors, a prediction's input issues) -----------
    (r"sensor (?P<s>\S+) never changes \(always (?P<v>[^)]+)\); excluded from features",
     gettext_lazy("%(s)s never changes (always %(v)s); excluded from the features"), {}),
    (r"machine (?P<m>\S+): sensor (?P<s>\S+) never changes \((?P<v>[^)]+)\) while it varies on other "
     r"machines; check the sensor",
     gettext_lazy("machine %(m)s: %(s)s never changes (%(v)s) while it varies on other machines; check "
                  "the sensor"), {}),
    (r"machine (?P<m>\S+): (?P<n>\d+) missing cycle\(s\) inserted \(first after cycle (?P<c>\d+)\); "
     r"values interpolated",
     gettext_lazy("machine %(m)s: %(n)s missing cycles inserted (the first after cycle %(c)s); values "
                  "interpolated"), {}),
    (r"row (?P<row>\d+), sensor (?P<s>\S+): value (?P<v>.+) is not a number; dropped",
     gettext_lazy("row %(row)s, %(s)s: the value %(v)s is not a number; dropped"), {}),
    (r"machine (?P<m>\S+): (?P<n>\d+) row\(s\) out of time order \(first at row (?P<row>\d+), time "
     r"(?P<t>[^)]+)\); reordered",
     gettext_lazy("machine %(m)s: %(n)s rows out of time order (the first at row %(row)s, time %(t)s); "
                  "reordered"), {}),
]]


def _one(sentence: str) -> str | None:
    for pattern, message, shown in _RULES:
        match = pattern.fullmatch(sentence.strip())
        if match:
            values = {k: (shown[k](v) if k in shown else v) for k, v in match.groupdict().items()}
            return str(message) % values
    return None


def text_display(text) -> str:
    """One stored English sentence (or several joined by "; ") in the page's language; unknown parts as
    they are."""
    text = str(text or "")
    whole = _one(text)
    if whole is not None:
        return whole
    parts = text.split("; ")
    shown = [_one(part) for part in parts]
    if not any(shown):
        return text
    return _("; ").join(s if s is not None else part for s, part in zip(shown, parts, strict=True))


def texts_display(texts) -> list[str]:
    return [text_display(t) for t in texts or []]
