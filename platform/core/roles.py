"""Roles are Django groups. ``admin`` (and superusers) may do everything."""
from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, Group

ROLES = ("finance", "medical", "manufacturing", "admin")
APP_ROLES = ("finance", "medical", "manufacturing")


def roles_ensure() -> None:
    for name in ROLES:
        Group.objects.get_or_create(name=name)


def user_roles(user) -> set[str]:
    if user is None or isinstance(user, AnonymousUser) or not user.is_authenticated:
        return set()
    cached = getattr(user, "_suite_roles", None)
    if cached is not None:
        return cached
    names = set(user.groups.values_list("name", flat=True)) & set(ROLES)
    if user.is_superuser or "admin" in names:
        names = set(ROLES)
    user._suite_roles = names
    return names


def user_has_role(user, role: str) -> bool:
    return role in user_roles(user)
