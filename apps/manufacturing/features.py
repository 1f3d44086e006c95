"""Per-machine, per-step features for failure prediction (vectorised, causal).

Every feature at step *t* uses only steps ≤ *t*, so the features of a series truncated at *t* equal
the features of the full series at *t*: the per-step history and the truncated-engine evaluation
are exact. Windows are counted in steps (cycles, or grid points of a resampled series); at the start
of a series a window holds the steps available so far.

For each sensor ``s`` (after operating-condition normalisation, see below):

=====================  ===========================================================================
``s__mean_<w>``         rolling mean over ``w`` steps (``w`` in :attr:`FeatureConfig.mean_windows`)
``s__std_<w>``          rolling standard deviation over :attr:`FeatureConfig.std_window` steps
``s__slope_<w>``        least-squares slope over ``w`` steps, in noise σ per step
``s__dev``              (rolling mean over ``dev_window`` − the machine's own early-life baseline) / σ;
                        the baseline is the mean of the machine's first ``baseline_steps`` steps
                        (the steps seen so far while fewer exist)
``s__fdev``             (rolling mean over ``dev_window`` − the fleet's healthy level) / σ
=====================  ===========================================================================

σ is the sensor's early-life noise (median over the training machines of the standard deviation
of their first ``2 × baseline_steps`` steps). Global features: ``hi`` (health indicator: a ridge
regression of the capped, scaled RUL on the ``dev``/``fdev`` features — about 1 healthy, 0 at
failure), ``hi__slope_<w>`` and ``age`` (the cycle number, on cycle axes only).

Operating-condition normalisation: when the operating settings form several well separated
regimes (k-means, k = 2..8, accepted when the nearest centroids are ≥ 10 within-cluster radii
apart, as in C-MAPSS FD002/FD004), each sensor is z-scored with its regime's mean and standard
deviation before the features are computed. Settings with noise only (FD001) give one regime and
no normalisation.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

ID_COLUMNS = ("machine_id", "cycle", "timestamp")
LABEL_COLUMNS = ("rul", "rul_capped", "failure", "failed", "fault", "label", "target")


#: OpenMP threads for scikit-learn's gradient boosting and k-means when the caller names no number.
DEFAULT_THREADS = 1


@contextmanager
def compute_threads(threads: int | None = DEFAULT_THREADS) -> Iterator[None]:
    """Limit OpenMP threads (scikit-learn's gradient boosting, k-means) to ``threads`` inside the block.

    The caller decides the number (the Django side passes ``settings.MANUFACTURING_THREADS``); this
    module reads no environment. ``None`` leaves the limit an enclosing block set. On a shared 2-core
    machine two spin-waiting OpenMP threads made training 10-20 times slower than one thread.
    """
    if threads is None:
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=max(int(threads), 1), user_api="openmp"):
        yield


class FeatureError(ValueError):
    """Features cannot be computed (missing sensors, empty series...); the message names what."""


@dataclass(frozen=True)
class FeatureConfig:
    """Window lengths (in steps) of the features."""

    mean_windows: tuple[int, ...] = (5, 20)
    std_window: int = 10
    slope_windows: tuple[int, ...] = (10, 30)
    dev_window: int = 10
    baseline_steps: int = 20
    hi_slope_window: int = 20
    include_age: bool = True


@dataclass
class RegimeModel:
    """Operating regimes found in the settings: nearest-centroid assignment in scaled setting space."""

    settings: list[str]
    centroids: np.ndarray  # k × d, in scaled units
    scale: np.ndarray  # d

    @property
    def k(self) -> int:
        """Number of regimes."""
        return int(self.centroids.shape[0])

    def assign(self, values: np.ndarray) -> np.ndarray:
        """Regime index of each row of ``values`` (n × d raw settings)."""
        z = np.asarray(values, dtype=float) / self.scale
        d = ((z[:, None, :] - self.centroids[None, :, :]) ** 2).sum(axis=2)
        return np.argmin(d, axis=1)


@dataclass
class FeatureSpec:
    """Everything needed to compute the same features at training and prediction time."""

    sensors: list[str]
    settings: list[str]
    config: FeatureConfig
    time_axis: str = "cycle"
    regimes: RegimeModel | None = None
    regime_mean: np.ndarray | None = None  # k × S
    regime_std: np.ndarray | None = None  # k × S
    sensor_scale: np.ndarray = field(default_factory=lambda: np.ones(0))  # S (noise σ, normalised units)
    healthy_level: np.ndarray = field(default_factory=lambda: np.zeros(0))  # S
    hi_weights: np.ndarray | None = None  # 2S (dev, fdev)
    hi_intercept: float = 0.0

    def feature_names(self) -> list[str]:
        """Names of the feature columns, in order."""
        names = [f"{s}__{f}" for s in self.sensors for f in _sensor_feature_suffixes(self.config)]
        if self.hi_weights is not None:
            names += ["hi", f"hi__slope_{self.config.hi_slope_window}"]
        if self.config.include_age and self.time_axis == "cycle":
            names.append("age")
        return names

    def sensor_of(self, feature: str) -> str | None:
        """The sensor a feature belongs to (None for global features)."""
        s, sep, _ = feature.partition("__")
        return s if sep and s in self.sensors else None


def _sensor_feature_suffixes(cfg: FeatureConfig) -> list[str]:
    out = [f"mean_{w}" for w in cfg.mean_windows]
    out.append(f"std_{cfg.std_window}")
    out += [f"slope_{w}" for w in cfg.slope_windows]
    out += ["dev", "fdev"]
    return out


# ----------------------------------------------------------------------------------------------
# rolling primitives on 2-D arrays (n × k), truncated windows at the start


def _csum(x: np.ndarray) -> np.ndarray:
    c = np.cumsum(x, axis=0)
    return np.vstack([np.zeros((1, x.shape[1])), c])


def rolling_mean(x: np.ndarray, w: int) -> np.ndarray:
    """Trailing mean over up to ``w`` rows (fewer at the start)."""
    n = x.shape[0]
    c = _csum(x)
    idx = np.arange(1, n + 1)
    lo = np.maximum(idx - w, 0)
    cnt = (idx - lo)[:, None]
    return (c[idx] - c[lo]) / cnt


def rolling_std(x: np.ndarray, w: int) -> np.ndarray:
    """Trailing population standard deviation over up to ``w`` rows (0 for one row)."""
    n = x.shape[0]
    x0 = x - x[:1]
    c1, c2 = _csum(x0), _csum(x0 * x0)
    idx = np.arange(1, n + 1)
    lo = np.maximum(idx - w, 0)
    cnt = (idx - lo)[:, None]
    m = (c1[idx] - c1[lo]) / cnt
    var = (c2[idx] - c2[lo]) / cnt - m * m
    return np.sqrt(np.maximum(var, 0.0))


def rolling_slope(x: np.ndarray, w: int) -> np.ndarray:
    """Trailing least-squares slope per row over up to ``w`` rows (0 for one row)."""
    n = x.shape[0]
    t = np.arange(n, dtype=float)[:, None]
    x0 = x - x[:1]
    cx, ctx = _csum(x0), _csum(t * x0)
    ct, ctt = _csum(t), _csum(t * t)
    idx = np.arange(1, n + 1)
    lo = np.maximum(idx - w, 0)
    cnt = (idx - lo)[:, None].astype(float)
    sx, stx = cx[idx] - cx[lo], ctx[idx] - ctx[lo]
    st, stt = ct[idx] - ct[lo], ctt[idx] - ctt[lo]
    den = cnt * stt - st * st
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = np.where(den > 0, (cnt * stx - st * sx) / np.where(den > 0, den, 1.0), 0.0)
    return slope


def early_baseline(x: np.ndarray, steps: int) -> np.ndarray:
    """Causal baseline: mean of the first ``min(t + 1, steps)`` rows, for every row t."""
    n = x.shape[0]
    c = _csum(x)
    cnt = np.minimum(np.arange(1, n + 1), steps)
    return c[cnt] / cnt[:, None]


# ----------------------------------------------------------------------------------------------
# regimes


def find_regimes(values: np.ndarray, settings: list[str], *, seed: int = 0, max_k: int = 8,
                 min_separation: float = 10.0, sample: int = 2000,
                 threads: int | None = DEFAULT_THREADS) -> RegimeModel | None:
    """Detect discrete operating regimes in the settings; None when there is only one.

    ``values`` is n × d raw settings. Regimes are accepted when, for some k in 2..``max_k``,
    k-means centroids are at least ``min_separation`` within-cluster RMS radii apart. k-means runs
    on ``threads`` OpenMP threads (:func:`compute_threads`).
    """
    x = np.asarray(values, dtype=float)
    if x.ndim != 2 or x.shape[1] == 0 or len(x) < 20:
        return None
    ok = np.isfinite(x).all(axis=1)
    x = x[ok]
    scale = x.std(axis=0)
    use = scale > 0
    if not use.any():
        return None
    scale = np.where(use, scale, 1.0)
    z = x / scale
    if len(z) > sample:
        rng = np.random.default_rng(seed)
        z = z[rng.choice(len(z), sample, replace=False)]
    # screen on a small sample (cheap), confirm on the full sample only when regimes look likely
    with compute_threads(threads):
        screen = _best_kmeans(z[:400], max_k, seed, n_init=1)
        if screen is None or screen[0] < min_separation / 2:
            return None
        best = _best_kmeans(z, max_k, seed, n_init=2)
    if best is None or best[0] < min_separation:
        return None
    return RegimeModel(settings=list(settings), centroids=best[1].cluster_centers_, scale=scale)


def _best_kmeans(z: np.ndarray, max_k: int, seed: int, n_init: int) -> tuple[float, Any] | None:
    """(separation, fitted KMeans) of the k in 2..max_k whose centroids are best separated."""
    from sklearn.cluster import KMeans

    n_distinct = len(np.unique(np.round(z, 6), axis=0))
    best: tuple[float, Any] | None = None
    for k in range(2, min(max_k, n_distinct) + 1):
        km = KMeans(n_clusters=k, n_init=n_init, max_iter=100, random_state=seed).fit(z)
        centers = km.cluster_centers_
        radius = np.sqrt(km.inertia_ / len(z))
        dists = np.sqrt(((centers[:, None, :] - centers[None, :, :]) ** 2).sum(axis=2))
        sep = dists[np.triu_indices(k, 1)].min() / max(radius, 1e-12)
        if best is None or sep > best[0]:
            best = (sep, km)
    return best


# ----------------------------------------------------------------------------------------------
# fitting


def split_machines(df: pd.DataFrame, time_col: str | None = None) -> dict[str, pd.DataFrame]:
    """Split a long/wide table with ``machine_id`` and a time column into per-machine frames indexed by
    time."""
    if "machine_id" not in df.columns:
        raise FeatureError("table has no machine_id column")
    if time_col is None:
        time_col = "cycle" if "cycle" in df.columns else "timestamp" if "timestamp" in df.columns else None
    if time_col is None or time_col not in df.columns:
        raise FeatureError("table has no cycle or timestamp column")
    out: dict[str, pd.DataFrame] = {}
    for mid, g in df.groupby("machine_id", sort=False):
        out[str(mid)] = g.drop(columns=["machine_id"]).set_index(time_col).sort_index()
    return out


def infer_sensors(frames: Iterable[pd.DataFrame]) -> tuple[list[str], list[str]]:
    """Split the numeric, non-constant columns into (sensors, settings) by name."""
    from apps.manufacturing.ingest import SETTING_RE

    frames = list(frames)
    if not frames:
        raise FeatureError("no machines")
    cols = [c for c in frames[0].columns if c not in ID_COLUMNS and c not in LABEL_COLUMNS]
    sensors, settings = [], []
    for c in cols:
        if not all(c in f.columns for f in frames):
            continue
        vals = np.concatenate([pd.to_numeric(f[c], errors="coerce").to_numpy(dtype=float) for f in frames])
        if not np.isfinite(vals).any():
            continue
        lo, hi = np.nanmin(vals), np.nanmax(vals)
        if SETTING_RE.match(str(c).lower()):
            settings.append(c)
        elif hi - lo > 1e-9 * max(1.0, abs(lo)):
            sensors.append(c)
    return sensors, settings


def _sensor_matrix(frame: pd.DataFrame, sensors: list[str]) -> np.ndarray:
    missing = [s for s in sensors if s not in frame.columns]
    if missing:
        raise FeatureError(f"missing sensor column(s): {', '.join(missing)}")
    sub = frame[sensors]
    if all(pd.api.types.is_numeric_dtype(t) for t in sub.dtypes):
        x = sub.to_numpy(dtype=float, na_value=np.nan)
    else:
        x = sub.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    if np.isnan(x).any():
        x = pd.DataFrame(x).interpolate(limit_direction="both").to_numpy()
    return x


def normalise(frame: pd.DataFrame, spec: FeatureSpec) -> np.ndarray:
    """Sensor values (n × S) after operating-regime z-scoring (raw values with one regime)."""
    x = _sensor_matrix(frame, spec.sensors)
    if spec.regimes is None or spec.regime_mean is None or spec.regime_std is None:
        return x
    miss = [s for s in spec.settings if s not in frame.columns]
    if miss:
        raise FeatureError(f"missing operating setting column(s): {', '.join(miss)}")
    lab = spec.regimes.assign(frame[spec.regimes.settings].to_numpy(dtype=float))
    return (x - spec.regime_mean[lab]) / spec.regime_std[lab]


def fit_feature_spec(
    frames: dict[str, pd.DataFrame],
    *,
    sensors: list[str] | None = None,
    settings: list[str] | None = None,
    config: FeatureConfig | None = None,
    time_axis: str = "cycle",
    seed: int = 0,
    threads: int | None = DEFAULT_THREADS,
) -> FeatureSpec:
    """Learn regimes, per-regime sensor statistics, noise scales and the fleet's healthy level.

    ``frames`` maps machine id → frame indexed by time with the sensor (and setting) columns.
    The health-indicator weights are fitted separately by :func:`fit_health_indicator`. ``threads``:
    the OpenMP threads of the regime search (:func:`find_regimes`).
    """
    cfg = config or FeatureConfig()
    if not frames:
        raise FeatureError("no machines to fit features on")
    if sensors is None or settings is None:
        s_inf, set_inf = infer_sensors(frames.values())
        sensors = s_inf if sensors is None else sensors
        settings = set_inf if settings is None else settings
    if not sensors:
        raise FeatureError("no varying sensor columns")
    spec = FeatureSpec(sensors=list(sensors), settings=list(settings), config=cfg, time_axis=time_axis)
    if settings:
        allset = np.vstack([f[settings].to_numpy(dtype=float) for f in frames.values()])
        spec.regimes = find_regimes(allset, settings, seed=seed, threads=threads)
        if spec.regimes is not None:
            x = np.vstack([_sensor_matrix(f, spec.sensors) for f in frames.values()])
            lab = spec.regimes.assign(allset)
            k = spec.regimes.k
            mean = np.zeros((k, len(sensors)))
            std = np.ones((k, len(sensors)))
            for r in range(k):
                sel = x[lab == r]
                if len(sel):
                    mean[r] = sel.mean(axis=0)
                    sd = sel.std(axis=0)
                    std[r] = np.where(sd > 0, sd, 1.0)
            spec.regime_mean, spec.regime_std = mean, std
    early_sd, early_mean, xs = [], [], []
    for f in frames.values():
        x = normalise(f, spec)
        xs.append(x)
        head = x[: 2 * cfg.baseline_steps]
        if len(head) >= 5:
            early_sd.append(head.std(axis=0))
        early_mean.append(x[: cfg.baseline_steps].mean(axis=0))
    overall = np.vstack(xs).std(axis=0)
    sd = np.median(np.vstack(early_sd), axis=0) if early_sd else overall
    sd = np.where(sd > 1e-12, sd, np.where(overall > 0, overall, 1.0))
    spec.sensor_scale = sd
    spec.healthy_level = np.median(np.vstack(early_mean), axis=0)
    return spec


# ----------------------------------------------------------------------------------------------
# computing


def sensor_block(x: np.ndarray, spec: FeatureSpec) -> dict[str, np.ndarray]:
    """Per-sensor features of normalised values ``x`` (n × S): suffix → n × S array."""
    cfg = spec.config
    sc = spec.sensor_scale
    out: dict[str, np.ndarray] = {}
    for w in cfg.mean_windows:
        out[f"mean_{w}"] = rolling_mean(x, w)
    out[f"std_{cfg.std_window}"] = rolling_std(x, cfg.std_window) / sc
    for w in cfg.slope_windows:
        out[f"slope_{w}"] = rolling_slope(x, w) / sc
    level = rolling_mean(x, cfg.dev_window)
    out["dev"] = (level - early_baseline(x, cfg.baseline_steps)) / sc
    out["fdev"] = (level - spec.healthy_level) / sc
    return out


def health_indicator(block: dict[str, np.ndarray], spec: FeatureSpec) -> np.ndarray | None:
    """The health indicator per step (None when the spec has no fitted weights)."""
    if spec.hi_weights is None:
        return None
    s = len(spec.sensors)
    return spec.hi_intercept + block["dev"] @ spec.hi_weights[:s] + block["fdev"] @ spec.hi_weights[s:]


def assemble(block: dict[str, np.ndarray], spec: FeatureSpec, age: np.ndarray | None) -> np.ndarray:
    """Stack a sensor block (plus HI and age) into the n × F feature matrix of
    :meth:`FeatureSpec.feature_names`."""
    suffixes = _sensor_feature_suffixes(spec.config)
    n, s = block["dev"].shape
    mat = np.stack([block[suf] for suf in suffixes], axis=2).reshape(n, s * len(suffixes))
    parts = [mat]
    hi = health_indicator(block, spec)
    if hi is not None:
        parts.append(hi[:, None])
        parts.append(rolling_slope(hi[:, None], spec.config.hi_slope_window))
    if spec.config.include_age and spec.time_axis == "cycle":
        parts.append((age if age is not None else np.arange(1, n + 1, dtype=float))[:, None])
    return np.hstack(parts)


def machine_features(frame: pd.DataFrame, spec: FeatureSpec) -> pd.DataFrame:
    """Features of one machine's series (indexed by time, sorted) → DataFrame with the same index."""
    if len(frame) == 0:
        raise FeatureError("empty series")
    frame = frame.sort_index()
    x = normalise(frame, spec)
    block = sensor_block(x, spec)
    age = _age(frame, spec)
    mat = assemble(block, spec, age)
    return pd.DataFrame(mat, index=frame.index, columns=spec.feature_names())


def _age(frame: pd.DataFrame, spec: FeatureSpec) -> np.ndarray | None:
    if spec.time_axis == "cycle" and pd.api.types.is_numeric_dtype(frame.index.dtype):
        return frame.index.to_numpy(dtype=float)
    return None


def fit_health_indicator(frames: dict[str, pd.DataFrame], rul: dict[str, np.ndarray], spec: FeatureSpec,
                         *, cap: float = 125.0, alpha: float = 10.0) -> None:
    """Fit the HI weights in place: ridge regression of min(RUL, cap)/cap on the ``dev``/``fdev`` features."""
    from sklearn.linear_model import Ridge

    xs, ys = [], []
    for mid, f in frames.items():
        block = sensor_block(normalise(f.sort_index(), spec), spec)
        xs.append(np.hstack([block["dev"], block["fdev"]]))
        ys.append(np.minimum(np.asarray(rul[mid], dtype=float), cap) / cap)
    X, y = np.vstack(xs), np.concatenate(ys)
    model = Ridge(alpha=alpha).fit(X, y)
    spec.hi_weights = model.coef_.astype(float)
    spec.hi_intercept = float(model.intercept_)


def detrended(x: np.ndarray, spec: FeatureSpec, window: int = 15) -> np.ndarray:
    """Counterfactual 'healthy' series: each sensor minus its drift since early life (noise kept).

    Used for drivers: the drift is a centred rolling mean minus the early-life baseline.
    """
    n = x.shape[0]
    trend = pd.DataFrame(x).rolling(window, center=True, min_periods=1).mean().to_numpy()
    base = x[: min(n, spec.config.baseline_steps)].mean(axis=0)
    return x - (trend - base)
