"""Issue 14, item 5 and the admin: the dashboard shows each role what needs attention (through the apps'
``attention`` registry hooks), the self-test is for admins only, the three apps share one sub-navigation,
and the admin names the product and lists every app's jobs."""
from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import translation

from core.models import JobStatus
from core.registry import suite_apps

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _needs_review_assessment(owner):
    from apps.finance.models import Assessment

    return Assessment.objects.create(owner=owner, status=JobStatus.NEEDS_REVIEW, needs_review=True,
                                     application_id="ATT-1")


def _draft_study(owner):
    from apps.medical.models import Report, Study

    study = Study.objects.create(owner=owner, status=JobStatus.SUCCEEDED, study_instance_uid="1.2.3.4")
    Report.objects.create(study=study, status=Report.Status.DRAFT)
    return study


def _open_alert():
    from apps.manufacturing.models import Alert, Machine

    machine = Machine.objects.create(machine_id="ATT-M1")
    return Alert.objects.create(machine=machine, level=Alert.Level.CRITICAL)


def test_every_app_declares_an_attention_hook():
    for app in suite_apps():
        assert callable(app.hook("attention")), app.label


def test_dashboard_shows_each_role_only_its_own_attention_items(make_user):
    analyst = make_user("att-analyst", "finance")
    radiologist = make_user("att-rad", "medical")
    engineer = make_user("att-eng", "manufacturing")
    _needs_review_assessment(analyst)
    _draft_study(radiologist)
    _open_alert()

    page = _client(analyst).get("/").content.decode()
    assert 'id="attention"' in page
    assert "Applications waiting for review" in page
    assert f'href="{reverse("finance:review_queue")}"><span class="attention-count">1</span>' in page
    assert "Drafts waiting for signature" not in page and "Unresolved alerts" not in page
    assert 'id="run-diagnostic"' not in page and "Platform self-test" not in page

    page = _client(radiologist).get("/").content.decode()
    assert f'href="{reverse("medical:index")}?status=draft"><span class="attention-count">1</span>' in page
    assert "Applications waiting for review" not in page

    page = _client(engineer).get("/").content.decode()
    assert f'href="{reverse("manufacturing:alerts")}"><span class="attention-count">1</span>' in page


def test_attention_counts_follow_the_data(make_user):
    from core.selectors import attention_for_user

    analyst = make_user("att-analyst2", "finance")

    def count(label):
        [group] = attention_for_user(user=analyst)
        return {item["label"]: item["count"] for item in group["items"]}[label]

    assert count("Applications waiting for review") == 0
    job = _needs_review_assessment(analyst)
    assert count("Applications waiting for review") == 1
    job.final_decision = "approved"
    job.save()
    assert count("Applications waiting for review") == 0
    job.status = JobStatus.FAILED
    job.save()
    assert count("Assessments that failed") == 1


def test_admin_sees_every_app_and_the_self_test(make_user):
    boss = make_user("att-boss", "admin")
    page = _client(boss).get("/").content.decode()
    for label in ("Applications waiting for review", "Drafts waiting for signature", "Unresolved alerts"):
        assert label in page
    assert 'id="run-diagnostic"' in page


def test_attention_is_translated(make_user):
    analyst = make_user("att-zh", "finance")
    client = _client(analyst)
    page = client.get("/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    with translation.override("zh-hans"):
        from django.utils.translation import gettext

        for text in ("Needs your attention", "Applications waiting for review", "Assessments that failed"):
            assert gettext(text) != text, text
            assert gettext(text) in page


@pytest.mark.parametrize("url_name, current", [("finance:review_queue", "Review queue"),
                                               ("manufacturing:alerts", "Alerts"),
                                               ("medical:upload", "Upload DICOM")])
def test_one_sub_navigation_style_for_the_three_apps(make_user, url_name, current):
    boss = make_user("att-nav", "admin")
    page = _client(boss).get(reverse(url_name)).content.decode()
    assert page.count('<nav class="subnav"') == 1
    assert 'class="subnav tiles"' not in page and '<nav class="filters"' not in page
    assert f'href="{reverse(url_name)}" id="nav-{url_name.split(":")[1].replace("_", "-")}" ' \
           f'aria-current="page">{current}</a>' in page


def test_admin_header_names_the_product_in_both_languages(make_user):
    from django.contrib.auth.models import User

    User.objects.create_superuser("att-super", password="pw-Test-12345")
    client = Client()
    client.login(username="att-super", password="pw-Test-12345")
    page = client.get("/admin/").content.decode()
    assert "Industry AI suite administration" in page and "Django administration" not in page
    page = client.get("/admin/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "Django 管理" not in page
    with translation.override("zh-hans"):
        from django.utils.translation import gettext

        assert gettext("Industry AI suite administration") in page
    # every suite app has its section, and the jobs list is on the index
    page = client.get("/admin/").content.decode()
    for app in suite_apps():
        assert f'class="app-{app.label} module' in page, app.label
    assert 'href="/admin/core/job/"' in page


def test_admin_job_list_shows_every_apps_jobs(make_user):
    from django.contrib.auth.models import User

    from apps.manufacturing.models import Prediction, TrainingRun

    owner = make_user("att-owner", "finance")
    assessment = _needs_review_assessment(owner)
    study = _draft_study(owner)
    failed = Prediction.objects.create(owner=owner, status=JobStatus.FAILED, error_message="sensor gap",
                                       machine=_open_alert().machine)
    User.objects.create_superuser("att-super2", password="pw-Test-12345")
    client = Client()
    client.login(username="att-super2", password="pw-Test-12345")

    response = client.get("/admin/core/job/")
    assert response.status_code == 200
    page = response.content.decode()
    for job in (assessment, study, failed):
        assert f'data-job-id="{job.pk}"' in page
        assert reverse(f"admin:{job._meta.app_label}_{job._meta.model_name}_change", args=[job.pk]) in page
    assert "sensor gap" in page

    page = client.get("/admin/core/job/", {"status": "failed"}).content.decode()
    assert f'data-job-id="{failed.pk}"' in page and f'data-job-id="{assessment.pk}"' not in page
    page = client.get("/admin/core/job/", {"type": TrainingRun.job_type}).content.decode()
    assert f'data-job-id="{failed.pk}"' not in page

    # staff without view permissions see no jobs; anonymous users are sent to the login
    assert Client().get("/admin/core/job/").status_code == 302
