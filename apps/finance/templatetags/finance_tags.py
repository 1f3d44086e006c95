from django import template

register = template.Library()


@register.filter
def pct(value, digits=1):
    """0.0421 → "4.2 %" (a probability as a percentage); "—" for None."""
    try:
        return f"{float(value) * 100:.{int(digits)}f} %"
    except (TypeError, ValueError):
        return "—"


@register.filter
def get_item(mapping, key):
    try:
        return mapping.get(key)
    except AttributeError:
        return None


@register.filter
def loc_text(item, lang="en"):
    """The text of a {code, text_en, text_zh} item in ``lang`` (plain strings pass through)."""
    if isinstance(item, dict):
        key = "text_zh" if str(lang or "en").startswith("zh") else "text_en"
        return item.get(key) or item.get("text_en") or item.get("code", "")
    return item
