"""Idempotent first-run setup: demo users (credentials printed), each app's default model and
worked example. The apps and their hooks come from the registry (:class:`core.registry.SuiteApp`):
each suite app names a demo user for its role and, optionally, two hooks (dotted paths)::

    demo_seed(*, owner, stdout) -> None     # train the default model if none, queue one example
    demo_models(*, stdout) -> None          # the default model only (``--no-examples``)
"""
import os

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand

from core.registry import suite_apps
from core.roles import ADMIN_ROLE, roles_ensure
from core.services import prompt_templates_seed

DEMO_ADMIN = "admin"


def demo_users() -> list[tuple[str, list[str], bool]]:
    """(username, roles, superuser): the admin, then one user per suite app with that app's role."""
    return [(DEMO_ADMIN, [ADMIN_ROLE], True)] + [(app.demo_user, [app.role], False) for app in suite_apps()]


class Command(BaseCommand):
    help = "Create demo users, default models and one worked example per app (safe to run again)."

    def add_arguments(self, parser):
        parser.add_argument("--no-examples", action="store_true")

    def handle(self, *args, no_examples=False, **options):
        roles_ensure()
        prompt_templates_seed()
        password = os.environ.get("DEMO_PASSWORD", "demo-Password-1")
        lines = []
        for username, roles, superuser in demo_users():
            user, created = User.objects.get_or_create(
                username=username, defaults={"is_staff": superuser, "is_superuser": superuser}
            )
            if created:
                user.set_password(password)
                user.save()
            for role in roles:
                user.groups.add(Group.objects.get(name=role))
            lines.append(f"  {username:<12} {password if created else '(unchanged)':<18} "
                         f"roles: {', '.join(roles)}")
        owner = User.objects.get(username=DEMO_ADMIN)
        for app in suite_apps():
            if no_examples:
                hook = app.hook("demo_models")
                if hook is not None:
                    hook(stdout=self.stdout)
            else:
                hook = app.hook("demo_seed")
                if hook is not None:
                    hook(owner=owner, stdout=self.stdout)
        self.stdout.write(f"Demo users (log in at http://127.0.0.1:{settings.WEB_PORT}/):")
        for line in lines:
            self.stdout.write(line)
