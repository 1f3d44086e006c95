"""Finance test fixtures: a scorecard trained once per session on the shared German Credit file."""
from __future__ import annotations

import pytest

from apps.finance import scorecard

_TRAINED: dict = {}


def shared_csv_path():
    from apps.finance.demo import training_csv_path

    path = training_csv_path()
    if not path.is_file():
        pytest.skip(f"shared German Credit file not found at {path}")
    return path


def trained_scorecard() -> scorecard.TrainedScorecard:
    """The logistic (WOE) scorecard, 3 folds: quick to train, good enough for pipeline tests."""
    if "model" not in _TRAINED:
        import pandas as pd

        frame = pd.read_csv(shared_csv_path(), dtype=str, keep_default_na=False)
        _TRAINED["model"] = scorecard.train_scorecard(frame, seed=0, algorithm="woe_logistic", folds=3)
    return _TRAINED["model"]


@pytest.fixture
def credit_model(db):
    """An active scorecard version in the test database."""
    from apps.finance.services import credit_model_store

    return credit_model_store(trained=trained_scorecard(), data_sha256="0" * 64,
                              filename="german_credit_train.csv", activate=True, note="test")


@pytest.fixture
def german_rows():
    """The shared file's rows as dicts of strings (label included)."""
    import csv

    with shared_csv_path().open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture
def llm_off(settings):
    settings.LLM_ENABLED = False
    return settings


def applicant_of(row: dict) -> dict:
    return {k: v for k, v in row.items() if k != "creditability"}


def csv_bytes(rows: list[dict], columns: list[str], encoding: str = "utf-8") -> bytes:
    import csv
    import io

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
    return buf.getvalue().encode(encoding)
