"""Django-side fixtures for the manufacturing tests (import them into a test module with
``from apps.manufacturing.tests.fixtures import *``)."""
from __future__ import annotations

import io

import pandas as pd
import pytest

from apps.manufacturing import cmapss
from apps.manufacturing import failure_model as fm

__all__ = ["trained_model_bytes", "active_model", "engineer", "engineer_client", "fd001_frame",
           "wide_csv", "cmapss_bytes", "run_jobs", "llm_off"]

#: Engines the test model is trained on; the uploads use held-out engines (81 and above).
TRAIN_ENGINES = range(1, 31)


@pytest.fixture(scope="session")
def fd001_frame() -> pd.DataFrame:
    return cmapss.load_fd001_labelled()


@pytest.fixture(scope="session")
def trained_model_bytes(fd001_frame) -> bytes:
    """A failure model trained on 30 FD001 engines (horizon 30 cycles), on one thread (seconds)."""
    from threadpoolctl import threadpool_limits

    train = fd001_frame[fd001_frame["machine_id"].astype(int).isin(TRAIN_ENGINES)]
    with threadpool_limits(limits=1):
        model = fm.train_failure_model(train.drop(columns=["rul_capped"]), horizon=30, seed=0)
    return fm.dump(model)


@pytest.fixture
def active_model(db, trained_model_bytes):
    from apps.manufacturing import services

    return services.failure_model_register(model=fm.load(trained_model_bytes), name="test model",
                                           training_source="train_FD001 engines 1-30", activate=True)


@pytest.fixture
def engineer(make_user):
    return make_user("engineer", "manufacturing")


@pytest.fixture
def engineer_client(engineer, api_client_for):
    return api_client_for(engineer)


@pytest.fixture
def llm_off(settings):
    settings.LLM_ENABLED = False
    return settings


def wide_csv(fd001_frame: pd.DataFrame, engines: dict[int, int], *, sep: str = ",") -> bytes:
    """A wide-form CSV (header) of FD001 engines, each truncated to its first ``n`` cycles."""
    parts = []
    for unit, n in engines.items():
        g = fd001_frame[fd001_frame["machine_id"] == str(unit)].sort_values("cycle").head(n)
        parts.append(g.drop(columns=["rul", "rul_capped"]))
    frame = pd.concat(parts).rename(columns={"machine_id": "machine_id"})
    frame["machine_id"] = "ENG-" + frame["machine_id"].astype(str)
    buf = io.StringIO()
    frame.to_csv(buf, index=False, sep=sep, float_format="%.4f")
    return buf.getvalue().encode()


def cmapss_bytes(fd001_frame: pd.DataFrame, engines: dict[int, int]) -> bytes:
    """The same engines as a headerless, space-separated C-MAPSS file."""
    lines = []
    for unit, n in engines.items():
        g = fd001_frame[fd001_frame["machine_id"] == str(unit)].sort_values("cycle").head(n)
        for row in g[["cycle", *cmapss.SETTING_COLUMNS, *cmapss.SENSOR_COLUMNS]].to_numpy():
            values = " ".join(f"{v:.4f}" for v in row[1:])
            lines.append(f"{unit} {int(row[0])} {values}")
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture
def run_jobs():
    """Run what the worker would, in this process: parse a batch, then each queued prediction."""
    from apps.manufacturing import services
    from apps.manufacturing.models import Prediction
    from core.models import JobStatus
    from core.services import job_run_inline

    def run(batch=None, predictions=None):
        if batch is not None:
            services.batch_ingest(batch_id=batch.pk)
            predictions = list(Prediction.objects.filter(batch_id=batch.pk, status=JobStatus.QUEUED))
        for p in predictions or []:
            job_run_inline(model=Prediction, job_id=str(p.pk), handler=services.prediction_process,
                           worker="test")
        return predictions

    return run


