"""Finance forms: a batch CSV with wrong columns refused at upload (page and API, nothing stored), the CSV
template that parses back cleanly, the error summary on top of the forms, the review form that keeps the
reviewer's choices, coded fields as select boxes and numbers in the one format."""
from __future__ import annotations

import csv
import io
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from apps.finance import ingest, services
from apps.finance.fields import FIELD_NAMES, FIELDS, FIELDS_BY_NAME, TEMPLATE_COLUMNS
from apps.finance.models import Assessment, Review
from apps.finance.tests.conftest import applicant_of, csv_bytes
from core.models import Batch, JobStatus
from core.services import job_run_inline

pytestmark = pytest.mark.django_db

RATE = "installment_rate_in_percentage_of_disposable_income"


def _csv(name: str, data: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="text/csv")


def _scored(user, row, **kwargs) -> Assessment:
    job = services.assessment_create(owner=user, applicant=applicant_of(row), **kwargs)
    job_run_inline(model=Assessment, job_id=str(job.pk), handler=services.assessment_process)
    job.refresh_from_db()
    return job


# --- 1. wrong columns refused at upload --------------------------------------------------------------------
def test_api_refuses_missing_columns_at_once_naming_them(make_user, api_client_for, credit_model,
                                                         german_rows):
    api = api_client_for(make_user("ana", "finance"))
    columns = [c for c in FIELD_NAMES if c not in ("purpose", "age_in_years")]
    data = csv_bytes([applicant_of(r) for r in german_rows[:3]], columns)
    response = api.post("/api/v1/finance/batches/", {"file": _csv("cols.csv", data)}, format="multipart")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "missing_columns"
    assert error["details"]["field"] == "file" and error["details"]["missing"] == ["purpose", "age_in_years"]
    assert error["details"]["expected"] == list(FIELD_NAMES)
    assert error["details"]["optional"] == ["application_id", "report"]
    assert "cols.csv" in error["message"] and "purpose, age_in_years" in error["message"]
    assert ", ".join(FIELD_NAMES) in error["message"]  # the expected columns are listed
    assert not Batch.objects.exists() and not Assessment.objects.exists()

    unrelated = b"name,amount,city\nMeyer,1000,Bonn\n"
    response = api.post("/api/v1/finance/batches/", {"file": _csv("other.csv", unrelated)},
                        format="multipart")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_header" and "name, amount, city" in error["message"]
    assert "not a header" in error["message"] and len(error["details"]["missing"]) == len(FIELD_NAMES)
    workbook = b"PK\x03\x04" + b"\x00" * 100
    response = api.post("/api/v1/finance/batches/", {"file": _csv("book.csv", workbook)}, format="multipart")
    assert response.status_code == 400 and response.json()["error"]["code"] == "unreadable_file"
    assert "Excel workbook" in response.json()["error"]["message"]
    with_label = csv_bytes([r for r in german_rows[:2]], [*FIELD_NAMES, "creditability"])
    response = api.post("/api/v1/finance/batches/", {"file": _csv("lab.csv", with_label)}, format="multipart")
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_header"
    assert "creditability" in response.json()["error"]["message"]
    assert not Batch.objects.exists()


def test_page_refuses_missing_columns_on_the_file_field(make_user, client, credit_model, german_rows):
    client.force_login(make_user("ana", "finance"))
    data = csv_bytes([applicant_of(r) for r in german_rows[:2]], [c for c in FIELD_NAMES if c != "housing"])
    response = client.post("/finance/batches/", {"file": _csv("h.csv", data), "language": "en"})
    assert response.status_code == 400
    errors = " ".join(response.context["form"].errors["file"])
    assert "missing required column(s): housing" in errors and "credit_history" in errors
    html = response.content.decode()
    assert 'id="form-errors"' in html and 'href="#id_file"' in html
    assert not Batch.objects.exists()


def test_page_message_in_chinese(make_user, client, credit_model, german_rows):
    client.force_login(make_user("ana", "finance"))
    client.cookies["django_language"] = "zh-hans"
    data = csv_bytes([applicant_of(r) for r in german_rows[:2]], [c for c in FIELD_NAMES if c != "job"])
    response = client.post("/finance/batches/", {"file": _csv("j.csv", data), "language": "en"},
                           HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert response.status_code == 400
    html = response.content.decode()
    assert "缺少必需的列：job" in html and "有 1 个字段需要修改" in html


def test_all_columns_with_bad_rows_is_accepted_and_bad_rows_fail_alone(make_user, client, credit_model,
                                                                       german_rows, llm_off,
                                                                       django_capture_on_commit_callbacks):
    client.force_login(make_user("ana", "finance"))
    rows = [applicant_of(r) for r in german_rows[:3]]
    rows[1] = {**rows[1], "age_in_years": "twelve"}
    with django_capture_on_commit_callbacks(execute=False):
        upload = _csv("rows.csv", csv_bytes(rows, list(FIELD_NAMES)))
        response = client.post("/finance/batches/", {"file": upload, "language": "en"})
    assert response.status_code == 302
    batch = Batch.objects.get()
    services.batch_ingest(batch_id=batch.pk)
    items = list(Assessment.objects.filter(batch=batch).order_by("row_number"))
    assert [a.status for a in items] == [JobStatus.QUEUED, JobStatus.FAILED, JobStatus.QUEUED]
    assert "row 3" in items[1].error_message and "age_in_years" in items[1].error_message


def test_header_check_reads_only_the_head_and_survives_a_cut_character(german_rows):
    """A UTF-8 file with Chinese headers whose first bytes end inside a character is not misread as GBK."""
    def lines(rows) -> str:
        out = io.StringIO()
        csv.writer(out).writerows(rows)
        return out.getvalue()

    header = lines([[f.label_zh for f in FIELDS] + ["申请报告"]])
    rest = lines([[german_rows[i % 50][f.name] for f in FIELDS] + ["申请人收入稳定，" * 40]
                  for i in range(1, 200)])
    for pad in range(600):  # shift the text until the cut falls inside a character
        first = lines([[german_rows[0][f.name] for f in FIELDS] + ["x" * pad]])
        data = (header + first + rest).encode("utf-8")
        head = data[:ingest.HEADER_PEEK_BYTES]
        try:
            head.decode("utf-8")
        except UnicodeDecodeError:
            break
    assert len(data) > ingest.HEADER_PEEK_BYTES
    with pytest.raises(UnicodeDecodeError):
        head.decode("utf-8")  # the cut falls inside a character
    check = ingest.check_header(head, filename="zh.csv", truncated=True)
    assert check.ok and not check.missing, check.errors
    assert check.columns["贷款用途"] == "purpose"
    upload = _csv("zh.csv", data)
    services.batch_header_check(upload=upload)  # does not raise
    assert upload.tell() == 0  # left at the start for storing
    broken = ingest.check_header(b"purpose,housing\n" + data[-5000:], filename="x.csv")
    assert not broken.ok and "age_in_years" in broken.missing


# --- 2. CSV template -------------------------------------------------------------------------------------
def test_csv_template_downloads_and_parses_back_cleanly(make_user, client, credit_model, llm_off,
                                                        django_capture_on_commit_callbacks):
    client.force_login(make_user("ana", "finance"))
    url = reverse("finance:csv_template")
    assert url == "/finance/upload/template.csv"
    page = client.get("/finance/batches/").content.decode()
    assert f'href="{url}"' in page and "Download a CSV template" in page
    response = client.get(url)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    data = response.content
    header = next(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert header == list(TEMPLATE_COLUMNS) and set(FIELD_NAMES) <= set(header)
    parsed = ingest.parse_applications_csv(data, filename="template.csv")
    assert parsed.ok and len(parsed.rows) == 2 and not parsed.invalid_rows, parsed.as_dict()
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post("/finance/batches/", {"file": _csv("template.csv", data), "language": "en"})
    assert response.status_code == 302
    batch = Batch.objects.get()
    services.batch_ingest(batch_id=batch.pk)
    items = Assessment.objects.filter(batch=batch)
    assert items.count() == 2 and not items.filter(status=JobStatus.FAILED).exists()


# --- 3. error summary --------------------------------------------------------------------------------------
def test_application_form_error_summary_links_each_field(make_user, client, credit_model, german_rows,
                                                         llm_off):
    client.force_login(make_user("ana", "finance"))
    data = {**applicant_of(german_rows[2]), "language": "en", "report": "", "age_in_years": "12",
            "credit_amount": "lots"}
    response = client.post("/finance/new/", data)
    html = response.content.decode()
    assert response.status_code == 200 and not Assessment.objects.exists()
    summary = html[html.index('id="form-errors"'):]
    summary = summary[:summary.index("</div>")]
    assert "2 fields need attention" in summary
    assert 'href="#id_age_in_years"' in summary and 'href="#id_credit_amount"' in summary
    assert html.index('id="form-errors"') < html.index('id="id_application_id"')  # at the top
    assert 'href="#id_purpose"' not in summary


def test_application_form_summary_shows_errors_of_no_field(make_user, client, german_rows, llm_off):
    client.force_login(make_user("ana", "finance"))  # no active scorecard: an error of the whole form
    response = client.post("/finance/new/", {**applicant_of(german_rows[2]), "language": "en"})
    html = response.content.decode()
    assert 'id="form-errors"' in html and 'class="non-field-error"' in html
    assert "no scorecard version is active" in html and "need attention" not in html


# --- 4. the review form keeps the reviewer's choices ------------------------------------------------------
def _pending(user, row) -> Assessment:
    job = _scored(user, row)
    Assessment.objects.filter(pk=job.pk).update(status=JobStatus.NEEDS_REVIEW, needs_review=True)
    job.refresh_from_db()
    return job


def test_review_on_the_application_page_keeps_choices_when_refused(make_user, client, credit_model,
                                                                    german_rows, llm_off):
    user = make_user("ana", "finance")
    job = _pending(user, german_rows[2])
    client.force_login(user)
    url = reverse("finance:assessment_review", args=[job.pk])
    response = client.post(url, {"decision": "override", "final_risk_level": "3", "comment": ""})
    assert response.status_code == 400 and not Review.objects.exists()
    form = response.context["review_form"]
    assert form.data["decision"] == "override" and form.data["final_risk_level"] == "3"
    html = response.content.decode()
    assert re.search(r'<input[^>]*value="override"[^>]*checked', html)
    assert not re.search(r'<input[^>]*value="approve"[^>]*checked', html)
    assert '<option value="3" selected>' in html
    assert "Say why you override the model." in html and 'href="#id_comment"' in html
    response = client.post(url, {"decision": "override", "final_risk_level": "", "comment": "income lower"})
    assert response.status_code == 400
    html = response.content.decode()
    assert "income lower</textarea>" in html and "final risk level 1, 2 or 3" in html
    other = 3 if job.risk_level != 3 else 1  # the service's own rule: approving keeps the model's level
    response = client.post(url, {"decision": "approve", "final_risk_level": str(other), "comment": "ok"})
    assert response.status_code == 400 and "approving keeps the model" in response.content.decode()
    assert not Review.objects.exists()
    response = client.post(url, {"decision": "override", "final_risk_level": str(other), "comment": "lower"})
    assert response.status_code == 302 and Review.objects.count() == 1


def test_review_from_the_queue_keeps_choices_when_refused(make_user, client, credit_model, german_rows,
                                                          llm_off):
    user = make_user("ana", "finance")
    job = _pending(user, german_rows[2])
    _pending(user, german_rows[3])
    client.force_login(user)
    url = reverse("finance:assessment_review", args=[job.pk])
    response = client.post(url, {"decision": "override", "final_risk_level": "2", "comment": "",
                                 "next": "queue"})
    assert response.status_code == 400 and not Review.objects.exists()
    assert response.templates[0].name == "finance/review_queue.html"
    html = response.content.decode()
    row = html[html.index(f'action="{url}"'):]
    row = row[:row.index("</form>")]
    assert '<option value="override" selected>' in row and '<option value="2" selected>' in row
    assert "Say why you override the model." in row
    assert 'id="review-errors"' in html and 'href="#id_comment"' in html
    assert '<li class="msg-error">Comment: Say why you override the model.</li>' in html
    table = html[html.index('id="review-queue"'):html.index("</table>")]
    assert table.count(" selected>") == 2  # the other row is untouched
    response = client.post(url, {"decision": "override", "final_risk_level": "", "comment": "income lower",
                                 "next": "queue"})
    row = response.content.decode()
    row = row[row.index(f'action="{url}"'):]
    assert 'value="income lower"' in row[:row.index("</form>")]


# --- 5. coded fields as choices ----------------------------------------------------------------------------
@pytest.mark.parametrize("lang, label", [("en", "4 · highest share of income"),
                                         ("zh-hans", "4 · 占收入比例最高")])
def test_coded_fields_are_select_boxes_with_meaning(make_user, client, credit_model, lang, label):
    client.force_login(make_user("ana", "finance"))
    client.cookies["django_language"] = lang
    response = client.get("/finance/new/", HTTP_ACCEPT_LANGUAGE=lang)
    form = response.context["form"]
    for name in (RATE, "present_residence_since"):
        choices = [value for value, _ in form.fields[name].choices]
        assert choices == ["", 1, 2, 3, 4], name
        assert f'<select name="{name}"' in response.content.decode()
    assert label in response.content.decode()
    coded = [f.name for f in FIELDS if f.codes]
    assert coded == [RATE, "present_residence_since"]
    assert FIELDS_BY_NAME["present_residence_since"].code_label(1, "en") == "1 · shortest time"


def test_coded_fields_submit_numbers_and_the_api_still_takes_numbers(make_user, client, api_client_for,
                                                                    credit_model, german_rows, llm_off):
    user = make_user("ana", "finance")
    client.force_login(user)
    data = {**applicant_of(german_rows[2]), "language": "en", "application_id": "C-1", RATE: "3",
            "present_residence_since": "1"}
    assert client.post("/finance/new/", data).status_code == 302
    job = Assessment.objects.get(application_id="C-1")
    assert job.applicant[RATE] == 3 and job.applicant["present_residence_since"] == 1
    response = client.post("/finance/new/", {**data, "application_id": "C-2", RATE: "7"})
    assert response.status_code == 200 and RATE in response.context["form"].errors
    api = api_client_for(user)
    applicant = {**applicant_of(german_rows[2]), RATE: 2, "present_residence_since": 4}
    response = api.post("/api/v1/finance/assessments/", {"applicant": applicant, "application_id": "C-3"},
                        format="json")
    assert response.status_code == 202
    assert Assessment.objects.get(application_id="C-3").applicant[RATE] == 2


# --- 6. numbers in the one format ---------------------------------------------------------------------------
def test_application_page_formats_numbers(make_user, client, credit_model, german_rows, llm_off):
    from core.templatetags.core_tags import num, pct

    user = make_user("ana", "finance")
    row = next(r for r in german_rows if float(r["credit_amount"]) >= 1000)
    job = _scored(user, row)
    client.force_login(user)
    html = client.get(job.get_absolute_url()).content.decode()
    pd_text = pct(job.result["probability_of_default"])
    assert f'<div class="value" id="pd">{pd_text}</div>' in html and pd_text.endswith("%")
    assert f'<div class="value" id="score">{num(job.result["score"])}</div>' in html
    amount = num(float(row["credit_amount"]))
    assert "," in amount and f"<td>{amount}</td>" in html
    rate = FIELDS_BY_NAME[RATE].code_label(int(row[RATE]), "en")
    assert f"<td>{rate}</td>" in html
    table = client.get("/finance/assessments/").content.decode()
    assert f"<td>{pd_text}</td>" in table and f"<td>{num(job.result['score'])}</td>" in table
