"""Template helpers of the manufacturing pages."""
from django import template
from django.utils.translation import gettext as _

register = template.Library()


@register.filter
def unit(value) -> str:
    """A time unit in the page's language ("cycles" → 周期)."""
    names = {"cycles": _("cycles"), "hours": _("hours")}
    return names.get(str(value or ""), value or "")


@register.filter
def level(value) -> str:
    """An alert level in the page's language."""
    names = {"critical": _("critical"), "warning": _("warning")}
    return names.get(str(value or ""), value or "")


@register.filter
def mtext(value) -> str:
    """A stored English sentence (alert reason, model note, ingest problem) in the page's language."""
    from apps.manufacturing.texts import text_display

    return text_display(value)


@register.filter
def mtext_within(value) -> str:
    """A stored Chinese sentence quoting an English one in full-width brackets ("…（sensors missing for the
    failure model: …）…"): the quoted sentence in the page's language."""
    import re

    from apps.manufacturing.texts import text_display

    return re.sub(r"（([^（）]+)）", lambda m: "（" + text_display(m.group(1)) + "）", str(value or ""))


@register.filter
def delimiter_name(value) -> str:
    """The detected delimiter in words (",," read badly): comma, semicolon, tab, pipe, spaces."""
    names = {",": _("comma"), ";": _("semicolon"), "\t": _("tab"), "|": _("pipe"), " ": _("spaces"),
             "": _("spaces"), "None": _("spaces"), "whitespace": _("spaces")}
    return names.get("" if value is None else str(value), str(value))


@register.filter
def layout_name(value) -> str:
    """An input layout in the page's language (long, wide, C-MAPSS)."""
    names = {"long": _("long form"), "wide": _("wide form"), "cmapss": _("NASA C-MAPSS")}
    return names.get(str(value or ""), value or "")


@register.filter
def axis_name(value) -> str:
    """A time axis in the page's language."""
    names = {"cycle": _("cycle"), "timestamp": _("timestamps")}
    return names.get(str(value or ""), value or "")


@register.filter
def llm_status(value) -> str:
    """The language-model step's status in the page's language."""
    names = {"ok": _("explained"), "disabled": _("switched off"), "unavailable": _("unavailable"),
             "rejected": _("rejected")}
    return names.get(str(value or ""), value or "")
