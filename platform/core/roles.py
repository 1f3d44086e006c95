"""Roles are Django groups: one per suite app (from the registry) plus ``admin``, who (like superusers)
may do everything."""
from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, Group

from core import registry

ADMIN_ROLE = "admin"


def app_roles() -> tuple[str, ...]:
    """The suite apps' roles, in INSTALLED_APPS order."""
    return registry.app_roles()


def all_roles() -> tuple[str, ...]:
    """Every role: the apps' roles, then ``admin``."""
    return (*app_roles(), ADMIN_ROLE)


def __getattr__(name: str):
    # ``ROLES`` and ``APP_ROLES`` were constants; they are computed now (the apps must be loaded).
    if name == "ROLES":
        return all_roles()
    if name == "APP_ROLES":
        return app_roles()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def roles_ensure() -> None:
    for name in all_roles():
        Group.objects.get_or_create(name=name)


def user_roles(user) -> set[str]:
    if user is None or isinstance(user, AnonymousUser) or not user.is_authenticated:
        return set()
    cached = getattr(user, "_suite_roles", None)
    if cached is not None:
        return cached
    known = set(all_roles())
    names = set(user.groups.values_list("name", flat=True)) & known
    if user.is_superuser or ADMIN_ROLE in names:
        names = known
    user._suite_roles = names
    return names


def user_has_role(user, role: str) -> bool:
    return role in user_roles(user)
