"""The demo training data shipped in ``data/`` (issue 14, item 1): exactly the shared files, small, and the
default models train from them on a checkout with nothing beside it."""
from __future__ import annotations

import hashlib
import io
import lzma

import pytest

from core import shipped_data
from core.registry import suite_apps

SHIPPED = sorted(p.relative_to(shipped_data.DATA_DIR).as_posix()[:-3]
                 for p in shipped_data.DATA_DIR.rglob("*.xz"))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_exactly_the_two_training_sets_are_shipped_and_small():
    assert SHIPPED == ["cmapss/train_FD001.txt", "finance/german_credit_train.csv"]
    others = [p.name for p in shipped_data.DATA_DIR.rglob("*") if p.is_file() and p.suffix != ".xz"]
    assert others == ["README.md"]
    sizes = {name: (shipped_data.DATA_DIR / f"{name}.xz").stat().st_size for name in SHIPPED}
    assert sum(sizes.values()) < 1_000_000, sizes


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_copy_is_the_shared_file(name):
    shared = shipped_data.SHARED_DATA_DIR / name
    if not shared.is_file():
        pytest.skip(f"{shared} is not beside this checkout; nothing to compare with")
    shipped = lzma.decompress((shipped_data.DATA_DIR / f"{name}.xz").read_bytes())
    assert _sha256(shipped) == _sha256(shared.read_bytes())


@pytest.mark.parametrize("name", SHIPPED)
def test_without_shared_data_the_shipped_copy_is_decompressed_once(name, tmp_path, monkeypatch):
    monkeypatch.setattr(shipped_data, "SHARED_DATA_DIR", tmp_path / "no-shared")
    monkeypatch.setenv("VAR_DIR", str(tmp_path / "var"))
    path = shipped_data.demo_data_file(name)
    assert path == tmp_path / "var" / "shipped_data" / name
    assert path.read_bytes() == lzma.decompress((shipped_data.DATA_DIR / f"{name}.xz").read_bytes())
    mtime = path.stat().st_mtime_ns
    assert shipped_data.demo_data_file(name) == path and path.stat().st_mtime_ns == mtime


def test_a_missing_shipped_copy_is_named(tmp_path, monkeypatch):
    monkeypatch.setattr(shipped_data, "DATA_DIR", tmp_path)
    with pytest.raises(FileNotFoundError, match="nosuch.csv.xz"):
        shipped_data.shipped_file("nosuch.csv")


@pytest.mark.slow
@pytest.mark.django_db
def test_default_models_train_from_the_shipped_copies(tmp_path, monkeypatch, settings):
    """As on a fresh clone: no ../shared/data, no overrides; every app's demo_models hook trains and
    activates its default model from the shipped data."""
    monkeypatch.setattr(shipped_data, "SHARED_DATA_DIR", tmp_path / "no-shared")
    monkeypatch.setenv("VAR_DIR", str(tmp_path / "var"))
    for var in ("FINANCE_TRAIN_CSV", "CMAPSS_DIR"):
        monkeypatch.delenv(var, raising=False)
    settings.FINANCE_TRAIN_CSV = str(tmp_path / "no-shared" / "finance.csv")
    out = io.StringIO()
    trained = []
    for app in suite_apps():
        hook = app.hook("demo_models")
        if hook is None:
            continue
        version = hook(stdout=out)
        assert version is not None, f"{app.label}: no default model; setup said:\n{out.getvalue()}"
        assert version.is_active
        trained.append(app.label)
    assert len(trained) >= 2, trained
    assert sorted(p.relative_to(tmp_path / "var" / "shipped_data").as_posix()
                  for p in (tmp_path / "var" / "shipped_data").rglob("*") if p.is_file()) == SHIPPED
