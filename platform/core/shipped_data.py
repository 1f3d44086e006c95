"""The demo training data shipped in the repository, so that a fresh clone trains its default models.

``data/`` at the repository root holds exactly two files, xz-compressed copies of the demo's training
data (``data/README.md`` says where they come from):

- ``data/finance/german_credit_train.csv.xz``: the German Credit training rows (finance's scorecard);
- ``data/cmapss/train_FD001.txt.xz``: the NASA C-MAPSS FD001 training units (manufacturing's model).

:func:`demo_data_file` answers the uncompressed file: ``../shared/data/<name>`` when a checkout has the
shared data beside it, else the shipped copy, decompressed once under ``$VAR_DIR/shipped_data/``.
Django-free, so the apps' pure domain modules may use it.
"""
from __future__ import annotations

import lzma
import os
import shutil
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = REPO_ROOT / "data"
SHARED_DATA_DIR = REPO_ROOT.parent / "shared" / "data"


def shipped_file(name: str) -> Path:
    """``data/<name>.xz`` decompressed (once; again when the shipped copy is newer) under the var folder."""
    source = DATA_DIR / f"{name}.xz"
    if not source.is_file():
        raise FileNotFoundError(f"{source}: the shipped demo data is missing from this checkout")
    var_dir = Path(os.environ.get("VAR_DIR") or REPO_ROOT / "var")
    target = var_dir / "shipped_data" / name
    if not target.is_file() or target.stat().st_mtime < source.stat().st_mtime:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
        with lzma.open(source) as src, partial.open("wb") as dst:
            shutil.copyfileobj(src, dst)
        os.replace(partial, target)  # atomic: a concurrent reader sees the whole file or none
    return target


def demo_data_file(name: str) -> Path:
    """``../shared/data/<name>`` if it is there, else the shipped copy (see :func:`shipped_file`)."""
    shared = SHARED_DATA_DIR / name
    return shared if shared.is_file() else shipped_file(name)
