"""Finish a SECRET_KEY rotation for stored model artifacts::

    SECRET_KEY=<new> SECRET_KEY_FALLBACKS=<old> python manage.py resign_model_artifacts

Every suite app that stores trained models declares an ``artifacts_resign`` hook (core.registry); each
artifact still signed with a fallback key (or written in an older format) is written again in the one
signed format with the current key; afterwards the old key can leave SECRET_KEY_FALLBACKS
(docs/deploy.md, "Rotating SECRET_KEY").
"""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from core.registry import suite_apps


class Command(BaseCommand):
    help = "Re-sign stored model artifacts with the current SECRET_KEY (after a key rotation)."

    def handle(self, *args, **options):
        totals: dict[str, list[str]] = {"resigned": [], "current": [], "refused": []}
        for app in suite_apps():
            resign = app.hook("artifacts_resign")
            if resign is None:
                continue
            stats = resign()
            for outcome, labels in totals.items():
                labels.extend(f"{app.label}: {label}" for label in stats.get(outcome, []))
        for label in totals["resigned"]:
            self.stdout.write(f"re-signed: {label}")
        self.stdout.write(f"model artifacts: {len(totals['resigned'])} re-signed, {len(totals['current'])} "
                          f"already current, {len(totals['refused'])} refused")
        if totals["refused"]:
            raise CommandError("these artifacts match no key in SECRET_KEY or SECRET_KEY_FALLBACKS; "
                               "retrain them:\n"
                               + "\n".join(totals["refused"]))
