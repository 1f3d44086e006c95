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
