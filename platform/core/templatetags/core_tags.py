from django import template

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
