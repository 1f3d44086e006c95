"""First-run demo for the manufacturing app (called by ``manage.py setup_demo``).

- :func:`demo_models`: train and activate the default failure model on the C-MAPSS FD001 training
  data (``CMAPSS_DIR``, default ``<repo>/../shared/data/cmapss``, else the copy shipped in ``data/``;
  see :func:`apps.manufacturing.cmapss.cmapss_dir`), deterministically (seed 0), if no
  model exists yet.
- :func:`demo_seed`: the model, then one worked example if none exists: six FD001 engines cut off
  before failure, written as a wide sensor CSV into the media storage and queued as an upload.
"""
from __future__ import annotations

import io

from django.core.files.base import ContentFile

from apps.manufacturing import cmapss, services
from apps.manufacturing.models import FailureModelVersion
from core.models import Batch

DEFAULT_MODEL_NAME = "FD001 default"
DEMO_FILENAME = "demo_fd001_fleet.csv"
#: engine → cycles kept (each fails later: 91 at 135, 93 at 155, 86 at 278, 92 at 341, 85 at 188, 81 at 240)
DEMO_ENGINES = {91: 120, 93: 140, 86: 250, 92: 300, 85: 100, 81: 150}


def demo_models(*, stdout) -> FailureModelVersion | None:
    """Train and activate the default model if there is no model yet."""
    existing = (FailureModelVersion.objects.filter(is_active=True).first()
                or FailureModelVersion.objects.first())
    if existing is not None:
        stdout.write(f"manufacturing: model {existing.label} already present")
        return existing
    try:
        frame = cmapss.load_fd001_labelled()
    except cmapss.CmapssError as exc:
        stdout.write(f"manufacturing: no default model ({exc})")
        return None
    stdout.write("manufacturing: training the default failure model on train_FD001 (100 engines)...")
    model = services.train_from_frame(frame.drop(columns=["rul_capped"]), horizon=30, seed=0)
    version = services.failure_model_register(model=model, name=DEFAULT_MODEL_NAME,
                                              training_source="train_FD001.txt", activate=True)
    auc = version.cv_metrics.get("oof_auc")
    stdout.write(f"manufacturing: model {version.model_version} active (out-of-fold AUC {auc})")
    return version


def demo_csv() -> bytes:
    """The worked example: FD001 engines truncated before failure, as a wide sensor CSV."""
    frame = cmapss.load_cmapss("train_FD001.txt")
    parts = []
    for unit, keep in DEMO_ENGINES.items():
        g = frame[frame["machine_id"] == str(unit)].sort_values("cycle").head(keep).copy()
        g["machine_id"] = f"FD001-{unit:03d}"
        parts.append(g)
    import pandas as pd

    out = io.StringIO()
    pd.concat(parts).to_csv(out, index=False, float_format="%.4f")
    return out.getvalue().encode()


def demo_seed(*, owner, stdout) -> Batch | None:
    version = demo_models(stdout=stdout)
    existing = Batch.objects.filter(app="manufacturing", original_filename=DEMO_FILENAME).first()
    if existing is not None:
        stdout.write(f"manufacturing: worked example already queued ({existing.pk})")
        return existing
    if version is None:
        return None
    try:
        data = demo_csv()
    except cmapss.CmapssError as exc:
        stdout.write(f"manufacturing: no worked example ({exc})")
        return None
    batch = services.upload_create(owner=owner, upload=ContentFile(data, name=DEMO_FILENAME))
    stdout.write(f"manufacturing: worked example queued: {len(DEMO_ENGINES)} FD001 engines ({batch.pk})")
    return batch
