"""Finance services without the language model: validation, the scorecard-only pipeline, batches with bad
rows, GBK files, review, exports, training and activation. The LLM path is covered end to end in
test_e2e.py (real model service, real worker)."""
from __future__ import annotations

import csv
import io

import pytest

from apps.finance import selectors, services
from apps.finance.fields import FIELD_NAMES, MODEL_INPUTS
from apps.finance.models import Assessment, CreditModelVersion, Review
from apps.finance.tests.conftest import applicant_of, csv_bytes
from core.audit import AuditEvent
from core.models import Batch, JobStatus
from core.services import job_run_inline

pytestmark = pytest.mark.django_db


def run_job(job: Assessment) -> Assessment:
    """Execute one delivery of the job in this process (what a worker does)."""
    job_run_inline(model=Assessment, job_id=str(job.pk), handler=services.assessment_process)
    job.refresh_from_db()
    return job


def test_create_rejects_bad_fields_naming_them(make_user, credit_model, german_rows):
    user = make_user("ana", "finance")
    applicant = applicant_of(german_rows[0])
    applicant["credit_amount"] = "lots"
    applicant["duration_in_month"] = "-6"
    with pytest.raises(services.FinanceInputError) as err:
        services.assessment_create(owner=user, applicant=applicant)
    assert "credit_amount" in err.value.message and "duration_in_month" in err.value.message
    with pytest.raises(services.FinanceInputError, match="applicant.s fields, a report"):
        services.assessment_create(owner=user, applicant={}, report="  ")
    partial = {"credit_amount": 1000}
    with pytest.raises(services.FinanceInputError, match="age_in_years"):
        services.assessment_create(owner=user, applicant=partial)
    assert not Assessment.objects.exists()


def test_create_needs_an_active_model(make_user, german_rows):
    user = make_user("ana", "finance")
    with pytest.raises(services.FinanceInputError, match="no scorecard version is active"):
        services.assessment_create(owner=user, applicant=applicant_of(german_rows[0]))


def test_scorecard_only_pipeline(make_user, credit_model, german_rows, llm_off):
    user = make_user("ana", "finance")
    job = services.assessment_create(owner=user, applicant=applicant_of(german_rows[1]), application_id="A-1")
    assert job.status == JobStatus.QUEUED and job.credit_model_id == credit_model.pk
    job = run_job(job)
    assert job.status == JobStatus.SUCCEEDED, job.error_message
    r = job.result
    for key in ("risk_level", "risk_label", "probability_of_default", "score", "reason_codes", "llm",
                "needs_review", "scorecard", "versions"):
        assert key in r
    assert r["llm"] is None and r["llm_enabled"] is False
    assert any(n["code"] == "llm_off" for n in r["notes"])
    assert 0 < r["probability_of_default"] < 1 and r["risk_level"] in (1, 2, 3)
    assert r["risk_label"] == {1: "low", 2: "medium", 3: "high"}[r["risk_level"]]
    assert r["versions"]["scorecard"] == f"v{credit_model.version}"
    assert 1 <= len(r["reason_codes"]) <= 4
    assert all(rc["text_en"] and rc["text_zh"] for rc in r["reason_codes"])
    assert job.probability_of_default == r["probability_of_default"] and job.score == r["score"]
    assert job.risk_level == r["scorecard"]["risk_level"] and job.needs_review is False
    # protected attributes are kept as given but never scored
    assert r["applicant"]["personal_status_and_sex"] == german_rows[1]["personal_status_and_sex"]


def test_report_only_without_llm_is_refused(make_user, credit_model, llm_off):
    user = make_user("ana", "finance")
    with pytest.raises(services.FinanceInputError, match="LLM_ENABLED=false"):
        services.assessment_create(owner=user, report="The applicant wants 5000 DM for a car.")


def _batch_file(german_rows, encoding="utf-8") -> bytes:
    columns = ["application_id", *FIELD_NAMES, "comment_from_bank"]
    rows = []
    for i, row in enumerate(german_rows[:3]):
        rows.append({**applicant_of(row), "application_id": f"B-{i + 1}", "comment_from_bank": "x"})
    bad_amount = {**applicant_of(german_rows[3]), "application_id": "B-4", "credit_amount": "abc"}
    bad_duration = {**applicant_of(german_rows[4]), "application_id": "B-5", "duration_in_month": "-12"}
    duplicate = {**applicant_of(german_rows[5]), "application_id": "B-1"}
    return csv_bytes([*rows, bad_amount, bad_duration, duplicate], columns, encoding=encoding)


def _upload(name: str, data: bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data, content_type="text/csv")


def test_batch_good_and_bad_rows(make_user, credit_model, german_rows, llm_off,
                                 django_capture_on_commit_callbacks):
    user = make_user("ana", "finance")
    with django_capture_on_commit_callbacks(execute=False):
        batch = services.batch_create(owner=user, upload=_upload("apps.csv", _batch_file(german_rows)))
    services.batch_ingest(batch_id=batch.pk)
    batch.refresh_from_db()
    assert batch.status == Batch.Status.RUNNING and batch.item_total == 6
    assert any("comment_from_bank" in w for w in batch.warnings)
    # every row (two rows share the id B-1, so not keyed by application_id)
    bad = list(Assessment.objects.filter(batch=batch, status=JobStatus.FAILED))
    assert len(bad) == 3
    messages = " | ".join(a.error_message for a in bad)
    assert "row 5, column 'credit_amount'" in messages
    assert "row 6, column 'duration_in_month'" in messages
    assert "duplicate 'B-1'" in messages and "row 7" in messages
    for job in Assessment.objects.filter(batch=batch, status=JobStatus.QUEUED):
        run_job(job)
    batch.refresh_from_db()
    assert batch.status == Batch.Status.DONE
    rows = list(csv.DictReader(io.StringIO(
        "".join(selectors_csv(batch)))))
    assert [r["row"] for r in rows] == ["2", "3", "4", "5", "6", "7"]
    assert [r["status"] for r in rows].count("succeeded") == 3
    assert rows[3]["error"].startswith("invalid_input: row 5, column 'credit_amount'")
    assert rows[0]["application_id"] == "B-1" and rows[0]["probability_of_default"]


def selectors_csv(batch):
    from core.exports import rows_to_csv_bytes

    return rows_to_csv_bytes(selectors.EXPORT_COLUMNS, selectors.batch_result_rows(batch)).decode("utf-8-sig")


def test_batch_gbk_file_with_chinese_headers(make_user, credit_model, german_rows, llm_off,
                                           django_capture_on_commit_callbacks):
    from apps.finance.fields import FIELDS

    user = make_user("ana", "finance")
    header = ["申请编号", *[f.label_zh for f in FIELDS]]
    lines = [",".join(header)]
    for i, row in enumerate(german_rows[:2]):
        values = [f"甲-{i}"] + [f'"{row[f.name]}"' for f in FIELDS]
        lines.append(",".join(values))
    data = ("\r\n".join(lines) + "\r\n").encode("gbk")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    with django_capture_on_commit_callbacks(execute=False):
        batch = services.batch_create(owner=user, upload=_upload("gbk.csv", data))
    services.batch_ingest(batch_id=batch.pk)
    items = list(Assessment.objects.filter(batch=batch).order_by("row_number"))
    assert [a.application_id for a in items] == ["甲-0", "甲-1"]
    assert all(a.status == JobStatus.QUEUED for a in items), [a.error_message for a in items]
    assert run_job(items[0]).status == JobStatus.SUCCEEDED


def test_batch_unreadable_files_fail_clearly(make_user, credit_model, django_capture_on_commit_callbacks):
    """Refused at upload (nothing stored); a file stored some other way still fails when it is read."""
    from core import services as core_services

    user = make_user("ana", "finance")
    cases = {
        "empty.csv": (b"   \n", "empty"),
        "cols.csv": (b"application_id,credit_amount\nA,100\n", "missing required column"),
        "binary.csv": (b"PK\x03\x04rest-of-a-zip", "Excel workbook or ZIP"),
    }
    for name, (data, expected) in cases.items():
        with pytest.raises(services.FinanceInputError, match=expected):
            services.batch_create(owner=user, upload=_upload(name, data))
        assert not Batch.objects.exists()
    for name, (data, expected) in cases.items():
        with django_capture_on_commit_callbacks(execute=False):
            batch = core_services.batch_create(owner=user, app="finance", kind=Assessment.job_type,
                                               upload=_upload(name, data), options={"language": "en"})
        services.batch_ingest(batch_id=batch.pk)
        batch.refresh_from_db()
        assert batch.status == Batch.Status.FAILED, name
        assert expected in " ".join(batch.errors), (name, batch.errors)
        assert name in " ".join(batch.errors)


def test_review_approve_and_override_are_audited(make_user, credit_model, german_rows, llm_off):
    analyst = make_user("ana", "finance")
    job = run_job(services.assessment_create(owner=analyst, applicant=applicant_of(german_rows[2])))
    # simulate the rule asking for review
    Assessment.objects.filter(pk=job.pk).update(status=JobStatus.NEEDS_REVIEW, needs_review=True)
    job.refresh_from_db()
    assert job in selectors.review_queue(analyst)
    with pytest.raises(services.FinanceInputError, match="comment"):
        services.assessment_review(assessment=job, reviewer=analyst, decision="override", final_risk_level=3)
    with pytest.raises(services.FinanceInputError, match="final_risk_level"):
        services.assessment_review(assessment=job, reviewer=analyst, decision="override", comment="x")
    services.assessment_review(assessment=job, reviewer=analyst, decision="approve", comment="fine")
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED and job.final_decision == "approved"
    assert job.final_risk_level == job.risk_level and job not in selectors.review_queue(analyst)
    other = 3 if job.risk_level != 3 else 1
    services.assessment_review(assessment=job, reviewer=analyst, decision="override", final_risk_level=other,
                               comment="income verified lower than stated")
    job.refresh_from_db()
    assert job.final_decision == "overridden" and job.final_risk_level == other
    assert job.result["risk_level"] == job.risk_level != other  # the model output is kept apart
    assert Review.objects.filter(assessment=job).count() == 2
    events = AuditEvent.objects.filter(action="review", object_id=str(job.pk))
    assert events.count() == 2
    assert {e.detail["decision"] for e in events} == {"approve", "override"}


def test_exports_neutralise_formula_cells(make_user, credit_model, german_rows, llm_off, client):
    user = make_user("ana", "finance")
    run_job(services.assessment_create(owner=user, applicant=applicant_of(german_rows[0]),
                                       application_id="=HYPERLINK(\"http://x\")"))
    client.force_login(user)
    response = client.get("/finance/assessments/export.csv")
    assert response.status_code == 200
    text = response.content.decode("utf-8-sig")
    assert "'=HYPERLINK" in text and ",=HYPERLINK" not in text
    response = client.get("/finance/assessments/export.xlsx")
    from openpyxl import load_workbook

    sheet = load_workbook(io.BytesIO(response.content)).active
    ids = [row[0].value for row in sheet.iter_rows(min_row=2)]
    assert ids == ["'=HYPERLINK(\"http://x\")"]
    assert AuditEvent.objects.filter(action="export", actor=user).count() == 2


def test_training_file_errors_and_gbk(german_rows):
    columns = [*FIELD_NAMES, "creditability"]
    with pytest.raises(services.FinanceInputError, match="creditability"):
        services.training_frame_read(csv_bytes(german_rows[:80], FIELD_NAMES), filename="nolabel.csv")
    broken = [dict(r) for r in german_rows[:80]]
    broken[3]["creditability"] = "maybe"
    with pytest.raises(services.FinanceInputError, match="row 5, column 'creditability'"):
        services.training_frame_read(csv_bytes(broken, columns), filename="broken.csv")
    frame = services.training_frame_read(csv_bytes(german_rows, columns, encoding="gbk"), filename="gbk.csv")
    assert len(frame) == len(german_rows) and set(MODEL_INPUTS) <= set(frame.columns)


def test_pdf_in_english_and_chinese(make_user, credit_model, german_rows, llm_off):
    from apps.finance.pdf import assessment_pdf_bytes

    user = make_user("ana", "finance")
    job = run_job(services.assessment_create(owner=user, applicant=applicant_of(german_rows[0]),
                                             application_id="P-1"))
    for lang in ("en", "zh-hans"):
        data = assessment_pdf_bytes(job, reviews=[], lang=lang)
        assert data.startswith(b"%PDF") and len(data) > 2000
    assert b"STSong-Light" in assessment_pdf_bytes(job, reviews=[], lang="zh-hans")


def test_activate_keeps_one_active(make_user, credit_model):
    from apps.finance.tests.conftest import trained_scorecard

    admin = make_user("boss", "admin")
    second = services.credit_model_store(trained=trained_scorecard(), data_sha256="1" * 64, filename="x.csv")
    assert not second.is_active and CreditModelVersion.objects.get(is_active=True) == credit_model
    services.credit_model_activate(version=second, actor=admin)
    assert list(CreditModelVersion.objects.filter(is_active=True)) == [second]
    assert AuditEvent.objects.filter(action="activate", object_id=str(second.pk)).exists()


def test_train_command_web_training_and_demo_seed(make_user, german_rows, tmp_path, client, settings,
                                                   django_capture_on_commit_callbacks):
    from django.core.management import call_command

    from apps.finance import demo
    from apps.finance.models import ModelTraining

    columns = [*FIELD_NAMES, "creditability"]
    path = tmp_path / "history.csv"
    path.write_bytes(csv_bytes(german_rows[:240], columns))
    out = io.StringIO()
    call_command("train_credit_model", "--data", str(path), "--activate", stdout=out)
    first = CreditModelVersion.objects.get(is_active=True)
    assert f"scorecard v{first.version}" in out.getvalue() and "AUC" in out.getvalue()
    assert first.data_rows == 240 and first.calibration_png.startswith(b"\x89PNG")
    assert {"auc", "ks", "gini", "brier"} <= set(first.metrics)
    assert set(first.fairness["groups"]) >= {"age_band", "personal_status_and_sex"}
    assert AuditEvent.objects.filter(action="train", object_id=str(first.pk)).exists()

    # the web page trains asynchronously: upload → job → new (inactive) version
    admin = make_user("boss", "admin")
    client.force_login(admin)
    from django.core.files.uploadedfile import SimpleUploadedFile

    with django_capture_on_commit_callbacks(execute=False):
        response = client.post("/finance/models/", {"file": SimpleUploadedFile("h.csv", path.read_bytes()),
                                                    "note": "web"})
    assert response.status_code == 302
    training = ModelTraining.objects.get()
    job_run_inline(model=ModelTraining, job_id=str(training.pk), handler=services.model_training_process)
    training.refresh_from_db()
    assert training.status == JobStatus.SUCCEEDED and training.credit_model.version == first.version + 1
    assert not training.credit_model.is_active
    assert client.post(f"/finance/models/{training.credit_model.version}/activate/").status_code == 302
    assert CreditModelVersion.objects.get(is_active=True) == training.credit_model

    # setup_demo: a model exists, so only the worked example is queued (once)
    settings.LLM_ENABLED = False
    with django_capture_on_commit_callbacks(execute=False):
        demo.demo_seed(owner=admin, stdout=out)
        demo.demo_seed(owner=admin, stdout=out)
    example = Assessment.objects.get(application_id=demo.DEMO_APPLICATION_ID)
    assert example.report and example.applicant["credit_amount"] == 4500
