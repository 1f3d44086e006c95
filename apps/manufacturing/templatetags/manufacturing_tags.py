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
