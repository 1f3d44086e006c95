"""``manage.py create_api_user NAME --roles finance,medical`` — prints the API token as the last line."""
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError

from core.roles import all_roles, roles_ensure
from core.services import api_token_create


class Command(BaseCommand):
    help = "Create (or reuse) a user with the given roles and print a new API token as the last line."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--roles", default="", help=f"comma-separated, of: {', '.join(all_roles())}")
        parser.add_argument("--token-name", default="api")

    def handle(self, *args, name, roles, token_name, **options):
        wanted = [r.strip() for r in roles.split(",") if r.strip()]
        unknown = sorted(set(wanted) - set(all_roles()))
        if unknown:
            raise CommandError(f"unknown role(s): {', '.join(unknown)}; use {', '.join(all_roles())}")
        roles_ensure()
        user, created = get_user_model().objects.get_or_create(username=name)
        if created:
            user.set_unusable_password()
            user.save()
        for role in wanted:
            user.groups.add(Group.objects.get(name=role))
        _token, secret = api_token_create(user=user, name=token_name)
        self.stdout.write(f"{'created' if created else 'updated'} user {name} "
                          f"with roles: {', '.join(wanted) or '(none)'}")
        self.stdout.write(secret)
