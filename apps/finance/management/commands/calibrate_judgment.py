"""Measure the language model's judgment on held-out labelled applications and store it with the
scorecard version: ``manage.py calibrate_judgment [--language en] [--limit N] [--scorecard-version V]``."""
from django.core.management.base import BaseCommand, CommandError

from apps.finance.models import CreditModelVersion
from apps.finance.services import FinanceInputError, judgment_calibrate


class Command(BaseCommand):
    help = ("Run the active risk-judgment prompt over the held-out labelled applications and store how "
            "informative it measured (AUC, weight, review rate) with the scorecard version.")

    def add_arguments(self, parser):
        parser.add_argument("--language", default="en", choices=["en", "zh-hans"])
        parser.add_argument("--limit", type=int, default=None, help="first N applications only")
        parser.add_argument("--scorecard-version", dest="scorecard_version", type=int, default=None,
                            help="scorecard version (default: active)")
        parser.add_argument("--concurrency", type=int, default=4, help="requests in flight")

    def handle(self, *args, language="en", limit=None, scorecard_version=None, concurrency=4, **options):
        version = scorecard_version
        row = None
        if version is not None:
            row = CreditModelVersion.objects.filter(version=version).first()
            if row is None:
                raise CommandError(f"no scorecard version {version}")
        try:
            m = judgment_calibrate(version=row, language=language, limit=limit, concurrency=concurrency)
        except FinanceInputError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"{m['prompt']} ({language}) by {m['model']} on {m['n']} held-out applications "
            f"({m['n_bad']} bad, {m['n_good']} good, {m['answered']:.0%} answered): AUC {m['auc']} "
            f"± {m['auc_se']} (margin {m['margin']}), levels {m['levels']}, "
            f"{'informative' if m['informative'] else 'not informative (' + m['why'] + ')'}; "
            f"weight {m['weight']}; disagreement would send {m['disagreement_rate']:.0%} to review, "
            f"it sends {m['review_rate']:.0%}; "
            f"scorecard AUC on the same rows {m['scorecard_auc']}")
