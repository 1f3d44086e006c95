"""Ingestion of sensor CSVs (long, wide, C-MAPSS) and pushed readings."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from apps.manufacturing import cmapss
from apps.manufacturing.ingest import IngestError, IngestOptions, ingest_csv, merge_series, parse_readings


def _csv(lines: list[str], sep: str = ",") -> io.BytesIO:
    return io.BytesIO(("\n".join(line.replace(",", sep) for line in lines) + "\n").encode("utf-8"))


def _long_lines(machines=("A", "B"), steps=30, sensors=("temp", "vib")) -> list[str]:
    lines = ["machine_id,timestamp,sensor,value"]
    for m in machines:
        for t in range(steps):
            ts = (pd.Timestamp("2024-03-01") + pd.Timedelta(minutes=t)).isoformat(sep=" ")
            for j, s in enumerate(sensors):
                lines.append(f"{m},{ts},{s},{10 * (j + 1) + 0.1 * t + 0.01 * (t % 3):.3f}")
    return lines


class NonSeekable(io.RawIOBase):
    """A forward-only stream that records the size of every read."""

    def __init__(self, data: bytes) -> None:
        self._b = io.BytesIO(data)
        self.sizes: list[int] = []

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def read(self, n: int = -1) -> bytes:
        out = self._b.read(n)
        self.sizes.append(len(out))
        return out


# --------------------------------------------------------------------------- formats and delimiters


@pytest.mark.parametrize("sep", [",", ";", "\t", "   "])
def test_long_form_any_delimiter(sep):
    lines = _long_lines()
    if sep == "   ":
        # timestamps without spaces for space-separated files
        lines = [line.replace(" ", "T") for line in lines]
    r = ingest_csv(_csv(lines, sep), source="x.csv")
    assert r.format == "long"
    assert r.delimiter == ("whitespace" if sep == "   " else sep)
    assert r.time_axis == "timestamp"
    assert r.machines == ["A", "B"]
    assert r.sensors == ["temp", "vib"]
    assert r.readings == r.readings_kept == 2 * 30 * 2
    df = r.series["A"]
    assert isinstance(df.index, pd.DatetimeIndex) and df.index.is_monotonic_increasing
    assert df.loc[pd.Timestamp("2024-03-01 00:05"), "vib"] == pytest.approx(20 + 0.5 + 0.02)
    assert r.errors == []


def test_wide_form_with_units_settings_and_labels():
    lines = ["Machine,Cycle,temperature (°C),pressure [bar],op_setting_1,RUL"]
    for c in range(1, 21):
        lines.append(f"P1,{c},{50 + c * 0.5},{3 + (c % 4) * 0.01},0.5,{20 - c}")
    r = ingest_csv(_csv(lines))
    assert r.format == "wide" and r.time_axis == "cycle"
    assert r.sensors == ["temperature", "pressure"]
    assert r.settings == ["op_setting_1"] and r.label_columns == ["rul"]
    assert r.units == {"temperature": "°C", "pressure": "bar"}
    df = r.series["P1"]
    assert list(df.index[:3]) == [1, 2, 3] and df.index.name == "cycle"
    assert df.loc[4, "temperature"] == 52.0


def test_decimal_comma_with_semicolons():
    lines = ["machine_id;cycle;s1;s2", "M;1;1,5;2,25", "M;2;1,75;2,5", "M;3;2,0;x"]
    r = ingest_csv(io.BytesIO(("\n".join(lines) + "\n").encode()))
    assert r.delimiter == ";"
    assert r.series["M"]["s1"].tolist() == [1.5, 1.75, 2.0]
    assert r.counts["non_numeric"] == 1
    assert r.errors[0]["row"] == 4 and r.errors[0]["sensor"] == "s2"


def test_cmapss_headerless_file_mapping():
    path = cmapss.cmapss_dir() / "train_FD001.txt"
    head = b"".join(path.open("rb").readlines()[:600])  # engines 1-3
    r = ingest_csv(io.BytesIO(head), source="train_FD001.txt")
    assert r.format == "cmapss" and r.delimiter == "whitespace" and r.time_axis == "cycle"
    assert r.machines == ["1", "2", "3"]
    assert r.sensors == [f"sensor_{i}" for i in range(1, 22)]
    assert r.settings == ["op_setting_1", "op_setting_2", "op_setting_3"]
    assert r.units["sensor_2"] == "°R" and r.units["sensor_7"] == "psia"
    assert cmapss.CMAPSS_SENSORS["sensor_2"].symbol == "T24"
    # sensors 1, 5, 10, 16, 18, 19 never change in FD001
    assert set(r.constant_sensors) == {"sensor_1", "sensor_5", "sensor_10", "sensor_16", "sensor_18",
                                       "sensor_19"}
    assert "sensor_1" not in r.feature_sensors and "sensor_11" in r.feature_sensors
    assert r.series["1"].loc[1, "sensor_2"] == 641.82
    assert len(r.series["1"]) == 192
    # outlier detection must not eat the end-of-life run-up
    assert not any(o["machine"] == "1" and o["at"] > 185 for o in r.outliers)


def test_cmapss_loader_and_rul_labels(fd001):
    assert fd001.shape[0] == 20631
    assert list(fd001.columns[:5]) == ["machine_id", "cycle", "op_setting_1", "op_setting_2", "op_setting_3"]
    last = fd001.groupby("machine_id")["cycle"].transform("max")
    assert (fd001["rul"] == last - fd001["cycle"]).all()
    assert fd001["rul_capped"].max() == 125 and fd001["rul"].max() > 125
    assert (fd001.groupby("machine_id")["rul"].min() == 0).all()


def test_cmapss_dir_from_env(monkeypatch, tmp_path):
    monkeypatch.setenv("CMAPSS_DIR", str(tmp_path))
    assert cmapss.cmapss_dir() == tmp_path
    with pytest.raises(cmapss.CmapssError, match="train_FD001.txt: C-MAPSS file not found"):
        cmapss.load_cmapss()


# --------------------------------------------------------------------------- data problems


def test_non_numeric_values_are_dropped_counted_and_named():
    lines = ["machine_id,cycle,s1,s2"] + [f"M,{c},{c}.0,{2 * c}.0" for c in range(1, 13)]
    lines[3] = "M,3,oops,6.0"  # row 4 of the file
    lines[6] = "M,6,6.0,n/a"  # an explicit missing marker is not an error
    r = ingest_csv(_csv(lines))
    assert r.counts["non_numeric"] == 1
    (err,) = r.errors
    assert err["row"] == 4 and err["sensor"] == "s1" and err["machine"] == "M" and "oops" in err["message"]
    assert r.series["M"].loc[3, "s1"] == pytest.approx(3.0)  # interpolated
    assert r.series["M"].loc[6, "s2"] == pytest.approx(12.0)
    assert r.counts["missing_filled"] == 2


def test_message_cap_keeps_counting():
    lines = ["machine_id,cycle,sensor,value"] + [f"M,{c},s,bad{c}" for c in range(1, 11)]
    lines += [f"M,{c},s,{c}" for c in range(11, 20)]
    r = ingest_csv(_csv(lines), options=IngestOptions(max_messages=3))
    listed = [e for e in r.errors if e["code"] == "non_numeric"]
    assert r.counts["non_numeric"] == 10
    assert len(listed) == 4 and "7 more" in listed[-1]["message"]
    assert not any("more" in w["message"] for w in r.warnings)


def test_out_of_order_and_duplicates_keep_last():
    lines = ["machine_id,cycle,s1", "M,1,1", "M,2,2", "M,4,4", "M,3,3", "M,5,5", "M,2,20", "N,1,7", "N,2,8"]
    r = ingest_csv(_csv(lines))
    df = r.series["M"]
    assert list(df.index) == [1, 2, 3, 4, 5]
    assert df.loc[2, "s1"] == 20  # the later duplicate (row 7) wins
    dup = [w for w in r.warnings if w["code"] == "duplicate"]
    assert dup and dup[0]["row"] == 3 and "row 7" in dup[0]["message"] and dup[0]["sensor"] == "s1"
    ooo = [w for w in r.warnings if w["code"] == "out_of_order"]
    assert ooo and ooo[0]["machine"] == "M" and ooo[0]["row"] == 5
    assert r.series["N"]["s1"].tolist() == [7, 8]  # the other machine goes on


def test_constant_and_stuck_sensors():
    lines = ["machine_id,cycle,flat,stuck,ok"]
    for m in ("A", "B"):
        for c in range(1, 16):
            stuck = 5.0 if m == "A" else 5.0 + 0.1 * c
            lines.append(f"{m},{c},7.0,{stuck},{c * 1.5}")
    r = ingest_csv(_csv(lines))
    assert r.constant_sensors == ["flat"]
    assert r.feature_sensors == ["stuck", "ok"]
    stuck = [w for w in r.warnings if w["code"] == "stuck_sensor"]
    assert [(w["machine"], w["sensor"]) for w in stuck] == [("A", "stuck")]


def test_outlier_spike_flagged_and_replaced_but_not_a_trend():
    rng = np.random.default_rng(1)
    lines = ["machine_id,cycle,s"]
    values = 100 + rng.normal(0, 0.5, 60)
    values[20] = 140.0  # spike
    values[50:] += np.linspace(0, 8, 10)  # end-of-series ramp (real degradation)
    lines += [f"M,{c + 1},{v:.3f}" for c, v in enumerate(values)]
    r = ingest_csv(_csv(lines))
    assert r.counts["outliers"] == 1
    (o,) = r.outliers
    assert o["at"] == 21 and o["sensor"] == "s" and o["value"] == 140.0 and o["z"] > 6
    assert abs(r.series["M"].loc[21, "s"] - 100) < 2
    assert r.series["M"].loc[60, "s"] == pytest.approx(values[59], abs=1e-3)
    kept = ingest_csv(_csv(lines), options=IngestOptions(outlier_action="keep"))
    assert kept.series["M"].loc[21, "s"] == 140.0 and kept.counts["outliers"] == 1


def test_irregular_timestamps_resampled_to_regular_grid():
    lines = ["machine_id,timestamp,s"]
    seconds = [0, 60, 125, 180, 240, 290, 360, 420]
    for s in seconds:
        lines.append(f"M,{(pd.Timestamp('2024-01-01') + pd.Timedelta(seconds=s)).isoformat()},{s / 10}")
    r = ingest_csv(_csv(lines))
    df = r.series["M"]
    steps = np.diff(df.index.asi8)
    assert (steps == 60 * 10**9).all()
    assert df.index[0] == pd.Timestamp("2024-01-01") and df.index[-1] == pd.Timestamp("2024-01-01 00:07")
    assert df.loc[pd.Timestamp("2024-01-01 00:02"), "s"] == pytest.approx(12.0)  # linear in time
    assert r.sampling["M"]["resampled"] and r.sampling["M"]["interval_s"] == 60
    assert any(w["code"] == "resampled" for w in r.warnings)


def test_regular_timestamps_are_not_resampled_and_mixed_offsets_parse():
    lines = ["machine_id,timestamp,s", "M,2024-01-01T00:00:00Z,1", "M,2024-01-01T01:00:00+01:00,2",
             "M,2024-01-01 01:00:00,3"]
    r = ingest_csv(_csv(lines))
    df = r.series["M"]
    # 01:00+01:00 is 00:00 UTC: a duplicate of the first reading; the later one wins
    assert list(df.index) == [pd.Timestamp("2024-01-01 00:00"), pd.Timestamp("2024-01-01 01:00")]
    assert df["s"].tolist() == [2, 3]
    assert not r.sampling["M"]["resampled"]


def test_cycle_gaps_are_inserted_and_interpolated():
    lines = ["machine_id,cycle,s", "M,1,1", "M,2,2", "M,5,5", "M,6,6"]
    r = ingest_csv(_csv(lines))
    assert list(r.series["M"].index) == [1, 2, 3, 4, 5, 6]
    assert r.series["M"]["s"].tolist() == [1, 2, 3, 4, 5, 6]
    assert any(w["code"] == "cycle_gap" for w in r.warnings)


def test_a_huge_cycle_gap_is_kept_sparse_not_filled():
    """Cycles 1, 2 and 10**12: the grid is sized before it is built (it once ran out of memory: a 500)."""
    r = parse_readings("M", [{"cycle": 1, "s": 1.0}, {"cycle": 2, "s": 2.0}, {"cycle": 10**12, "s": 3.0}])
    assert list(r.series["M"].index) == [1, 2, 10**12]
    assert any(w["code"] == "cycle_gap" and "sparse" in w["message"] for w in r.warnings)
    # past float precision the cycles stay numbers (not wrapped into negative integers)
    r = parse_readings("M", [{"cycle": 1, "s": 1.0}, {"cycle": 10**30, "s": 3.0}])
    assert list(r.series["M"].index) == [1.0, 1e30]


def test_rows_without_machine_or_time_and_bad_lines_are_reported():
    lines = ["machine_id,cycle,s", "M,1,1", ",2,2", "M,x,3", "M,4,4,9", "", "M,5,5"]
    r = ingest_csv(_csv(lines))
    codes = {e["code"]: e for e in r.errors}
    assert codes["no_machine"]["row"] == 3
    assert codes["bad_time"]["row"] == 4 and "'x'" in codes["bad_time"]["message"]
    assert codes["bad_line"]["row"] == 5
    assert list(r.series["M"].index) == [1, 2, 3, 4, 5]


def test_machine_with_no_usable_reading_is_named():
    lines = ["machine_id,cycle,sensor,value", "A,1,s,bad", "B,1,s,1", "B,2,s,2"]
    r = ingest_csv(_csv(lines))
    assert r.machines == ["B"]
    assert any(w["code"] == "machine_without_readings" and w["machine"] == "A" for w in r.warnings)


# --------------------------------------------------------------------------- unreadable files


@pytest.mark.parametrize(
    ("data", "match", "missing"),
    [
        (b"", "empty", []),
        (b"   \n\n", "empty", []),
        (b"time,sensor,value\n2024-01-01,a,1\n", "no machine_id column", ["machine_id"]),
        (b"machine_id,sensor,value\nA,a,1\n", "no timestamp or cycle column", ["timestamp or cycle"]),
        (b"machine,temp\nA,1\n", "no timestamp or cycle column", ["timestamp or cycle"]),
        (b"1,2,3\n4,5,6\n", "no header row and 3 numeric columns", ["header"]),
        (b"machine_id,cycle\nA,1\n", "no sensor columns", ["sensor"]),
        (b"machine_id,cycle,s1\n", "no readable readings", []),
        (b"just one column\nfoo\n", "could not detect the delimiter", []),
    ],
)
def test_unrecognisable_files_raise_clear_errors(data, match, missing):
    with pytest.raises(IngestError, match=match) as exc:
        ingest_csv(io.BytesIO(data), source="up.csv")
    assert exc.value.missing == missing
    assert "up.csv" in str(exc.value)


def test_size_limit_is_enforced_while_streaming():
    data = b"machine_id,cycle,s\n" + b"".join(b"M,%d,1\n" % i for i in range(200_000))
    with pytest.raises(IngestError, match="size limit"):
        ingest_csv(io.BytesIO(data), options=IngestOptions(max_bytes=100_000))


def test_streams_in_chunks_without_reading_whole_file():
    rows = [f"M{i % 5},{i // 5 + 1},s{j},{(i * 7 + j) % 11}.5" for i in range(40_000) for j in range(3)]
    data = ("machine_id,cycle,sensor,value\n" + "\n".join(rows) + "\n").encode()
    stream = NonSeekable(data)
    r = ingest_csv(stream, options=IngestOptions(chunk_rows=10_000))
    assert max(stream.sizes) <= 1 << 20 < len(data) // 2 + (1 << 20)
    assert len(stream.sizes) > 3
    assert r.readings == 120_000 and r.machines == ["M0", "M1", "M2", "M3", "M4"]
    whole = ingest_csv(io.BytesIO(data), options=IngestOptions(chunk_rows=1_000_000))
    for m in r.machines:
        pd.testing.assert_frame_equal(r.series[m], whole.series[m])


def test_to_long_round_trip():
    r = ingest_csv(_csv(_long_lines(steps=5)))
    long = r.to_long()
    assert list(long.columns) == ["machine_id", "timestamp", "sensor", "value"]
    assert len(long) == 2 * 5 * 2
    assert r.summary()["machines"] == ["A", "B"]


# --------------------------------------------------------------------------- pushed readings


def test_parse_readings_long_and_wide_items_with_per_item_errors():
    payload = [
        {"cycle": 1, "sensor": "temp", "value": 50.0},
        {"cycle": 1, "vib": 1.5},
        {"cycle": 2, "temp": 51.0, "vib": "loud"},
        "not an object",
        {"sensor": "temp", "value": 52},
        {"cycle": 3, "temp": 52.0, "vib": 1.7},
    ]
    r = parse_readings("press-7", payload)
    assert r.format == "readings" and r.machines == ["press-7"]
    df = r.series["press-7"]
    assert df["temp"].tolist() == [50.0, 51.0, 52.0]
    assert df.loc[2, "vib"] == pytest.approx(1.6)  # the non-numeric value dropped, then interpolated
    by_code = {e["code"]: e for e in r.errors}
    assert by_code["non_numeric"]["row"] == 2 and by_code["non_numeric"]["sensor"] == "vib"
    assert by_code["bad_item"]["row"] == 3 and "item 3" in by_code["bad_item"]["message"]
    assert by_code["bad_time"]["row"] == 4 and "item 4" in by_code["bad_time"]["message"]


def test_parse_readings_timestamps_and_errors():
    payload = [{"timestamp": "2024-05-01T10:00:00Z", "sensor": "t", "value": 1},
               {"timestamp": "2024-05-01T10:10:00Z", "sensor": "t", "value": 2}]
    r = parse_readings("M", payload)
    assert r.time_axis == "timestamp"
    assert list(r.series["M"].index) == [pd.Timestamp("2024-05-01 10:00"), pd.Timestamp("2024-05-01 10:10")]
    with pytest.raises(IngestError, match="non-empty list"):
        parse_readings("M", [])
    with pytest.raises(IngestError, match="machine_id is empty"):
        parse_readings("", payload)
    with pytest.raises(IngestError, match="no timestamp or cycle"):
        parse_readings("M", [{"sensor": "t", "value": 1}])
    with pytest.raises(IngestError) as exc:
        parse_readings("M", [{"cycle": "soon", "t": 1}])
    assert exc.value.errors and exc.value.errors[0]["row"] == 0 and "item 0" in exc.value.errors[0]["message"]


def test_merge_series_new_values_win():
    old = pd.DataFrame({"a": [1.0, 2.0, 3.0]}, index=pd.Index([1, 2, 3], name="cycle"))
    new = pd.DataFrame({"a": [20.0, 4.0], "b": [1.0, 1.0]}, index=pd.Index([2, 4], name="cycle"))
    merged = merge_series(old, new)
    assert merged["a"].tolist() == [1.0, 20.0, 3.0, 4.0]
    assert list(merged.index) == [1, 2, 3, 4]
    with pytest.raises(IngestError, match="time axis mismatch"):
        merge_series(old, new.rename_axis("timestamp"))


def test_numeric_time_columns():
    steps = ingest_csv(io.BytesIO(b"machine_id,time,s\nA,0.5,1\nA,1.0,2\nA,1.5,3\n"))
    assert steps.time_axis == "cycle" and list(steps.series["A"].index) == [0.5, 1.0, 1.5]
    epoch = ingest_csv(io.BytesIO(b"machine_id,timestamp,s\nA,1700000000,1\nA,1700000060,2\n"))
    assert epoch.time_axis == "timestamp"
    assert epoch.series["A"].index[0] == pd.Timestamp("2023-11-14 22:13:20")
    assert any(w["code"] == "numeric_time" and "epoch seconds" in w["message"] for w in epoch.warnings)
