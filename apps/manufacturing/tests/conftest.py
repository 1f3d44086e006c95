"""Shared fixtures for the manufacturing domain tests (pure: no Django)."""

from __future__ import annotations

import pandas as pd
import pytest

from apps.manufacturing import cmapss, failure_model

TRAIN_ENGINES = [str(i) for i in range(1, 31)]
HELD_OUT_ENGINES = [str(i) for i in range(81, 101)]


@pytest.fixture(scope="session")
def fd001() -> pd.DataFrame:
    """train_FD001 with rul / rul_capped labels."""
    return cmapss.load_fd001_labelled()


@pytest.fixture(scope="session")
def engine_frames(fd001: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Per-engine series (index cycle, sensors and settings), without labels."""
    out = {}
    for mid, g in fd001.groupby("machine_id", sort=False):
        out[str(mid)] = g.drop(columns=["machine_id", "rul", "rul_capped"]).set_index("cycle")
    return out


@pytest.fixture(scope="session")
def small_model(fd001: pd.DataFrame) -> failure_model.FailureModel:
    """A model trained on 30 engines (fast), horizon 30 cycles."""
    train = fd001[fd001["machine_id"].isin(TRAIN_ENGINES)]
    return failure_model.train_failure_model(train, horizon=30, seed=0)
