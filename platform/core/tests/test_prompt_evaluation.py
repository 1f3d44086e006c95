"""Measured prompt quality: evaluations stored per version, activation only on measured figures.

The app's evaluator is replaced here by a function of this module (declared through the registry hook,
as an app declares its own): these tests are about core's bookkeeping, not about what an app measures.
The apps' own evaluators are tested in their apps against the real model service.
"""
from io import StringIO

import pytest
from django.core.management import call_command

from core import services
from core.errors import ConflictError
from core.models import AuditEvent, PromptEvaluation, PromptTemplate
from core.registry import suite_apps
from core.selectors import prompt_template_get

pytestmark = pytest.mark.django_db

SCORES = {1: 0.70, 2: 0.80, 3: 0.50}
CALLS: list[dict] = []


def fake_evaluate(*, template, version, language, limit=None):
    CALLS.append({"template": template, "version": version, "language": language, "limit": limit})
    if template != "evaltest":
        raise LookupError(template)
    return {"n": 12, "metrics": {"accuracy": SCORES[version], "coverage": 1.0}, "primary": "accuracy",
            "higher_is_better": True, "model": "tiny", "failures": [{"item": "r3", "problem": "wrong age"}]}


@pytest.fixture
def app_label(monkeypatch):
    app = suite_apps()[0]
    monkeypatch.setattr(type(app), "prompt_evaluate", f"{__name__}.fake_evaluate")
    CALLS.clear()
    for version in (1, 2, 3):
        PromptTemplate.objects.create(name=f"{app.label}.evaltest", version=version, language="en",
                                      body=f"[user]\nv{version}", is_enabled=version == 1)
    return app.label


def test_run_stores_the_figures(app_label):
    ev = services.prompt_evaluation_run(name=f"{app_label}.evaltest", version=2, language="en", limit=5)
    assert CALLS == [{"template": "evaltest", "version": 2, "language": "en", "limit": 5}]
    ev.refresh_from_db()
    assert (ev.n, ev.primary, ev.primary_value, ev.model) == (12, "accuracy", 0.80, "tiny")
    assert ev.metrics == {"accuracy": 0.80, "coverage": 1.0}
    assert ev.failures == [{"item": "r3", "problem": "wrong age"}]


def test_a_template_without_labelled_set_is_said_so(app_label):
    PromptTemplate.objects.create(name=f"{app_label}.other", version=1, language="en", body="[user]\nx")
    with pytest.raises(services.NoLabelledSet):
        services.prompt_evaluation_run(name=f"{app_label}.other", version=1, language="en")
    assert not PromptEvaluation.objects.exists()


def test_activation_needs_figures_for_both_versions(app_label):
    name = f"{app_label}.evaltest"
    with pytest.raises(ConflictError, match="has not been evaluated"):
        services.prompt_template_activate(name=name, version=2)
    services.prompt_evaluation_run(name=name, version=2, language="en")
    with pytest.raises(ConflictError, match="active v1 has not been evaluated"):
        services.prompt_template_activate(name=name, version=2)
    assert prompt_template_get(name=name).version == 1


def test_better_version_is_activated_worse_is_refused(app_label):
    name = f"{app_label}.evaltest"
    for version in (1, 2, 3):
        services.prompt_evaluation_run(name=name, version=version, language="en")
    with pytest.raises(ConflictError, match="accuracy: v3 0.500 against v1 0.700"):
        services.prompt_template_activate(name=name, version=3)
    result = services.prompt_template_activate(name=name, version=2)
    assert result["forced"] is False
    assert prompt_template_get(name=name).version == 2
    # Going back to v1 (a rollback) disables the newer versions; v1 measured worse than v2, so it is forced.
    services.prompt_template_activate(name=name, version=1, force=True)
    assert prompt_template_get(name=name).version == 1
    enabled = PromptTemplate.objects.filter(name=name, is_enabled=True).values_list("version", flat=True)
    assert list(enabled) == [1]
    forced = AuditEvent.objects.filter(action="prompt_activate").order_by("-created_at").first()
    assert forced.detail["forced"] is True and forced.object_id == f"{name} v1"


def test_command_prints_figures_and_comparison(app_label):
    out = StringIO()
    call_command("evaluate_prompts", "--app", app_label, "--limit", "3", "--activate", stdout=out)
    text = out.getvalue()
    assert f"{app_label}.evaltest" in text and "accuracy=0.800" in text
    assert f"{app_label}.evaltest v2 (en) against the active v1: accuracy: v2 0.800 against v1 0.700" in text
    # The newest (v3) measured worse than the active v1: not activated.
    assert f"{app_label}.evaltest v3 not activated" in text
    assert prompt_template_get(name=f"{app_label}.evaltest").version == 1
    assert {c["limit"] for c in CALLS} == {3}


def test_prompts_page_for_administrators_only(app_label, client, make_user):
    name = f"{app_label}.evaltest"
    for version in (1, 2):
        services.prompt_evaluation_run(name=name, version=version, language="en")
    client.force_login(make_user("plain", app_label))
    assert client.get("/prompts/").status_code == 403
    client.force_login(make_user("boss", "admin"))
    page = client.get("/prompts/")
    assert page.status_code == 200
    body = page.content.decode()
    assert name in body and "0.800" in body and "candidate (disabled)" in body
    # A version with first-try repetition controls says so (finance's shipped risk judgment v2 has some).
    assert "First try: frequency_penalty 0.3, repetition_penalty 1.2" in body
    response = client.post("/prompts/", {"name": name, "version": "3"}, follow=True)
    assert "was not activated" in response.content.decode()
    client.post("/prompts/", {"name": name, "version": "2"})
    assert prompt_template_get(name=name).version == 2
    client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/"})
    assert "提示词模板" in client.get("/prompts/").content.decode()


def test_a_version_written_in_the_admin_starts_as_a_candidate(client, make_user):
    admin = make_user("root", "admin")
    admin.is_staff = admin.is_superuser = True
    admin.save()
    client.force_login(admin)
    response = client.post("/admin/core/prompttemplate/add/", {
        "name": "core.admin_made", "version": "1", "language": "en", "body": "[user]\nhello",
        "output_schema": "null", "description": "",
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    row = PromptTemplate.objects.get(name="core.admin_made")
    assert row.is_enabled is False and row.source == "admin"
