"""Compile every locale/*/LC_MESSAGES/*.po (project and apps) into .mo with polib (no GNU gettext needed)."""
from pathlib import Path

import polib
from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Compile translation catalogues (.po → .mo) without GNU gettext."

    def handle(self, *args, **options):
        from django.apps import apps

        count = 0
        bases = [Path(p) for p in settings.LOCALE_PATHS]
        root = Path(settings.BASE_DIR).resolve()
        bases += [Path(cfg.path) / "locale" for cfg in apps.get_app_configs()
                  if Path(cfg.path).resolve().is_relative_to(root) and (Path(cfg.path) / "locale").is_dir()]
        for base in bases:
            for po_path in Path(base).glob("*/LC_MESSAGES/*.po"):
                mo_path = po_path.with_suffix(".mo")
                if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
                    continue
                polib.pofile(str(po_path)).save_as_mofile(str(mo_path))
                count += 1
        self.stdout.write(f"compiled {count} catalogue(s)")
