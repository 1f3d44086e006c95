"""Template context: the navigation the user's roles allow."""
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from core.roles import user_roles

NAV = [
    ("finance", _("Credit risk"), "finance:index"),
    ("medical", _("Radiology"), "medical:index"),
    ("manufacturing", _("Equipment"), "manufacturing:index"),
]


def navigation(request):
    roles = user_roles(getattr(request, "user", None))
    items = []
    for role, label, url_name in NAV:
        if role in roles:
            try:
                items.append({"role": role, "label": label, "url": reverse(url_name)})
            except Exception:  # app pages not wired yet
                continue
    from django.conf import settings

    return {"nav_items": items, "user_roles": sorted(roles), "is_admin_role": "admin" in roles,
            "upload_max_bytes": settings.UPLOAD_MAX_BYTES, "upload_max_mb": settings.UPLOAD_MAX_BYTES // (1024 * 1024)}
