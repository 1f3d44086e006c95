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


def test_the_shipped_sampling_is_seeded_with_its_version():
    from core.models import PromptTemplate

    for pf in prompt_files():
        row = PromptTemplate.objects.get(name=pf.name, version=pf.version, language=pf.language)
        assert row.sampling == pf.sampling
    assert any(pf.sampling for pf in prompt_files()), "no shipped version sets its first try's sampling"


def test_a_versions_sampling_is_checked_and_immutable(tmp_path):
    from django.core.exceptions import ValidationError

    from core.models import PromptTemplate
    from core.prompts import sampling_problems

    assert sampling_problems({"repetition_penalty": 1.2, "min_p": 0.05}) == []
    assert sampling_problems({"temperature": 0.7}) == [
        "'temperature' is not one of repetition_penalty, frequency_penalty, presence_penalty, min_p"]
    assert sampling_problems({"repetition_penalty": 5}) == [
        "repetition_penalty must be between 0.5 and 2.0, got 5"]
    assert sampling_problems({"min_p": "high"}) == ["min_p must be a number, got 'high'"]
    assert sampling_problems([1.2]) == ["expected an object, got list"]

    folder = tmp_path / "apps" / "finance" / "prompts" / "risk_judgment"
    folder.mkdir(parents=True)
    (folder / "v1.en.txt").write_text("[user]\n$report", encoding="utf-8")
    (folder / "v1.meta.json").write_text('{"sampling": {"repetition_penalty": 9}}', encoding="utf-8")
    with pytest.raises(PromptError, match=r"v1\.meta\.json: \"sampling\": repetition_penalty must be"):
        prompt_files(tmp_path / "apps")

    template = PromptTemplate(name="core.s", version=1, language="en", body="[user]\nhi",
                              sampling={"repetition_penalty": 3})
    with pytest.raises(ValidationError, match="between 0.5 and 2.0"):
        template.full_clean()
    template.sampling = {"repetition_penalty": 1.2}
    template.full_clean()
    template.save()
    template.sampling = {"repetition_penalty": 1.3}
    with pytest.raises(ValueError, match="immutable"):
        template.save()
