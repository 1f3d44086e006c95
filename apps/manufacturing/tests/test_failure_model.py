"""Features, the failure model (RUL, calibrated probability, anomalies, drivers), serialisation and CV."""

from __future__ import annotations

import base64
import io
import pickle
import zlib

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from apps.manufacturing import failure_model as fm
from apps.manufacturing import features as ft

from .conftest import HELD_OUT_ENGINES, TRAIN_ENGINES

DEGRADING = {"sensor_2", "sensor_3", "sensor_4", "sensor_7", "sensor_9", "sensor_11", "sensor_12",
             "sensor_13", "sensor_14", "sensor_15", "sensor_17", "sensor_20", "sensor_21", "sensor_8"}


# --------------------------------------------------------------------------- features


def test_rolling_primitives_match_reference():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 2)).cumsum(axis=0)
    w = 7
    for i in (0, 3, 10, 39):
        lo = max(0, i - w + 1)
        win = x[lo:i + 1]
        assert np.allclose(ft.rolling_mean(x, w)[i], win.mean(axis=0))
        assert np.allclose(ft.rolling_std(x, w)[i], win.std(axis=0))
        if len(win) > 1:
            ref = [np.polyfit(np.arange(len(win)), win[:, j], 1)[0] for j in range(2)]
            assert np.allclose(ft.rolling_slope(x, w)[i], ref)
    base = ft.early_baseline(x, 5)
    assert np.allclose(base[2], x[:3].mean(axis=0)) and np.allclose(base[30], x[:5].mean(axis=0))


def test_features_are_causal(small_model, engine_frames):
    frame = engine_frames["85"]
    full = ft.machine_features(frame, small_model.spec)
    cut = ft.machine_features(frame.iloc[:60], small_model.spec)
    assert list(full.columns) == small_model.spec.feature_names()
    np.testing.assert_allclose(full.iloc[:60].to_numpy(), cut.to_numpy(), rtol=1e-9, atol=1e-9)


def test_feature_spec_drops_constant_sensors_and_finds_no_regime_in_fd001(small_model):
    spec = small_model.spec
    assert "sensor_1" not in spec.sensors and "sensor_11" in spec.sensors
    assert spec.regimes is None
    assert spec.hi_weights is not None and len(spec.hi_weights) == 2 * len(spec.sensors)


def test_operating_regimes_detected_and_normalised():
    rng = np.random.default_rng(3)
    centres = np.array([[0, 0.0, 100], [10, 0.25, 100], [20, 0.7, 100], [25, 0.62, 60], [35, 0.84, 100],
                        [42, 0.84, 100]])
    frames = {}
    for m in range(6):
        n = 120
        reg = rng.integers(0, 6, n)
        settings = centres[reg] + rng.normal(0, 0.002, (n, 3))
        level = 500 + 30 * reg  # the sensor depends on the regime ...
        wear = np.linspace(0, 2, n)  # ... and slowly on wear
        frames[str(m)] = pd.DataFrame({
            "op_setting_1": settings[:, 0], "op_setting_2": settings[:, 1], "op_setting_3": settings[:, 2],
            "temp": level + wear + rng.normal(0, 0.3, n),
        }, index=pd.Index(np.arange(1, n + 1), name="cycle"))
    spec = ft.fit_feature_spec(frames)
    assert spec.regimes is not None and spec.regimes.k == 6
    x = ft.normalise(frames["0"], spec)
    assert np.abs(x).max() < 6  # the 30-unit regime jumps are gone
    raw_spec = ft.fit_feature_spec(frames, settings=[])
    assert np.ptp(ft.normalise(frames["0"], raw_spec)) > 100


# --------------------------------------------------------------------------- model quality and outputs


def test_metadata_and_training_metrics(small_model):
    md = small_model.metadata
    assert md["horizon"] == 30 and md["horizon_unit"] == "cycles" and md["rul_cap"] == 125
    assert md["machines"] == len(TRAIN_ENGINES) and md["time_axis"] == "cycle"
    assert md["metrics"]["oof_auc"] > 0.95
    assert md["trained_at"] and len(md["model_version"]) == 12
    assert set(md["sensors"]) <= DEGRADING | {"sensor_6"}


def test_held_out_engines_quality(small_model, engine_frames, fd001):
    """Engines the model never saw: AUC for failure within 30 cycles and RMSE of the capped RUL."""
    probs, labels, err = [], [], []
    for mid in HELD_OUT_ENGINES:
        steps = small_model.predict_steps(engine_frames[mid])
        rul = fd001.loc[fd001["machine_id"] == mid, "rul"].to_numpy()
        probs.append(steps["failure_probability"].to_numpy())
        labels.append(rul <= 30)
        err.append(steps["rul_estimate"].to_numpy() - np.minimum(rul, 125))
    auc = roc_auc_score(np.concatenate(labels), np.concatenate(probs))
    rmse = float(np.sqrt(np.mean(np.concatenate(err) ** 2)))
    assert auc > 0.97
    assert rmse < 20


def test_predict_failing_and_healthy_engine(small_model, engine_frames):
    frame = engine_frames["90"]
    late = small_model.predict(frame)  # the whole run: the last cycle is just before failure
    early = small_model.predict(frame.iloc[:60])
    assert late["mode"] == "full"
    assert late["failure_probability"] > 0.8 and late["rul_estimate"] < 25
    assert early["failure_probability"] < 0.1 and early["rul_estimate"] > 70
    assert late["horizon"] == 30 and late["horizon_unit"] == "cycles"
    assert late["last_at"] == int(frame.index[-1]) and late["steps"] == len(frame)
    hist = late["history"]
    assert len(hist) == fm.HISTORY_STEPS and hist[-1]["at"] == late["last_at"]
    assert hist[-1]["failure_probability"] == late["failure_probability"]
    assert hist[0]["failure_probability"] < hist[-1]["failure_probability"]  # risk rises towards failure
    assert 0 < late["anomaly_score"] < 1 and late["anomaly_score"] > early["anomaly_score"]
    assert late["is_anomalous"] and late["anomalies"]
    a = late["anomalies"][-1]
    assert a["at"] == late["last_at"] and a["sensor"] in DEGRADING
    info = late["model_version_info"]
    assert info["format_version"] == fm.FORMAT_VERSION
    assert info["model_version"] == small_model.metadata["model_version"]


def test_drivers_come_from_the_model(small_model, engine_frames):
    out = small_model.predict(engine_frames["90"])
    drivers = out["drivers"]
    assert 1 <= len(drivers) <= 5
    for d in drivers:
        assert set(d) >= {"sensor", "feature", "direction", "contribution", "text_en", "text_zh"}
        assert d["sensor"] in DEGRADING and d["feature"].startswith(d["sensor"] + "__")
        assert d["direction"] in ("up", "down") and d["contribution"] >= 0
        assert d["sensor"] in d["text_en"] and "σ" in d["text_zh"]
    logodds = [d["contribution_logodds"] for d in drivers]
    assert logodds == sorted(logodds, reverse=True) and logodds[0] > 0


def test_a_single_drifting_sensor_is_the_top_driver(small_model, engine_frames):
    """Inject drift into one sensor of a healthy engine: probability rises and that sensor leads."""
    frame = engine_frames["85"].iloc[:80].copy()
    base = small_model.predict(frame)
    sd = small_model.spec.sensor_scale[small_model.spec.sensors.index("sensor_11")]
    frame.iloc[40:, frame.columns.get_loc("sensor_11")] += np.linspace(0, 12 * sd, 40)
    drifted = small_model.predict(frame)
    assert drifted["failure_probability"] >= base["failure_probability"]
    assert drifted["drivers"] and drifted["drivers"][0]["sensor"] == "sensor_11"
    assert drifted["drivers"][0]["direction"] == "up"


def test_predict_accepts_long_table_with_columns(small_model, fd001):
    g = fd001[fd001["machine_id"] == "95"].drop(columns=["rul", "rul_capped"])
    out = small_model.predict(g.sample(frac=1.0, random_state=0))  # shuffled rows, cycle as a column
    assert out["last_at"] == int(g["cycle"].max())


def test_sensor_mismatch_falls_back_or_raises(small_model, engine_frames):
    frame = engine_frames["90"].drop(columns=["sensor_11"])
    with pytest.raises(fm.SensorMismatchError, match="sensor_11") as exc:
        small_model.predict(frame, strict=True)
    assert exc.value.missing == ["sensor_11"]
    out = small_model.predict(frame)
    assert out["mode"] == "anomaly_only"
    assert out["failure_probability"] is None and out["rul_estimate"] is None
    assert "sensor_11" in out["fallback_reason"]
    assert out["is_anomalous"]  # the engine's own early life differs from its end of life
    assert out["history"][-1]["anomaly_score"] == out["anomaly_score"]


def test_predict_many_isolates_errors(small_model, engine_frames):
    res = small_model.predict_many({"ok": engine_frames["88"], "empty": engine_frames["88"].iloc[:0]})
    assert res["ok"]["mode"] == "full"
    assert res["empty"]["mode"] == "error" and "empty" in res["empty"]["error"]


def test_training_is_deterministic(fd001, engine_frames):
    train = fd001[fd001["machine_id"].isin(TRAIN_ENGINES[:8])]
    one = fm.train_failure_model(train, horizon=30, seed=0, calibration_folds=2)
    two = fm.train_failure_model(train, horizon=30, seed=0, calibration_folds=2)
    pd.testing.assert_frame_equal(one.predict_steps(engine_frames["91"]),
                                  two.predict_steps(engine_frames["91"]))
    assert one.metadata["model_version"] == two.metadata["model_version"]


def test_dump_and_load(small_model, engine_frames):
    blob = fm.dump(small_model)
    assert blob.startswith(fm.MAGIC)
    assert fm.read_header(blob)["metadata"]["horizon"] == 30
    loaded = fm.load(blob)
    pd.testing.assert_frame_equal(loaded.predict_steps(engine_frames["92"]),
                                  small_model.predict_steps(engine_frames["92"]))
    wrong = blob.replace(b'"format_version": 1', b'"format_version": 99', 1)
    with pytest.raises(fm.ModelFormatError, match="version 99"):
        fm.load(wrong)
    with pytest.raises(fm.ModelFormatError, match="magic"):
        fm.load(b"not a model")
    with pytest.raises(fm.ModelFormatError, match="corrupt"):
        fm.load(blob[:-100])


# Stored artifacts pickle the model, and a pickle names every class by module path. This is ``fm.dump`` output
# written by the pre-split module ``apps/manufacturing/failure_model.py``: a FailureModel around an unfitted
# FeatureSpec (sensor_2, sensor_11), metadata model_version "presplit0001", no scikit-learn parts (class
# references only, so it stays loadable whatever the library versions).
PRE_SPLIT_ARTIFACT = base64.b64decode(
    "TUZHLUZBSUxVUkUtTU9ERUwKeyJmb3JtYXRfdmVyc2lvbiI6IDEsICJza2xlYXJuIjogIjEuOS4xIiwgIm1ldGFkYXRhIjogeyJr"
    "aW5kIjogImZhaWx1cmUiLCAibW9kZWxfdmVyc2lvbiI6ICJwcmVzcGxpdDAwMDEifX0KeJxtUs2O0zAQLj/d7qYJP9LekBBHuFQt"
    "D8CuhLQ9RHCAM7JcZ5pYOE4UOy1FQoIL4jA3hvfgGXgSHoErN8aNCXvAp/k+fzPz2TMfp99+35wcDz6SbesWtbT9Virfd9qWi63U"
    "pu9A1E0BhjC9GvCLI/xKTz7RB3qMt10LivDB/wqA5Agc4fxqCF8H7Zg6c2Bd0zl6w+B0AOIp4VkMVyuCwHvP1YIKT1Rjt7qk6gSz"
    "WPL5wIxF0xqkFXtti2bvKJ/m558JE+eLyFGeYOZM08I/UZI/DKICdtdEdzbSgdEWhPPQsuoc71ZaXE8N3FxbZfoChCyBvvQbPPO6"
    "ZvRO87un6qAMEM46KJl19BLnQyiCTYZJhGyQURpf7pTkNP6W9cWvYUJjAJhVII2vDsLAjicRVJN4xgAwYa970GXlQ9eUkbYeOgWt"
    "p1EW7LIBnhF3DW6Ukc7prYYBSaM3nfTHu5m0TS3NgcN7MRTjhNlEPslvAN7/e+Ur5qvGFLS++Bm3bFY1nX7fWFpfPotUGinRW+3D"
    "gMOHufBjvRFKtiwVl4P0tAYvC+nlsHdveQSsi1tKmB33VOygc5pbYNqygdZov1wuV9TjNHRwnFtleOvH91fk+s3iD7zoHTE="
)


def _class_paths(blob: bytes) -> set[tuple[str, str]]:
    """(module, name) of every class or function the pickled payload of an artifact refers to."""
    seen: set[tuple[str, str]] = set()

    class Recorder(pickle.Unpickler):
        def find_class(self, module: str, name: str):
            seen.add((module, name))
            return super().find_class(module, name)

    payload = zlib.decompress(blob[blob.index(b"\n", len(fm.MAGIC)) + 1:])
    Recorder(io.BytesIO(payload)).load()
    return seen


def test_artifact_written_before_the_package_split_still_loads():
    assert ("apps.manufacturing.failure_model", "FailureModel") in _class_paths(PRE_SPLIT_ARTIFACT)
    model = fm.load(PRE_SPLIT_ARTIFACT)
    assert type(model) is fm.FailureModel
    assert model.sensors == ["sensor_2", "sensor_11"] and model.metadata["model_version"] == "presplit0001"
    assert model.units == {"sensor_2": "°R"} and model.rul_cap == 125.0 and not model.has_labels


def test_new_artifacts_name_the_pre_split_class_path(small_model):
    """Code from before the split (a rollback, a worker not yet upgraded) reads what this code writes."""
    paths = _class_paths(fm.dump(small_model))
    assert ("apps.manufacturing.failure_model", "FailureModel") in paths
    ours = {module for module, _ in paths if module.startswith("apps.")}
    assert ours == {"apps.manufacturing.failure_model", "apps.manufacturing.features"}


def test_training_errors_are_clear(fd001):
    with pytest.raises(fm.ModelError, match="machine_id"):
        fm.train_failure_model(fd001.drop(columns=["machine_id"]))
    healthy_only = fd001[(fd001["machine_id"].isin(["1", "2"])) & (fd001["rul"] > 50)]
    with pytest.raises(fm.ModelError, match="same side"):
        fm.train_failure_model(healthy_only)


# --------------------------------------------------------------------------- anomaly-only and other axes


def test_anomaly_only_model_without_labels(engine_frames):
    frames = {m: engine_frames[m].iloc[: len(engine_frames[m]) // 2] for m in ["1", "2", "3", "4", "5", "6"]}
    model = fm.train_anomaly_model(frames)
    assert not model.has_labels and model.metadata["kind"] == "anomaly_only"
    healthy = model.predict(engine_frames["7"].iloc[:80])
    failing = model.predict(engine_frames["7"])
    assert healthy["mode"] == failing["mode"] == "anomaly_only"
    assert failing["failure_probability"] is None
    assert failing["anomaly_score"] > healthy["anomaly_score"]
    assert failing["is_anomalous"] and not healthy["is_anomalous"]
    assert fm.load(fm.dump(model)).predict(engine_frames["7"])["anomaly_score"] == failing["anomaly_score"]


def _synthetic_hourly_fleet(n_machines: int = 12, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for m in range(n_machines):
        life = int(rng.integers(150, 260))
        t = pd.date_range("2024-01-01", periods=life, freq="h")
        wear = np.exp(np.linspace(0, 3, life)) - 1  # accelerating wear up to failure
        rows.append(pd.DataFrame({
            "machine_id": f"P{m}", "timestamp": t,
            "bearing_temp": 60 + 0.8 * wear + rng.normal(0, 0.4, life),
            "vibration": 2 + 0.15 * wear + rng.normal(0, 0.05, life),
            "current": 10 + rng.normal(0, 0.2, life),
        }))
    return pd.concat(rows, ignore_index=True)


def test_timestamp_axis_gives_hours():
    data = _synthetic_hourly_fleet()
    model = fm.train_failure_model(data, horizon=24, calibration_folds=3)
    assert model.horizon_unit == "hours" and model.metadata["time_axis"] == "timestamp"
    assert "age" not in model.spec.feature_names()
    one = data[data["machine_id"] == "P3"].drop(columns=["machine_id"]).set_index("timestamp")
    out = model.predict(one)
    assert out["horizon"] == 24 and out["horizon_unit"] == "hours" and out["rul_unit"] == "hours"
    assert out["failure_probability"] > 0.5
    assert isinstance(out["last_at"], str) and out["last_at"].startswith("2024-01")
    assert model.predict(one.iloc[:60])["failure_probability"] < 0.5


# --------------------------------------------------------------------------- cross-validation


def test_cross_validation_runs_grouped_by_engine(fd001):
    subset = fd001[fd001["machine_id"].isin([str(i) for i in range(1, 13)])]
    res = fm.cross_validate(subset, n_splits=3, truncations=2, calibration_folds=2)
    assert res["machines"] == 12 and len(res["folds"]) == 3
    assert all(f["test_machines"] == 4 for f in res["folds"])
    assert res["truncated_points"] == 24 and res["official_like_points"] == 24
    assert 0 < res["rmse_all_cycles"] < 30
    assert res["auc_all_cycles"] > 0.9
    assert fm.nasa_score(np.array([10.0]), np.array([10.0])) == 0.0
    late = fm.nasa_score(np.array([10.0]), np.array([20.0]))
    assert late > fm.nasa_score(np.array([20.0]), np.array([10.0]))
