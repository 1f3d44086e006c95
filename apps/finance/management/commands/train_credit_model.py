"""Train a new scorecard version from a labelled CSV:
``manage.py train_credit_model --data CSV [--activate]``."""
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.finance.services import FinanceInputError, credit_model_train


class Command(BaseCommand):
    help = ("Train a credit scorecard version from a labelled CSV (the German Credit columns plus "
            "'creditability' good/bad); prints its metrics. --activate makes it the one new assessments use.")

    def add_arguments(self, parser):
        parser.add_argument("--data", required=True, help="labelled CSV file (UTF-8 or GBK)")
        parser.add_argument("--activate", action="store_true", help="activate the new version")
        parser.add_argument("--note", default="", help="a note stored with the version")
        parser.add_argument("--seed", type=int, default=0, help="random seed (training is deterministic)")

    def handle(self, *args, data, activate=False, note="", seed=0, **options):
        path = Path(data)
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        try:
            version = credit_model_train(data=path.read_bytes(), filename=path.name, activate=activate,
                                         note=note, seed=seed)
        except FinanceInputError as exc:
            raise CommandError(str(exc)) from None
        m = version.metrics
        self.stdout.write(
            f"scorecard v{version.version} ({version.algorithm}) trained on {version.data_rows} rows "
            f"(sha256 {version.data_sha256[:12]}): out-of-fold AUC {m.get('auc')}, KS {m.get('ks')}, "
            f"Gini {m.get('gini')}, Brier {m.get('brier')}; "
            f"5-fold CV AUC {m.get('cv_auc')} ± {m.get('cv_auc_std')}"
        )
        for attr, rows in (version.fairness.get("groups") or {}).items():
            flagged = [r["group"] for r in rows if r.get("flag")]
            if flagged:
                self.stdout.write(f"  fairness: {attr}: approval-rate ratio below 0.8 for "
                                  f"{', '.join(flagged)}")
        self.stdout.write("activated" if activate
                          else "not active; activate it on the Models page or with --activate")
