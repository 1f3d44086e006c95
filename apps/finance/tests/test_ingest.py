"""Applications CSV and JSON parsing: encodings, delimiters, headers, per-row validation (pure, no Django)."""
from __future__ import annotations

import csv
import io
import time

import pandas as pd
import pytest

from apps.finance import fields, ingest
from apps.finance.tests.conftest import shared_csv_text


@pytest.fixture(scope="module")
def raw_training() -> bytes:
    """The training file (the repository's copy when there is one); missing data fails, never skips."""
    return shared_csv_text().encode("utf-8")


@pytest.fixture(scope="module")
def records(raw_training) -> list[dict]:
    return list(csv.DictReader(io.StringIO(raw_training.decode("utf-8"))))


def build(rows: list[dict], columns: list[str], *, delimiter: str = ",", encoding: str = "utf-8",
          header: list[str] | None = None) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delimiter, lineterminator="\n")
    writer.writerow(header or columns)
    for row in rows:
        writer.writerow([row.get(c, "") for c in columns])
    return buf.getvalue().encode(encoding)


def scoring_rows(records, n=5, changes: dict | None = None) -> list[dict]:
    out = []
    for i, rec in enumerate(records[:n]):
        row = {k: v for k, v in rec.items() if k != "creditability"}
        row["application_id"] = f"A-{i + 1}"
        out.append(row)
    for (index, column), value in (changes or {}).items():
        out[index][column] = value
    return out


COLUMNS = ["application_id", *fields.FIELD_NAMES, "report"]


# --- whole files ---------------------------------------------------------------------------------
def test_training_file_round_trip(raw_training):
    result = ingest.parse_applications_csv(raw_training, training=True, filename="german.csv")
    assert result.ok and result.encoding == "utf-8" and result.delimiter == ","
    assert len(result.rows) == 700 and len(result.valid_rows) == 700 and result.warnings == []
    frame = result.to_dataframe()
    original = pd.read_csv(io.BytesIO(raw_training))
    assert list(frame.columns) == list(original.columns)
    for name in original.columns:
        if name in fields.NUMERIC_FIELDS:
            assert (frame[name].astype(float) == original[name].astype(float)).all(), name
        else:
            assert (frame[name] == original[name]).all(), name
    assert result.rows[0].row_number == 2 and result.rows[-1].row_number == 701


def test_label_column_only_in_training_mode(raw_training):
    result = ingest.parse_applications_csv(raw_training, filename="german.csv")
    assert not result.ok and result.rows == []
    assert "creditability" in result.file_errors[0] and "german.csv" in result.file_errors[0]
    no_label = build([{"purpose": "x"}], list(fields.FIELD_NAMES))
    result = ingest.parse_applications_csv(no_label, training=True)
    assert result.file_errors == ["file: missing required column(s): creditability"]


def test_scoring_file_with_a_file_object(records):
    data = build(scoring_rows(records), COLUMNS)
    result = ingest.parse_applications_csv(io.BytesIO(data), filename="batch.csv")
    assert result.ok and [r.application_id for r in result.rows] == ["A-1", "A-2", "A-3", "A-4", "A-5"]
    row = result.rows[0]
    assert row.ok and row.applicant["duration_in_month"] == 6 and row.applicant["credit_amount"] == 1169.0
    assert row.applicant["purpose"] == "radio/television" and row.report is None and row.label is None
    assert set(row.applicant) == set(fields.FIELD_NAMES)


@pytest.mark.parametrize(("prefix", "encoding", "label"), [
    (b"\xef\xbb\xbf", "utf-8", "utf-8-sig"), (b"", "utf-8", "utf-8"), (b"\xff\xfe", "utf-16-le", "utf-16"),
])
def test_utf_encodings(records, prefix, encoding, label):
    data = prefix + build(scoring_rows(records, 2), COLUMNS, encoding=encoding)
    result = ingest.parse_applications_csv(data)
    assert result.ok and result.encoding == label and len(result.valid_rows) == 2


def test_gbk_file_with_chinese_headers_and_report(records):
    rows = scoring_rows(records, 3)
    rows[0]["report"] = "申请人在本行有透支账户，月收入稳定，申请购买电视。"
    rows[1]["purpose"] = "收音机 / 电视"  # the Chinese display text of a category
    header = ["申请编号", *(fields.FIELDS_BY_NAME[n].label_zh for n in fields.FIELD_NAMES), "申请报告"]
    data = build(rows, COLUMNS, encoding="gbk", header=header)
    result = ingest.parse_applications_csv(data, filename="bank.csv")
    assert result.ok, result.file_errors
    assert result.encoding == "gb18030" and any("GB18030" in w for w in result.warnings)
    assert [r.ok for r in result.rows] == [True, True, True], [r.errors for r in result.rows]
    assert result.rows[0].report == rows[0]["report"]
    assert result.rows[1].applicant["purpose"] == "radio/television"
    assert result.columns["申请编号"] == "application_id"


def test_undecodable_and_binary_files_are_rejected():
    bad = b"application_id,report\nA1,\x80\x80\xff\xfe\n"
    result = ingest.parse_applications_csv(bad, filename="weird.csv")
    assert result.rows == [] and "weird.csv" in result.file_errors[0]
    assert "UTF-8" in result.file_errors[0] and "GBK" in result.file_errors[0]
    result = ingest.parse_applications_csv(b"PK\x03\x04" + b"\x00" * 50, filename="book.xlsx")
    assert "Excel" in result.file_errors[0]
    result = ingest.parse_applications_csv(b"a,b\x00c", filename="bin.csv")
    assert "binary" in result.file_errors[0]


@pytest.mark.parametrize("data", [b"", b"   \n\n", io.BytesIO(b"")])
def test_empty_file(data):
    result = ingest.parse_applications_csv(data, filename="e.csv")
    assert result.file_errors == ["e.csv: the file is empty"] and result.rows == []


def test_header_only(records):
    result = ingest.parse_applications_csv(build([], COLUMNS) + b"\n\n", filename="h.csv")
    assert result.file_errors == ["h.csv: the file has a header but no data rows"]


@pytest.mark.parametrize("delimiter", [";", "\t"])
def test_delimiters(records, delimiter):
    result = ingest.parse_applications_csv(build(scoring_rows(records, 4), COLUMNS, delimiter=delimiter))
    assert result.delimiter == delimiter and len(result.valid_rows) == 4


def test_missing_and_unknown_columns(records):
    cols = [c for c in COLUMNS if c not in ("purpose", "age_in_years")] + ["branch", "officer"]
    result = ingest.parse_applications_csv(build(scoring_rows(records, 2), cols), filename="m.csv")
    assert result.file_errors == ["m.csv: missing required column(s): purpose, age_in_years"]
    ok_cols = [*COLUMNS, "branch"]
    result = ingest.parse_applications_csv(build(scoring_rows(records, 2), ok_cols), filename="u.csv")
    assert result.ok and result.warnings == ["u.csv: ignored unknown column(s): branch"]
    assert len(result.valid_rows) == 2


def test_duplicated_header_is_a_file_error(records):
    cols = [*COLUMNS, "purpose"]
    result = ingest.parse_applications_csv(build(scoring_rows(records, 1), cols))
    assert "appears twice" in result.file_errors[0]


# --- rows ----------------------------------------------------------------------------------------
def test_row_errors_name_row_and_column_and_the_rest_go_on(records):
    rows = scoring_rows(records, 8, {
        (0, "credit_amount"): "lots", (1, "duration_in_month"): "-6", (2, "duration_in_month"): "0",
        (3, "purpose"): "holiday", (4, "purpose"): "  RADIO/Television ", (5, "housing"): "OWN",
        (6, "installment_rate_in_percentage_of_disposable_income"): "2.5", (7, "credit_amount"): "1,169",
    })
    result = ingest.parse_applications_csv(build(rows, COLUMNS))
    errors = {r.row_number: r.errors for r in result.rows}
    assert errors[2] == ["row 2, column 'credit_amount': 'lots' is not a number"]
    assert "row 3, column 'duration_in_month'" in errors[3][0] and "between 1 and 480" in errors[3][0]
    assert "row 4, column 'duration_in_month'" in errors[4][0]
    assert "row 5, column 'purpose': 'holiday' is not an allowed value" in errors[5][0]
    assert "'car (new)'" in errors[5][0] and "'retraining'" in errors[5][0]
    assert errors[6] == [] and result.rows[4].applicant["purpose"] == "radio/television"
    assert errors[7] == [] and result.rows[5].applicant["housing"] == "own"
    assert "whole number" in errors[8][0]
    assert errors[9] == [] and result.rows[7].applicant["credit_amount"] == 1169.0
    assert len(result.valid_rows) == 3 and len(result.invalid_rows) == 5, errors


def test_duplicated_application_ids(records):
    rows = scoring_rows(records, 5, {(2, "application_id"): "A-1", (4, "application_id"): "A-1"})
    result = ingest.parse_applications_csv(build(rows, COLUMNS))
    assert [r.ok for r in result.rows] == [True, True, False, True, False]
    assert result.rows[2].errors == ["row 4, column 'application_id': duplicate 'A-1', first used on row 2"]
    assert "first used on row 2" in result.rows[4].errors[0]


def test_missing_values_need_a_report(records):
    rows = scoring_rows(records, 3, {(0, "age_in_years"): "", (1, "age_in_years"): "NA", (1, "purpose"): "",
                                       (2, "age_in_years"): ""})
    rows[1]["report"] = "The applicant is 41 and wants a used car."
    result = ingest.parse_applications_csv(build(rows, COLUMNS))
    assert result.rows[0].errors == ["row 2, column 'age_in_years': missing value (required when the row "
                                     "has no report)"]
    assert result.rows[1].ok and result.rows[1].applicant["age_in_years"] is None
    assert result.rows[1].applicant["purpose"] is None and result.rows[1].report.startswith("The applicant")
    assert not result.rows[2].ok


def test_wrong_cell_count_and_multiline_report(records):
    rows = scoring_rows(records, 3)
    rows[0]["report"] = "line one\nline two, with a comma"
    text = build(rows, COLUMNS).decode()
    lines = text.split("\n")
    lines[-2] = lines[-2] + ",extra"  # the last data row gets one cell too many
    result = ingest.parse_applications_csv("\n".join(lines).encode())
    assert result.rows[0].ok and result.rows[0].report == "line one\nline two, with a comma"
    assert [r.row_number for r in result.rows] == [2, 3, 4]
    assert result.rows[2].errors[0].startswith("row 4: has 23 cells but the header has 22 columns")


def test_training_label_validation(records):
    rows = [dict(r) for r in records[:3]]
    rows[1]["creditability"] = "maybe"
    rows[2]["creditability"] = " BAD "
    result = ingest.parse_applications_csv(build(rows, [*fields.FIELD_NAMES, "creditability"]), training=True)
    assert result.rows[1].errors == ["row 3, column 'creditability': 'maybe' is not 'good' or 'bad'"]
    assert result.rows[2].label == "bad" and result.rows[0].label == "good"
    assert len(result.to_dataframe()) == 2


def test_ten_thousand_rows_parse_fast(records):
    base = scoring_rows(records, 700)
    rows = [dict(base[i % 700], application_id=f"B{i}") for i in range(10_000)]
    data = build(rows, COLUMNS)
    started = time.perf_counter()
    result = ingest.parse_applications_csv(data)
    elapsed = time.perf_counter() - started
    assert len(result.valid_rows) == 10_000 and elapsed < 3.0, elapsed


# --- one JSON application ------------------------------------------------------------------------
def test_parse_applicant_valid_and_labels_as_keys(records):
    base = {k: v for k, v in records[0].items() if k != "creditability"}
    clean, errors = ingest.parse_applicant(base)
    assert errors == [] and clean["duration_in_month"] == 6 and isinstance(clean["duration_in_month"], int)
    by_label = {fields.FIELDS_BY_NAME[k].label_zh: v for k, v in base.items()}
    assert ingest.parse_applicant(by_label) == (clean, [])
    typed = dict(base, duration_in_month=6, credit_amount=1169.0)
    assert ingest.parse_applicant(typed) == (clean, [])


def test_parse_applicant_errors(records):
    base = {k: v for k, v in records[0].items() if k != "creditability"}
    clean, errors = ingest.parse_applicant(dict(base, duration_in_month=-1, housing="castle",
                                                credit_ammount=5))
    assert "applicant: unknown field 'credit_ammount'" in errors
    assert any("field 'duration_in_month'" in e and "out of range" in e for e in errors)
    assert any("field 'housing'" in e and "'castle'" in e for e in errors)
    assert clean["housing"] is None and clean["purpose"] == "radio/television"
    _, errors = ingest.parse_applicant(dict(base, age_in_years=True))
    assert errors == ["applicant: field 'age_in_years': expected a number, got True"]
    _, errors = ingest.parse_applicant({"purpose": "business"})
    assert len(errors) == 19 and all("required when there is no report" in e for e in errors)
    assert ingest.parse_applicant({})[1] == ["applicant: give the applicant fields or a report"]
    assert "expected an object" in ingest.parse_applicant(["x"])[1][0]


def test_parse_applicant_with_report_allows_absent_fields():
    clean, errors = ingest.parse_applicant({"purpose": "Business", "age_in_years": None},
                                           report="A shop owner.")
    assert errors == [] and clean["purpose"] == "business" and clean["age_in_years"] is None
    clean, errors = ingest.parse_applicant(None, report="Only a report.")
    assert errors == [] and all(v is None for v in clean.values())
