import datetime
import math
from decimal import Decimal

from django import template
from django.utils.formats import date_format, get_format, number_format

from core.selectors import batch_progress as _batch_progress

register = template.Library()


@register.filter
def percent(fraction) -> int:
    """0.42 → 42 (for progress bars)."""
    try:
        return max(0, min(100, round(float(fraction) * 100)))
    except (TypeError, ValueError):
        return 0


@register.simple_tag
def batch_progress(batch) -> dict:
    return _batch_progress(batch=batch)


@register.inclusion_tag("core/_subnav.html", takes_context=True)
def subnav(context, label, *pairs) -> dict:
    """An app's sub-navigation, one style for every app:
    ``{% subnav _("Credit risk") "finance:index" _("Overview") "finance:review_queue" _("Review queue") %}``.

    ``label`` names the menu (aria-label); then URL name and label pairs. The link of the page shown is
    marked ``aria-current="page"`` (the first link only on its own page, the others also on pages below).
    """
    from django.urls import reverse

    if len(pairs) % 2:
        raise template.TemplateSyntaxError("subnav takes a label, then (URL name, label) pairs")
    request = context.get("request")
    path = request.path if request is not None else ""
    items = []
    for i in range(0, len(pairs), 2):
        name, text = pairs[i], pairs[i + 1]
        url = reverse(name)
        current = path == url or (i > 0 and path.startswith(url))
        items.append({"url": url, "label": text, "current": current,
                      "id": "nav-" + name.rsplit(":", 1)[-1].replace("_", "-")})
    return {"label": label, "items": items}


# --- one number and date format for the suite ---------------------------------------------------------
# Numbers go through Django's locale formats (``django.utils.formats.number_format``, what ``localize`` and
# humanize's ``intcomma`` use), always grouped: 5951.0 → "5,951"; probabilities are percentages with one
# decimal. The locale formats are Django's, with zh-Hans grouping by thousands (core/formats/).
DASH = "—"


def _number(value):
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        number = float(value) if not isinstance(value, Decimal) else value
    except (TypeError, ValueError):
        return None
    if isinstance(number, float) and not math.isfinite(number):
        return None
    return number


@register.filter
def num(value, digits=None) -> str:
    """A number in the page's locale, grouped by thousands: ``{{ 5951.0|num }}`` → 5,951, ``{{ x|num:2 }}``
    → fixed decimals. Without ``digits`` a whole number has none and others keep up to three. Not a
    number → the value as it is; None or empty → —."""
    number = _number(value)
    if number is None:
        return DASH if value is None or value == "" else str(value)
    if digits in (None, ""):
        places = 0 if float(number).is_integer() else 3
        text = number_format(round(float(number), places), decimal_pos=places, use_l10n=True,
                             force_grouping=True)
        if places:
            decimal = get_format("DECIMAL_SEPARATOR")
            text = text.rstrip("0").rstrip(decimal) if decimal in text else text
        return text
    places = int(digits)
    return number_format(round(float(number), places), decimal_pos=places, use_l10n=True, force_grouping=True)


@register.filter
def pct(value, digits=1) -> str:
    """A probability (0–1) as a percentage with fixed precision: ``{{ 0.4213|pct }}`` → 42.1%. Values that
    round to 0 or 100 without being exactly 0 or 1 say so (<0.1%, >99.9%)."""
    number = _number(value)
    if number is None:
        return DASH
    places = int(digits)
    p = float(number) * 100
    smallest = 10 ** -places
    if 0 < p < smallest / 2:
        return "<" + num(smallest, places) + "%"
    if 100 - smallest / 2 < p < 100:
        return ">" + num(100 - smallest, places) + "%"
    return num(p, places) + "%"


@register.filter
def dicom_date(value) -> str:
    """A DICOM DA value ("20040119") or an ISO date as a date in the page's locale format (DATE_FORMAT);
    anything else as it is, an empty value as —."""
    text = str(value or "").strip()
    if not text:
        return DASH
    for pattern in ("%Y%m%d", "%Y-%m-%d", "%Y.%m.%d"):
        try:
            day = datetime.datetime.strptime(text[:10] if pattern != "%Y%m%d" else text[:8], pattern).date()
        except ValueError:
            continue
        return date_format(day, "DATE_FORMAT")
    return text


# --- names of apps and job types, in the page's language ----------------------------------------------
@register.filter
def app_name(label) -> str:
    """A suite app's label ("finance") as its translated navigation name; unknown labels as they are."""
    from core.registry import suite_app

    try:
        return str(suite_app(str(label)).nav[0])
    except LookupError:
        return str(label or "")


@register.filter
def job_type_name(job) -> str:
    """A job (or a job type "<app>.<kind>") as a translated name: "<app name> · <kind name>"."""
    from django.utils.text import capfirst
    from django.utils.translation import gettext

    from core.registry import job_model

    job_type = job if isinstance(job, str) else getattr(job, "job_type", "")
    model = type(job) if not isinstance(job, str) else None
    if model is None:
        try:
            model = job_model(job_type)
        except LookupError:
            return job_type
    label = getattr(model, "type_label", None)
    kind = str(label) if label else gettext(capfirst(str(model._meta.verbose_name)))  # noqa: INT001
    app = job_type.split(".", 1)[0]
    name = app_name(app)
    return f"{name} · {kind}" if name != app else kind


@register.filter
def result_rows(result) -> list[tuple[str, str]]:
    """A job's stored result as (name, value) rows for a table: nested objects flattened one level
    ("metrics · oof_auc"), numbers in the one format, lists joined; long values shortened."""
    rows: list[tuple[str, str]] = []

    def text(value) -> str:
        if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
            return num(value)
        if isinstance(value, (list, tuple)):
            shown = ", ".join(text(v) for v in value[:12])
            return shown + (" …" if len(value) > 12 else "")
        if isinstance(value, dict):
            return "; ".join(f"{k}: {text(v)}" for k, v in list(value.items())[:12])
        if value is None:
            return DASH
        value = str(value)
        return value if len(value) <= 300 else value[:300] + " …"

    if not isinstance(result, dict):
        return [("", text(result))]
    for key, value in result.items():
        if isinstance(value, dict) and value and all(not isinstance(v, (dict, list)) for v in value.values()):
            rows += [(f"{key} · {k}", text(v)) for k, v in value.items()]
        else:
            rows.append((str(key), text(value)))
    return rows
