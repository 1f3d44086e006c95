"""Finish a SECRET_KEY rotation for stored model artifacts::

    SECRET_KEY=<new> SECRET_KEY_FALLBACKS=<old> python manage.py resign_model_artifacts

Every failure-model artifact still signed with a fallback key is signed again with the current key;
afterwards the old key can leave SECRET_KEY_FALLBACKS (docs/deploy.md, "Rotating SECRET_KEY").
"""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from apps.manufacturing import services


class Command(BaseCommand):
    help = "Re-sign stored model artifacts with the current SECRET_KEY (after a key rotation)."

    def handle(self, *args, **options):
        stats = services.failure_model_artifacts_resign()
        for label in stats["resigned"]:
            self.stdout.write(f"re-signed: {label}")
        self.stdout.write(f"model artifacts: {len(stats['resigned'])} re-signed, {len(stats['current'])} already "
                          f"current, {len(stats['refused'])} refused")
        if stats["refused"]:
            raise CommandError("these artifacts match no key in SECRET_KEY or SECRET_KEY_FALLBACKS; retrain them:\n"
                               + "\n".join(stats["refused"]))
