"""Template context: the navigation the user's roles allow (one entry per suite app, from the registry)."""
from django.conf import settings
from django.urls import NoReverseMatch, reverse

from core.registry import suite_apps
from core.roles import ADMIN_ROLE, user_roles


def navigation(request):
    roles = user_roles(getattr(request, "user", None))
    items = []
    for app in suite_apps():
        if app.role not in roles:
            continue
        label, url_name = app.nav
        try:
            items.append({"role": app.role, "label": label, "url": reverse(url_name)})
        except NoReverseMatch:  # app pages not wired yet
            continue
    return {"nav_items": items, "user_roles": sorted(roles), "is_admin_role": ADMIN_ROLE in roles,
            "upload_max_bytes": settings.UPLOAD_MAX_BYTES,
            "upload_max_mb": settings.UPLOAD_MAX_BYTES // (1024 * 1024)}
