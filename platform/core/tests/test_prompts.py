import pytest

from core.prompts import PromptError, prompt_files, render_messages

pytestmark = pytest.mark.django_db


def test_render_sections_and_variables():
    messages = render_messages("[system]\nYou are $role.\n[user]\nAnalyse: $report ($$5)",
                               {"role": "careful", "report": "x"})
    assert messages == [{"role": "system", "content": "You are careful."},
                        {"role": "user", "content": "Analyse: x ($5)"}]


def test_missing_variable_is_named():
    with pytest.raises(PromptError, match=r"\$report is not provided"):
        render_messages("[user]\n$report", {}, name="finance.risk_judgment")


def test_every_shipped_template_parses_and_is_seeded():
    from core.models import PromptTemplate

    files = prompt_files()
    for pf in files:
        assert PromptTemplate.objects.filter(name=pf.name, version=pf.version, language=pf.language).exists()


def test_versions_are_immutable():
    from core.models import PromptTemplate

    template = PromptTemplate.objects.create(name="core.test", version=1, language="en", body="[user]\nhi")
    template.body = "[user]\nchanged"
    with pytest.raises(ValueError, match="immutable"):
        template.save()
    template.refresh_from_db()
    template.is_enabled = False
    template.save()  # enabling/disabling is allowed


def test_newest_enabled_version_is_used():
    from core.models import PromptTemplate
    from core.selectors import prompt_template_get

    PromptTemplate.objects.create(name="core.t2", version=1, language="en", body="[user]\nv1")
    PromptTemplate.objects.create(name="core.t2", version=2, language="en", body="[user]\nv2")
    assert prompt_template_get(name="core.t2", language="zh-hans").version == 2  # falls back to English
    PromptTemplate.objects.filter(name="core.t2", version=2).update(is_enabled=False)
    assert prompt_template_get(name="core.t2").version == 1
