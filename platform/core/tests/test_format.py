"""The suite's one number and date format (core_tags ``num``/``pct``/``dicom_date``), translated app and job
names, and the pages that use them: a batch still being read, the dashboard in Chinese."""
import pytest
from django.template.loader import render_to_string
from django.utils import translation

from core.models import Batch, DiagnosticJob
from core.registry import suite_apps
from core.templatetags.core_tags import app_name, dicom_date, job_type_name, num, pct, result_rows


@pytest.mark.parametrize("lang", ["en", "zh-hans"])
def test_numbers_are_grouped_with_fixed_precision_in_both_languages(lang):
    with translation.override(lang):
        assert num(5951.0) == "5,951"  # no "5951.0"
        assert num(1234567) == "1,234,567"
        assert num(0.0152, 4) == "0.0152"
        assert num(2.295, 1) == "2.3"
        assert num(12.5) == "12.5"
        assert num(None) == "—" and num("") == "—"
        assert num("n/a") == "n/a"
        assert pct(0.4213) == "42.1%"
        assert pct(1.0) == "100.0%" and pct(0) == "0.0%"
        assert pct(0.99996) == ">99.9%" and pct(0.00002) == "<0.1%"  # never rounded to a false 0 or 100
        assert pct(None) == "—"


def test_dicom_dates_use_the_locale_date_format():
    with translation.override("en"):
        assert dicom_date("20040119") == "Jan. 19, 2004"
        assert dicom_date("2004-01-19") == "Jan. 19, 2004"
    with translation.override("zh-hans"):
        assert dicom_date("20040119") == "2004年1月19日"
    assert dicom_date("") == "—" and dicom_date("unknown") == "unknown"
    assert dicom_date("20041399") == "20041399"  # not a date: as it is


def test_app_and_job_type_names_are_translated():
    app = suite_apps()[0]
    with translation.override("zh-hans"):
        assert app_name(app.label) == str(app.nav[0]) and app_name(app.label) != app.label
        assert job_type_name("core.diagnostic") == "平台自检"
        assert job_type_name(DiagnosticJob()) == "平台自检"
    with translation.override("en"):
        assert job_type_name("core.diagnostic") == "Platform self-test"
        assert app_name("nope") == "nope" and job_type_name("nope.kind") == "nope.kind"


def test_a_result_becomes_table_rows():
    rows = result_rows({"machines": 30.0, "metrics": {"oof_auc": 0.997, "rows": 5987}, "sensors": ["a", "b"],
                        "nothing": None})
    assert rows == [("machines", "30"), ("metrics · oof_auc", "0.997"), ("metrics · rows", "5,987"),
                    ("sensors", "a, b"), ("nothing", "—")]


@pytest.mark.parametrize(("status", "needle", "absent"), [
    (Batch.Status.QUEUED, "Waiting for a worker to read the file", "0 of 0 done"),
    (Batch.Status.PARSING, "Reading the file…", "0 of 0 done"),
    (Batch.Status.FAILED, "The file could not be read", "0 of 0 done"),
    (Batch.Status.RUNNING, "0 of 3 done, 0 failed", "Reading the file…"),
])
def test_a_batch_being_read_says_so_instead_of_counting_nothing(status, needle, absent):
    batch = Batch(app="x", kind="x.y", status=status, item_total=3 if status == Batch.Status.RUNNING else 0,
                  attempts=2)
    progress = {"total": batch.item_total, "done": 0, "failed": 0, "percent": 0.0, "status": status}
    with translation.override("en"):
        html = render_to_string("core/_batch_progress.html", {"batch": batch, "progress": progress})
    assert needle in html and absent not in html
    if status == Batch.Status.PARSING:
        assert "attempt 2" in html and "progress-indeterminate" in html
    with translation.override("zh-hans"):
        zh = render_to_string("core/_batch_progress.html", {"batch": batch, "progress": progress})
    if status == Batch.Status.PARSING:
        assert "正在读取文件" in zh


@pytest.mark.django_db
def test_dashboard_names_apps_and_job_types_in_chinese(client, make_user):
    app = suite_apps()[0]
    admin = make_user("boss", "admin")
    DiagnosticJob.objects.create(owner=admin, delay_seconds=0, use_model=False)
    Batch.objects.create(owner=admin, app=app.label, kind=f"{app.label}.x", status=Batch.Status.PARSING,
                         original_filename="in-progress.csv")
    client.force_login(admin)
    html = client.get("/dashboard/activity/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    with translation.override("zh-hans"):
        assert f'<td class="nowrap">{app.nav[0]}</td>' in html
    assert "平台自检" in html and "core.diagnostic" not in html
    assert "正在读取文件" in html and "0 / 0" not in html


@pytest.mark.django_db
def test_a_job_result_is_a_table_with_the_raw_form_folded_away(client, make_user):
    admin = make_user("boss", "admin")
    job = DiagnosticJob.objects.create(owner=admin, status="succeeded",
                                       result={"answer": "OK", "tokens": 1234.0, "timings": {"total_s": 0.5}})
    client.force_login(admin)
    html = client.get(job.get_absolute_url(), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    table = html.split('class="table facts-table result-table"')[1].split("</table>")[0]
    assert "<th scope=\"row\">tokens</th><td>1,234</td>" in table and "timings · total_s" in table
    assert "原始结果" in html and "<dd>平台自检</dd>" in html
