"""NASA C-MAPSS turbofan data: column mapping, sensor names and units, loading and RUL labels.

The C-MAPSS files (``train_FD00x.txt``) are space separated, without a header, 26 numeric columns:

=====  ==================  =====================================================
col    name                meaning
=====  ==================  =====================================================
1      ``unit``            engine number → ``machine_id``
2      ``cycle``           time in operational cycles
3-5    ``op_setting_1..3`` operational settings (altitude, Mach number, throttle
                           resolver angle in the literature)
6-26   ``sensor_1..21``    the 21 sensor measurements in :data:`CMAPSS_SENSORS`
=====  ==================  =====================================================

Sensor names and units are those of Saxena et al., *Damage Propagation Modeling for Aircraft Engine
Run-to-Failure Simulation* (PHM08), table 2. Temperatures are degrees Rankine (°R), pressures psia.

The directory comes from the environment variable ``CMAPSS_DIR`` and defaults to
``<repo root>/../shared/data/cmapss``, or, where that is absent (a fresh clone), to the FD001 training
file shipped in ``<repo root>/data/cmapss/`` (see :func:`cmapss_dir`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from core import shipped_data

#: RUL values above this are clipped for the regressor (the usual piece-wise linear target).
RUL_CAP = 125

SETTING_COLUMNS: list[str] = ["op_setting_1", "op_setting_2", "op_setting_3"]
SENSOR_COLUMNS: list[str] = [f"sensor_{i}" for i in range(1, 22)]
#: The 26 columns of a C-MAPSS file, in file order (``unit`` is renamed ``machine_id`` on load).
RAW_COLUMNS: list[str] = ["unit", "cycle", *SETTING_COLUMNS, *SENSOR_COLUMNS]


@dataclass(frozen=True)
class SensorInfo:
    """Name, description and unit of one C-MAPSS sensor."""

    symbol: str
    description_en: str
    description_zh: str
    unit: str


#: sensor_1..sensor_21 → symbol, description (en, zh) and unit, after Saxena et al. (2008), table 2.
CMAPSS_SENSORS: dict[str, SensorInfo] = {
    "sensor_1": SensorInfo("T2", "Total temperature at fan inlet", "风扇进口总温", "°R"),
    "sensor_2": SensorInfo("T24", "Total temperature at LPC outlet", "低压压气机出口总温", "°R"),
    "sensor_3": SensorInfo("T30", "Total temperature at HPC outlet", "高压压气机出口总温", "°R"),
    "sensor_4": SensorInfo("T50", "Total temperature at LPT outlet", "低压涡轮出口总温", "°R"),
    "sensor_5": SensorInfo("P2", "Pressure at fan inlet", "风扇进口压力", "psia"),
    "sensor_6": SensorInfo("P15", "Total pressure in bypass duct", "外涵道总压", "psia"),
    "sensor_7": SensorInfo("P30", "Total pressure at HPC outlet", "高压压气机出口总压", "psia"),
    "sensor_8": SensorInfo("Nf", "Physical fan speed", "风扇物理转速", "rpm"),
    "sensor_9": SensorInfo("Nc", "Physical core speed", "核心机物理转速", "rpm"),
    "sensor_10": SensorInfo("epr", "Engine pressure ratio (P50/P2)", "发动机压比 (P50/P2)", "-"),
    "sensor_11": SensorInfo("Ps30", "Static pressure at HPC outlet", "高压压气机出口静压", "psia"),
    "sensor_12": SensorInfo("phi", "Ratio of fuel flow to Ps30", "燃油流量与Ps30之比", "pps/psi"),
    "sensor_13": SensorInfo("NRf", "Corrected fan speed", "风扇换算转速", "rpm"),
    "sensor_14": SensorInfo("NRc", "Corrected core speed", "核心机换算转速", "rpm"),
    "sensor_15": SensorInfo("BPR", "Bypass ratio", "涵道比", "-"),
    "sensor_16": SensorInfo("farB", "Burner fuel-air ratio", "燃烧室油气比", "-"),
    "sensor_17": SensorInfo("htBleed", "Bleed enthalpy", "引气焓", "-"),
    "sensor_18": SensorInfo("Nf_dmd", "Demanded fan speed", "需求风扇转速", "rpm"),
    "sensor_19": SensorInfo("PCNfR_dmd", "Demanded corrected fan speed", "需求风扇换算转速", "rpm"),
    "sensor_20": SensorInfo("W31", "HPT coolant bleed", "高压涡轮冷却引气流量", "lbm/s"),
    "sensor_21": SensorInfo("W32", "LPT coolant bleed", "低压涡轮冷却引气流量", "lbm/s"),
}

SETTING_INFO: dict[str, SensorInfo] = {
    "op_setting_1": SensorInfo("alt", "Operational setting 1 (altitude)", "运行设定1（高度）", "-"),
    "op_setting_2": SensorInfo("Mach", "Operational setting 2 (Mach number)", "运行设定2（马赫数）", "-"),
    "op_setting_3": SensorInfo("TRA", "Operational setting 3 (throttle resolver angle)",
                               "运行设定3（油门角）", "-"),
}


class CmapssError(ValueError):
    """A C-MAPSS file is missing or malformed (the message names the file and the row)."""


def repo_root() -> Path:
    """The repository root (the folder holding ``apps/``)."""
    return Path(__file__).resolve().parents[2]


def cmapss_dir() -> Path:
    """The C-MAPSS data folder: ``$CMAPSS_DIR`` when set, else ``<repo root>/../shared/data/cmapss`` when it
    holds ``train_FD001.txt``, else the folder of the copy shipped in ``data/`` (``core.shipped_data``)."""
    env = os.environ.get("CMAPSS_DIR")
    if env:
        return Path(env)
    try:
        return shipped_data.demo_data_file("cmapss/train_FD001.txt").parent
    except FileNotFoundError:  # neither shared nor shipped: the loader's error names the shared folder
        return repo_root().parent / "shared" / "data" / "cmapss"


def frame_from_raw(raw: np.ndarray | pd.DataFrame, *, source: str = "<data>") -> pd.DataFrame:
    """Turn a 26-column C-MAPSS array into a named frame.

    Returns columns ``machine_id`` (str), ``cycle`` (int), ``op_setting_1..3``, ``sensor_1..21``
    (float), sorted by machine and cycle.
    """
    arr = np.asarray(raw, dtype=float)
    if arr.ndim != 2 or arr.shape[1] != len(RAW_COLUMNS):
        raise CmapssError(
            f"{source}: a C-MAPSS file has {len(RAW_COLUMNS)} columns, found "
            f"{arr.shape[1] if arr.ndim == 2 else 'no table'}"
        )
    bad = ~np.isfinite(arr)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise CmapssError(f"{source}: row {r + 1}, column {RAW_COLUMNS[c]}: not a finite number")
    df = pd.DataFrame(arr, columns=RAW_COLUMNS)
    units = df.pop("unit")
    if (units != units.round()).any() or (df["cycle"] != df["cycle"].round()).any():
        raise CmapssError(f"{source}: unit and cycle must be whole numbers")
    df.insert(0, "machine_id", units.astype(int).astype(str))
    df["cycle"] = df["cycle"].astype(int)
    order = np.lexsort((df["cycle"].to_numpy(), units.to_numpy()))
    return df.iloc[order].reset_index(drop=True)


def load_cmapss(name: str = "train_FD001.txt", *, directory: str | Path | None = None) -> pd.DataFrame:
    """Load a C-MAPSS file (default ``train_FD001.txt`` from :func:`cmapss_dir`).

    Returns the frame of :func:`frame_from_raw`. Raises :class:`CmapssError` if the file is missing
    or not a 26-column numeric table.
    """
    path = Path(directory) / name if directory is not None else cmapss_dir() / name
    if not path.is_file():
        raise CmapssError(f"{path}: C-MAPSS file not found (set CMAPSS_DIR to the folder holding it)")
    try:
        raw = pd.read_csv(path, sep=r"\s+", header=None, dtype=float, engine="c")
    except ValueError as exc:
        raise CmapssError(f"{path}: not a numeric C-MAPSS table ({exc})") from exc
    return frame_from_raw(raw, source=str(path))


def add_rul(df: pd.DataFrame, *, cap: int = RUL_CAP, time_col: str = "cycle") -> pd.DataFrame:
    """Add run-to-failure labels: ``rul`` = last cycle of the machine − cycle, ``rul_capped`` = min(rul, cap).

    Assumes each machine's series ends at failure (true of the C-MAPSS training files).
    Returns a new frame.
    """
    for col in ("machine_id", time_col):
        if col not in df.columns:
            raise CmapssError(f"add_rul: column {col!r} is missing")
    out = df.copy()
    last = out.groupby("machine_id", sort=False)[time_col].transform("max")
    out["rul"] = (last - out[time_col]).astype(float)
    out["rul_capped"] = out["rul"].clip(upper=cap)
    return out


def load_fd001_labelled(directory: str | Path | None = None) -> pd.DataFrame:
    """``train_FD001.txt`` with ``rul`` and ``rul_capped`` columns (see :func:`add_rul`)."""
    return add_rul(load_cmapss("train_FD001.txt", directory=directory))
