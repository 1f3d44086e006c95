"""``python manage.py evaluate_prompts [--app A] [--template T] [--template-version N] [--language L]
[--limit N] [--activate]``

Runs every prompt template version (or the ones chosen) on its app's labelled set through the model
service that the settings name, stores the figures (:class:`core.models.PromptEvaluation`) and prints one
line per version, then each version's comparison with the active one. ``--activate`` then activates the
newest version that measured at least as well as the active one.
"""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from core import services
from core.errors import AppError
from core.model_client import ModelServiceError
from core.models import PromptTemplate
from core.registry import suite_apps


class Command(BaseCommand):
    help = "Measure prompt template versions on the apps' labelled sets and store the figures."

    def add_arguments(self, parser):
        parser.add_argument("--app", help="only this app (label: finance, medical, manufacturing)")
        parser.add_argument("--template",
                            help="only this template (short name, e.g. risk_judgment, or <app>.<name>)")
        parser.add_argument("--template-version", dest="template_version", type=int, help="only this version")
        parser.add_argument("--language", choices=["en", "zh-hans", "all"], default="all")
        parser.add_argument("--limit", type=int, help="at most this many labelled items per run")
        parser.add_argument("--activate", action="store_true",
                            help="then activate the newest version that measured at least as well as "
                                 "the active one")

    def handle(self, *args, app=None, template=None, template_version=None, language="all", limit=None,
               activate=False, **options):
        labels = [a.label for a in suite_apps()]
        if app and app not in labels:
            raise CommandError(f"unknown app {app!r}; one of {', '.join(labels)}")
        qs = PromptTemplate.objects.all()
        if app:
            qs = qs.filter(name__startswith=f"{app}.")
        if template:
            qs = qs.filter(name=template) if "." in template else qs.filter(name__endswith=f".{template}")
        if template_version:
            qs = qs.filter(version=template_version)
        if language != "all":
            qs = qs.filter(language=language)
        rows = list(qs.order_by("name", "version", "language").values_list("name", "version", "language"))
        if not rows:
            raise CommandError("no prompt template matches; run `manage.py seed_prompts` or check the names")
        self.stdout.write(f"{'template':34} {'ver':>3} {'lang':7} {'n':>4}  {'primary':28} figures")
        skipped: set[str] = set()
        measured: list[tuple[str, int, str]] = []
        for name, ver, lang in rows:
            if name in skipped:
                continue
            try:
                ev = services.prompt_evaluation_run(name=name, version=ver, language=lang, limit=limit)
            except services.NoLabelledSet:
                skipped.add(name)
                self.stdout.write(f"{name:34} {'-':>3} {'-':7} {'-':>4}  no labelled set for this template")
                continue
            except ModelServiceError as exc:
                raise CommandError(f"{name} v{ver} ({lang}): the model service failed: {exc}") from exc
            measured.append((name, ver, lang))
            primary = f"{ev.primary}={ev.primary_value:.3f}" if ev.primary_value is not None else ev.primary
            others = ", ".join(f"{k}={v:.3f}" for k, v in ev.metrics.items() if k != ev.primary)
            self.stdout.write(f"{name:34} {ver:>3} {lang:7} {ev.n:>4}  {primary:28} {others}"
                              f"  ({ev.duration_s:.0f} s, {ev.model or 'model ?'})")
        # Against the active version, once every version of this run is measured.
        for name, ver, lang in measured:
            cmp = services.prompt_version_compare(name=name, version=ver, language=lang)
            if cmp["active_version"] not in (None, ver):
                self.stdout.write(f"{name} v{ver} ({lang}) against the active v{cmp['active_version']}: "
                                  f"{cmp['reason']}")
        if activate:
            for name in sorted({r[0] for r in rows} - skipped):
                newest = max(v for n, v, _ in rows if n == name)
                try:
                    result = services.prompt_template_activate(name=name, version=newest)
                except AppError as exc:
                    self.stdout.write(f"{name} v{newest} not activated: {exc.message}")
                else:
                    self.stdout.write(f"{name} v{result['version']} is active")
