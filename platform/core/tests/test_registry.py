"""The app registry is the one place core learns which apps exist: roles, navigation, prompt folders,
batch tasks, queues and demo hooks all come from the suite apps' AppConfigs."""
from __future__ import annotations

import types

import pytest
from django.apps import AppConfig
from django.apps import apps as django_apps
from django.conf import settings
from django.test import RequestFactory
from django.urls import reverse

from core import registry
from core.registry import SuiteApp

pytestmark = pytest.mark.django_db


def test_every_suite_app_declares_what_core_needs():
    apps = registry.suite_apps()
    assert [app.name for app in apps] == list(settings.SUITE_APPS)  # INSTALLED_APPS order
    for app in apps:
        assert isinstance(app, AppConfig)
        assert app.suite_problems() == [], app.label
        for attr in SuiteApp.REQUIRED:
            assert attr in type(app).__dict__, f"{app.label} does not declare {attr} itself"
        label, url_name = app.nav
        assert str(label) and reverse(url_name)
        assert app.prompts_path.is_dir(), app.prompts_path
        assert app.celery_queue in settings.CELERY_QUEUES_ALL
        assert callable(app.hook("demo_seed"))
        assert app.demo_models is None or callable(app.hook("demo_models"))
    assert len({app.role for app in apps}) == len(apps)
    assert registry.suite_apps_check() == []


def test_roles_come_from_the_registry():
    from core import roles

    app_roles = tuple(app.role for app in registry.suite_apps())
    assert app_roles == ("finance", "medical", "manufacturing")
    assert roles.app_roles() == app_roles == roles.APP_ROLES
    assert roles.all_roles() == (*app_roles, "admin") == roles.ROLES


def test_navigation_comes_from_the_registry(make_user):
    from django.contrib.auth.models import User

    from core.context_processors import navigation

    request = RequestFactory().get("/")
    request.user = User.objects.create_superuser("boss", password="pw-Test-12345")
    items = navigation(request)["nav_items"]
    assert [item["role"] for item in items] == [app.role for app in registry.suite_apps()]
    assert [item["url"] for item in items] == [reverse(app.nav[1]) for app in registry.suite_apps()]
    request.user = make_user("fin", "finance")
    assert [item["role"] for item in navigation(request)["nav_items"]] == ["finance"]


def test_prompt_folders_come_from_the_registry():
    from core.prompts import prompt_files

    by_app: dict[str, set[str]] = {}
    for pf in prompt_files():
        label, _, template = pf.name.partition(".")
        by_app.setdefault(label, set()).add(template)
    for app in registry.suite_apps():
        shipped = {p.name for p in app.prompts_path.iterdir() if p.is_dir()}
        assert by_app.get(app.label, set()) == shipped, app.label
    assert set(by_app) <= {app.label for app in registry.suite_apps()}


def test_batch_tasks_and_queues_come_from_the_registry():
    from config.celery_app import app as celery_app

    celery_app.loader.import_default_modules()
    for app in registry.suite_apps():
        task_name = registry.batch_task_name(app.label)
        assert task_name == app.batch_task and task_name in celery_app.tasks
        assert celery_app.amqp.router.route({}, task_name)["queue"].name == app.celery_queue
    assert celery_app.amqp.router.route({}, "core.jobs_sweep")["queue"].name == "maintenance"
    assert celery_app.amqp.router.route({}, "core.diagnostic_run")["queue"].name == "default"
    with pytest.raises(LookupError):
        registry.batch_task_name("nope")
    with pytest.raises(LookupError):
        registry.suite_app("nope")


def test_setup_demo_users_come_from_the_registry():
    from core.management.commands.setup_demo import demo_users

    assert demo_users() == [("admin", ["admin"], True), ("analyst", ["finance"], False),
                            ("radiologist", ["medical"], False), ("engineer", ["manufacturing"], False)]


# --- a new app is picked up without touching core ---------------------------------------------------
def fake_demo_seed(*, owner, stdout) -> None:
    stdout.write("seeded")


class FakeSuiteConfig(SuiteApp, AppConfig):
    name = "fake_suite"
    label = "fakesuite"
    role = "fakesuite"
    nav = ("Fake suite", "core:help")
    batch_task = "fakesuite.batch_ingest"
    prompts_dir = "prompt_files"
    celery_queue = "fakesuite"
    demo_user = "faker"
    demo_seed = f"{__name__}.fake_demo_seed"


@pytest.fixture
def fake_app(tmp_path, monkeypatch):
    folder = tmp_path / "prompt_files" / "greeting"
    folder.mkdir(parents=True)
    (folder / "v1.en.txt").write_text("[system]\nBe brief.\n[user]\nSay hello to $name.\n", encoding="utf-8")
    module = types.ModuleType("fake_suite")
    module.__path__ = [str(tmp_path)]
    config = FakeSuiteConfig("fake_suite", module)
    real = django_apps.get_app_configs
    monkeypatch.setattr(django_apps, "get_app_configs", lambda: [*real(), config])
    return config


def test_a_new_suite_app_is_picked_up(fake_app, settings):
    from django.contrib.auth.models import User

    from core import roles
    from core.context_processors import navigation
    from core.management.commands.setup_demo import demo_users
    from core.prompts import prompt_files

    assert registry.suite_apps()[-1] is fake_app and registry.suite_app("fakesuite") is fake_app
    assert roles.app_roles()[-1] == "fakesuite" and "fakesuite" in roles.all_roles()
    assert registry.batch_task_name("fakesuite") == "fakesuite.batch_ingest"
    assert registry.task_route("fakesuite.batch_ingest") == {"queue": "fakesuite"}
    assert registry.task_route("elsewhere.task") is None
    assert ("faker", ["fakesuite"], False) in demo_users()
    assert fake_app.hook("demo_seed") is fake_demo_seed and fake_app.hook("demo_models") is None

    greeting = [pf for pf in prompt_files() if pf.name == "fakesuite.greeting"]
    assert [(pf.version, pf.language) for pf in greeting] == [(1, "en")]

    request = RequestFactory().get("/")
    request.user = User.objects.create_superuser("boss", password="pw-Test-12345")
    nav = navigation(request)["nav_items"]
    assert nav[-1] == {"role": "fakesuite", "label": "Fake suite", "url": reverse("core:help")}

    # the fake's queue has no worker (not in CELERY_QUEUES_ALL): manage.py check says so
    assert [e.id for e in registry.suite_apps_check()] == ["core.E103"]
    settings.CELERY_QUEUES_ALL = (*settings.CELERY_QUEUES_ALL, "fakesuite")
    assert registry.suite_apps_check() == []


def test_an_incomplete_suite_app_fails_the_check(fake_app, monkeypatch, settings):
    settings.CELERY_QUEUES_ALL = (*settings.CELERY_QUEUES_ALL, "fakesuite")
    monkeypatch.setattr(FakeSuiteConfig, "batch_task", "")
    monkeypatch.setattr(FakeSuiteConfig, "role", "finance")
    messages = [(e.id, e.msg) for e in registry.suite_apps_check()]
    assert ("core.E101", "suite app 'fakesuite': batch_task is not declared") in messages
    assert ("core.E102", "suite apps 'finance' and 'fakesuite' share the role 'finance'") in messages


def test_every_suite_app_s_pages_and_api_are_routed_from_the_registry():
    from django.urls import resolve

    for cfg in registry.suite_apps():
        assert resolve(reverse(f"{cfg.label}:index")).namespace == cfg.label
        assert any(str(p.pattern) == f"{cfg.label}/" for p in registry.suite_urlpatterns(api=True))
    assert resolve("/dicomweb/studies").url_name  # an app's extra root URLs (medical's STOW-RS)
