from django.core.management.base import BaseCommand

from core.services import prompt_templates_seed


class Command(BaseCommand):
    help = "Load prompt template versions from apps/*/prompts/ that are not in the database yet."

    def handle(self, *args, **options):
        stats = prompt_templates_seed()
        self.stdout.write(f"prompt templates: {stats['created']} created, {stats['unchanged']} unchanged, "
                          f"{stats['conflicts']} changed on disk (add a new version)")
