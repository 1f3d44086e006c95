"""Idempotent first-run setup: demo users (credentials printed), each app's default model and
worked example. Each app contributes through ``apps/<app>/demo.py``::

    def demo_seed(*, owner, stdout) -> None   # train the default model if none, queue one example
"""
import importlib
import os

from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand

from core.roles import roles_ensure
from core.services import prompt_templates_seed

DEMO_USERS = [
    # username, roles, superuser
    ("admin", ["admin"], True),
    ("analyst", ["finance"], False),
    ("radiologist", ["medical"], False),
    ("engineer", ["manufacturing"], False),
]
APPS = ("finance", "medical", "manufacturing")


class Command(BaseCommand):
    help = "Create demo users, default models and one worked example per app (safe to run again)."

    def add_arguments(self, parser):
        parser.add_argument("--no-examples", action="store_true")

    def handle(self, *args, no_examples=False, **options):
        roles_ensure()
        prompt_templates_seed()
        password = os.environ.get("DEMO_PASSWORD", "demo-Password-1")
        lines = []
        for username, roles, superuser in DEMO_USERS:
            user, created = User.objects.get_or_create(username=username, defaults={"is_staff": superuser,
                                                                                    "is_superuser": superuser})
            if created:
                user.set_password(password)
                user.save()
            for role in roles:
                user.groups.add(Group.objects.get(name=role))
            lines.append(f"  {username:<12} {password if created else '(unchanged)':<18} roles: {', '.join(roles)}")
        owner = User.objects.get(username="admin")
        for app in APPS:
            try:
                demo = importlib.import_module(f"apps.{app}.demo")
            except ModuleNotFoundError:
                continue
            if no_examples and hasattr(demo, "demo_models"):
                demo.demo_models(stdout=self.stdout)
            elif not no_examples:
                demo.demo_seed(owner=owner, stdout=self.stdout)
        self.stdout.write("Demo users (log in at http://127.0.0.1:8000/):")
        for line in lines:
            self.stdout.write(line)
