"""Train a failure model (RUL regressor, calibrated classifier, anomaly detector) from run-to-failure
history and store it as a new version::

    python manage.py train_failure_model --data ../shared/data/cmapss/train_FD001.txt --format cmapss \
        --activate
"""
from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.manufacturing import services
from apps.manufacturing.ingest import IngestError


class Command(BaseCommand):
    help = "Train a failure model from run-to-failure history (C-MAPSS, long or wide CSV) and store it."

    def add_arguments(self, parser):
        parser.add_argument("--data", required=True, help="the history file")
        parser.add_argument("--format", dest="data_format", default="auto",
                            choices=["auto", "cmapss", "long", "wide"],
                            help="cmapss: space separated, no header (26 columns); long/wide: sensor CSV")
        parser.add_argument("--horizon", type=float, default=30.0,
                            help="failure within this many cycles (hours on a timestamp axis)")
        parser.add_argument("--name", default="", help="a name for the version (default: the file name)")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--activate", action="store_true", help="make it the model predictions use")
        parser.add_argument("--cv", type=int, default=0, metavar="K",
                            help="also run K-fold cross-validation grouped by machine and store its metrics")

    def handle(self, *args, data, data_format, horizon, name, seed, activate, cv, **options):
        path = Path(data)
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        if horizon <= 0:
            raise CommandError("--horizon must be positive")
        try:
            with path.open("rb") as fh:
                frame, info = services.training_frame(fh, data_format=data_format, source=path.name)
        except IngestError as exc:
            raise CommandError(str(exc)) from None
        for line in info.get("warnings", [])[:10]:
            self.stdout.write(f"warning: {line}")
        self.stdout.write(f"training on {info['machines']} machines, {len(frame)} steps "
                          f"({info['format']} form), horizon {horizon:g}")
        from apps.manufacturing import failure_model as fm

        try:
            model = services.train_from_frame(frame, horizon=horizon, seed=seed)
        except (fm.ModelError, ValueError) as exc:
            raise CommandError(f"{path.name}: cannot train: {exc}") from None
        cv_metrics = dict(model.metadata.get("metrics") or {})
        if cv:
            self.stdout.write(f"cross-validating ({cv} folds grouped by machine)...")
            with services.thread_limit():
                report = fm.cross_validate(frame, n_splits=cv, horizon=horizon, seed=seed,
                                           threads=services.manufacturing_threads())
            cv_metrics.update({k: v for k, v in report.items() if k not in ("folds",)})
        version = services.failure_model_register(model=model, name=name or path.stem,
                                                  training_source=path.name, activate=activate,
                                                  cv_metrics=cv_metrics)
        metrics = ", ".join(f"{k}={v}" for k, v in cv_metrics.items() if isinstance(v, (int, float)))
        active = " — active" if activate else ""
        self.stdout.write(f"stored version {version.model_version} (id {version.pk}){active}")
        self.stdout.write(f"metrics: {metrics}")
