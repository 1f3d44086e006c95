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


def _at(value: str) -> str:
    """"row 5" / "item 5" in the page's language."""
    word, _sp, n = value.partition(" ")
    return (_("item %(n)s") if word == "item" else _("row %(n)s")) % {"n": n}


def _axis(value: str) -> str:
    return {"cycle": _("cycle numbers"), "timestamp": _("timestamps")}.get(value, value)


def _missing(value: str) -> str:
    """"machine_id and no timestamp or cycle" (the missing columns) in the page's language."""
    names = {"timestamp or cycle": _("timestamp or cycle")}
    return _(", ").join(names.get(part, part) for part in value.split(" and no "))


def _points_pct(value: str) -> str:
    return num(float(value) * 100, 0) + " " + _("percentage points")


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
    # --- ingest problems, the rest (readers, columns, accumulate, assemble, cleaning, push) -----------
    (r"value (?P<v>.+) is not a number; dropped",
     gettext_lazy("the value %(v)s is not a number; dropped"), {}),
    (r"both ['\"](?P<a>.+?)['\"] and ['\"](?P<b>.+?)['\"] present; ['\"](?P<c>.+?)['\"] is used as "
     r"the time axis", gettext_lazy("both %(a)s and %(b)s present; %(c)s is used as the time axis"), {}),
    (r"columns ignored in long form: (?P<cols>.+)",
     gettext_lazy("columns ignored in long form: %(cols)s"), {}),
    (r"column ['\"](?P<c>.+?)['\"] repeats sensor ['\"](?P<s>.+?)['\"]; ignored",
     gettext_lazy("column %(c)s repeats the sensor %(s)s; ignored"), {}),
    (r"column ['\"](?P<c>.+?)['\"] holds no numbers; it is not a sensor and is ignored",
     gettext_lazy("column %(c)s holds no numbers; it is not a sensor and is ignored"), {}),
    (r"the time column holds numbers; read as Unix epoch seconds \(UTC\)",
     gettext_lazy("the time column holds numbers; read as Unix epoch seconds (UTC)"), {}),
    (r"the time column holds numbers; read as Unix epoch milliseconds \(UTC\)",
     gettext_lazy("the time column holds numbers; read as Unix epoch milliseconds (UTC)"), {}),
    (r"the time column holds plain numbers; they are read as cycles \(steps\)",
     gettext_lazy("the time column holds plain numbers; they are read as cycles (steps)"), {}),
    (r"(?P<c>\S+) (?P<v>'[^']*'|\"[^\"]*\") is not a cycle number; (?:row|item) dropped",
     gettext_lazy("%(c)s %(v)s is not a cycle number; dropped"), {}),
    (r"(?P<c>\S+) (?P<v>'[^']*'|\"[^\"]*\") is not a readable timestamp; (?:row|item) dropped",
     gettext_lazy("%(c)s %(v)s is not a readable timestamp; dropped"), {}),
    (r"(?P<c>\S+) (?:'[^']*'|\"[^\"]*\") is empty; (?:row|item) dropped",
     gettext_lazy("%(c)s is empty; dropped"), {}),
    (r"(?P<c>\S+) is empty; (?:row|item|reading) dropped", gettext_lazy("%(c)s is empty; dropped"), {}),
    (r"wrong number of fields; (?:row|item) skipped",
     gettext_lazy("wrong number of fields; skipped"), {}),
    (r"not an object", gettext_lazy("not an object"), {}),
    (r"sensor is empty", gettext_lazy("the sensor is empty"), {}),
    (r"no sensor values", gettext_lazy("no sensor values"), {}),
    (r"no (?P<k>cycle|cycles|time_cycles|time_in_cycles|cycle_no|cycle_number|timestamp|time|datetime|"
     r"date_time|ts|date)", gettext_lazy("no %(k)s"), {}),
    (r"machine (?P<m>.+?), sensor (?P<s>\S+), (?P<a>cycle|timestamp) (?P<t>\S+): duplicated at "
     r"(?P<r1>(?:row|item) \d+) and (?P<r2>(?:row|item) \d+); the last \((?:row|item) \d+, value "
     r"(?P<v>\S+)\) is kept",
     gettext_lazy("machine %(m)s, %(s)s, %(a)s %(t)s: duplicated at %(r1)s and %(r2)s; the last "
                  "(value %(v)s) is kept"), {"a": _unit, "r1": _at, "r2": _at}),
    (r"operating settings vary: outlier detection is skipped \(sensor levels change with the regime\)",
     gettext_lazy("operating settings vary: outlier detection is skipped (sensor levels change with the "
                  "regime)"), {}),
    (r"no usable reading \(every (?:row|item) or value was rejected\)",
     gettext_lazy("no usable reading (every row or value was rejected)"), {}),
    (r"no usable reading \((?P<first>.+)\)", gettext_lazy("no usable reading (%(first)s)"),
     {"first": lambda v: text_display(v)}),
    (r"no readings at all for sensor (?P<s>\S+); left empty",
     gettext_lazy("no readings at all for %(s)s; left empty"), {}),
    (r"cycles are sparse \((?P<n>\d+) of (?P<m>\d+)\); kept as they are",
     gettext_lazy("cycles are sparse (%(n)s of %(m)s); kept as they are"), {}),
    (rf"very uneven timestamps; resampled to (?P<n>\d+) points at the mean interval "
     rf"\((?P<s>{_NUM}(?:e[+-]?\d+)?) s\)",
     gettext_lazy("very uneven timestamps; resampled to %(n)s points at the mean interval (%(s)s s)"), {}),
    (rf"irregular timestamps resampled to a regular (?P<s>{_NUM}(?:e[+-]?\d+)?) s grid "
     r"\((?P<n>\d+) readings → "
     r"(?P<g>\d+) points; (?P<l>\d+) gap\(s\) longer than 3 intervals interpolated\)",
     gettext_lazy("irregular timestamps resampled to a regular %(s)s s grid (%(n)s readings → %(g)s points; "
                  "%(l)s gaps longer than 3 intervals interpolated)"), {}),
    (r"(?P<n>\d+) missing value\(s\) filled by interpolation \((?P<d>.+)\)",
     gettext_lazy("%(n)s missing values filled by interpolation (%(d)s)"), {}),
    (r"machine (?P<m>.+?), sensor (?P<s>\S+), (?P<a>cycle|timestamp) (?P<t>\S+): value (?P<v>\S+) is an "
     r"outlier \(robust z (?P<z>\S+)\); replaced by (?P<r>\S+)",
     gettext_lazy("machine %(m)s, %(s)s, %(a)s %(t)s: the value %(v)s is an outlier (robust z %(z)s); "
                  "replaced by %(r)s"), {"a": _unit}),
    (r"machine (?P<m>.+?), sensor (?P<s>\S+), (?P<a>cycle|timestamp) (?P<t>\S+): value (?P<v>\S+) is an "
     r"outlier \(robust z (?P<z>\S+)\)",
     gettext_lazy("machine %(m)s, %(s)s, %(a)s %(t)s: the value %(v)s is an outlier (robust z %(z)s)"),
     {"a": _unit}),
    (r"(?P<n>\d+) more '(?P<c>[\w-]+)' items not listed \((?P<t>\d+) in all\)",
     gettext_lazy("%(n)s more items of the kind %(c)s not listed (%(t)s in all)"), {}),
    # --- a file or a payload that cannot be read at all (after "<file name>: ") ---------------------
    (r"the file is empty(?: \(no rows\))?", gettext_lazy("the file is empty"), {}),
    (r"file exceeds the size limit of (?P<n>[\d,]+) bytes",
     gettext_lazy("the file exceeds the size limit of %(n)s bytes"),
     {"n": lambda v: num(int(v.replace(",", "")))}),
    (r"could not detect the delimiter \(expected comma, semicolon, tab or spaces between at least two "
     r"columns\)", gettext_lazy("could not detect the delimiter (expected comma, semicolon, tab or spaces "
                                "between at least two columns)"), {}),
    (r"no header row and (?P<n>\d+) numeric columns; expected a header naming machine_id, timestamp or "
     r"cycle and the sensors, or a 26-column C-MAPSS file",
     gettext_lazy("no header row and %(n)s numeric columns; expected a header naming machine_id, timestamp "
                  "or cycle and the sensors, or a 26-column C-MAPSS file"), {}),
    (r"no (?P<miss>.+?) column \(found columns: (?P<cols>.*)\); expected machine_id, timestamp or cycle, "
     r"then sensor and value \(long form\) or one column per sensor \(wide form\)",
     gettext_lazy("no %(miss)s column (found columns: %(cols)s); expected machine_id, timestamp or cycle, "
                  "then sensor and value (long form) or one column per sensor (wide form)"),
     {"miss": _missing}),
    (r"no sensor columns: give either sensor and value columns \(long form\) or one column per sensor "
     r"\(wide form\); found columns: (?P<cols>.*)",
     gettext_lazy("no sensor columns: give either sensor and value columns (long form) or one column per "
                  "sensor (wide form); found columns: %(cols)s"), {}),
    (r"no numeric sensor columns", gettext_lazy("no numeric sensor columns"), {}),
    (r"no readable readings \((?:empty file or every row rejected|every row or value was rejected)\)",
     gettext_lazy("no readable readings (every row or value was rejected)"), {}),
    (r"could not (?:parse|read) the file: (?P<e>.+)",
     gettext_lazy("could not read the file: %(e)s"), {}),
    (r"column (?P<c>.+) missing in part of the file",
     gettext_lazy("column %(c)s missing in part of the file"), {}),
    (r"machine_id is empty", gettext_lazy("machine_id is empty"), {}),
    (r"readings must be a non-empty list of objects",
     gettext_lazy("readings must be a non-empty list of objects"), {}),
    (r"the first reading has no timestamp or cycle",
     gettext_lazy("the first reading has no timestamp or cycle"), {}),
    (r"no usable reading in the payload", gettext_lazy("no usable reading in the payload"), {}),
    (r"stored readings use (?P<a>cycle|timestamp), this file uses (?P<b>cycle|timestamp); its readings were "
     r"not stored", gettext_lazy("stored readings use %(a)s, this file uses %(b)s; its readings were not "
                                 "stored"), {"a": _axis, "b": _axis}),
    (r"stored readings use (?P<a>cycle|timestamp), these use (?P<b>cycle|timestamp); send the same kind of "
     r"time \(cycle numbers or timestamps\)",
     gettext_lazy("stored readings use %(a)s, these use %(b)s; send the same kind of time (cycle numbers or "
                  "timestamps)"), {"a": _axis, "b": _axis}),
    # --- a prediction's or a training's progress and failure ----------------------------------------
    (r"scoring with the calibrated models", gettext_lazy("scoring with the calibrated models"), {}),
    (r"waiting for the language model", gettext_lazy("waiting for the language model"), {}),
    (r"waiting to retry", gettext_lazy("waiting to retry"), {}),
    (r"reading the history", gettext_lazy("reading the history"), {}),
    (r"training on (?P<n>\d+) machines", gettext_lazy("training on %(n)s machines"), {"n": num}),
    (r"no active failure model: train one \(Models page or `manage.py train_failure_model --activate`\) and "
     r"submit the readings again",
     gettext_lazy("no active failure model: train one (Models page or `manage.py train_failure_model "
                  "--activate`) and submit the readings again"), {}),
    (r"no stored readings", gettext_lazy("no stored readings"), {}),
    (r"the language model step is switched off \(LLM_ENABLED=false\)",
     gettext_lazy("the language model step is switched off"), {}),
    (r"calibrated classifier probability is authoritative; the LLM's probability is shown beside it; "
     rf"\|gap\| > (?P<g>{_NUM}) flags disagreement",
     gettext_lazy("the calibrated classifier's probability is authoritative; the language model's is shown "
                  "beside it; a gap above %(g)s flags disagreement"), {"g": _points_pct}),
]]


_WHERE = re.compile(r"(?:(?:row|item) \d+|machine [^,:]+|sensor [^,:]+)(?:, (?:(?:row|item) \d+|machine "
                    r"[^,:]+|sensor [^,:]+))*")


def _where(text: str) -> str:
    """"row 5, machine A, sensor s" in the page's language."""
    out = []
    for part in text.split(", "):
        word, _sp, value = part.partition(" ")
        out.append({"row": _("row %(n)s"), "item": _("item %(n)s"), "machine": _("machine %(n)s"),
                    "sensor": _("sensor %(n)s")}[word] % {"n": value})
    return _(", ").join(out)


def _prefixed(sentence: str) -> str | None:
    """A sentence after a "where: " (row, item, machine, sensor) or a "<file name>: " prefix."""
    head, sep, rest = sentence.partition(": ")
    if not sep:
        return None
    shown = _one(rest)
    if shown is None:
        return None
    where = _where(head) if _WHERE.fullmatch(head) else head
    return _("%(where)s: %(what)s") % {"where": where, "what": shown}


def _one(sentence: str) -> str | None:
    for pattern, message, shown in _RULES:
        match = pattern.fullmatch(sentence.strip())
        if match:
            values = {k: (shown[k](v) if k in shown else v) for k, v in match.groupdict().items()}
            return str(message) % values
    return _prefixed(sentence.strip())


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
