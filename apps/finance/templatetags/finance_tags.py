from django import template

register = template.Library()


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
