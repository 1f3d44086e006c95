"""Finance test fixtures: a scorecard trained once per session on the shared German Credit file."""
from __future__ import annotations

import io
import lzma
from pathlib import Path

import pytest

from apps.finance import scorecard

_TRAINED: dict = {}


REPO_CSV_XZ = Path(__file__).resolve().parents[3] / "data" / "finance" / "german_credit_train.csv.xz"


def shared_csv_text() -> str:
    """The German Credit training file: the repository's compressed copy (``data/finance/``) when there is
    one, else the shared file. Missing data FAILS the test (never a skip: CI must not pass without it)."""
    if REPO_CSV_XZ.is_file():
        return lzma.decompress(REPO_CSV_XZ.read_bytes()).decode("utf-8")
    from apps.finance.demo import training_csv_path

    path = training_csv_path()
    if not path.is_file():
        pytest.fail(f"German Credit training data not found: neither {REPO_CSV_XZ} nor {path}")
    return path.read_text(encoding="utf-8")


def trained_scorecard() -> scorecard.TrainedScorecard:
    """The logistic (WOE) scorecard, 3 folds: quick to train, good enough for pipeline tests."""
    if "model" not in _TRAINED:
        import pandas as pd

        frame = pd.read_csv(io.StringIO(shared_csv_text()), dtype=str, keep_default_na=False)
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

    return list(csv.DictReader(io.StringIO(shared_csv_text())))


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
