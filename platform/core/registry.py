"""The registry: which suite apps exist and what core needs from each, and every concrete Job model.

Core never names an app. A vertical app's ``AppConfig`` mixes in :class:`SuiteApp` and declares its
role, navigation entry, batch task, prompts folder, Celery queue and demo hooks; core asks
:func:`suite_apps` (INSTALLED_APPS order) and the helpers below. Apps import core, never the reverse.

Apps also register their job models in ``AppConfig.ready()``; the sweeper, the dashboard,
``/api/v1/jobs/`` and batch progress find them with :func:`job_models` / :func:`job_model`.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from django.apps import apps as django_apps
from django.core import checks
from django.utils.module_loading import import_string

if TYPE_CHECKING:
    from django.utils.functional import Promise

    from core.models import Job


# --- suite apps ------------------------------------------------------------------------------------
class SuiteApp:
    """What core needs from a vertical app, declared on its AppConfig: ``class X(SuiteApp, AppConfig)``.

    A mixin rather than an ``AppConfig`` subclass on purpose: Django picks an app's config on its own
    only when ``apps.py`` holds exactly one ``AppConfig`` subclass, and an imported base would count.
    """

    # provided by AppConfig
    label: str
    path: str

    role: ClassVar[str]
    """The role (Django group) whose users may use the app."""
    nav: ClassVar[tuple[str | Promise, str]]
    """The navigation entry: (label, lazily translated; URL name of the app's start page)."""
    batch_task: ClassVar[str]
    """The Celery task name that parses one of the app's batches (it takes the batch id)."""
    prompts_dir: ClassVar[str] = "prompts"
    """The folder of the app's prompt templates, relative to the app's package."""
    celery_queue: ClassVar[str]
    """The queue the app's tasks (every task named ``<label>.*``) are routed to."""
    demo_user: ClassVar[str]
    """The username of the demo user that ``setup_demo`` creates with the app's role."""
    demo_seed: ClassVar[str | None] = None
    """Dotted path of ``demo_seed(*, owner, stdout)``: default model plus one worked example."""
    demo_models: ClassVar[str | None] = None
    """Dotted path of ``demo_models(*, stdout)``: the default model only (``setup_demo --no-examples``)."""
    artifacts_resign: ClassVar[str | None] = None
    """Dotted path of ``artifacts_resign() -> {"resigned", "current", "refused": [labels]}``: writes the
    app's stored model artifacts anew with the current SECRET_KEY (``manage.py resign_model_artifacts``)."""
    prompt_evaluate: ClassVar[str | None] = None
    """Dotted path of ``prompt_evaluate(*, template, version, language, limit=None) -> dict``: runs one
    template version (short name, e.g. ``risk_judgment``) on the app's labelled set kept in the repo
    through the real model service and answers ``{"n", "metrics": {name: float}, "primary",
    "higher_is_better", "failures": [{"item", "problem"}]}`` (``manage.py evaluate_prompts``); it
    raises ``LookupError`` for a template it has no labelled set for."""
    attention: ClassVar[str | None] = None
    """Dotted path of ``attention(*, user) -> list[{"label", "count", "url"}]``: what in the app waits for
    this user (reviews, signatures, alerts, failures), label translated, url of the list to open; the
    dashboard shows it to users with the app's role."""

    urls: ClassVar[str] = "urls"
    """The app's page URLs (module relative to the app's package), served under ``/<label>/``."""
    api_urls: ClassVar[str] = "api.urls"
    """The app's REST URLs (module relative to the app's package), served under ``/api/v1/<label>/``."""
    root_urls: ClassVar[tuple[tuple[str, str], ...]] = ()
    """Other URL modules at a fixed prefix, as (prefix, module relative to the app's package)."""

    REQUIRED: ClassVar[tuple[str, ...]] = ("role", "nav", "batch_task", "prompts_dir", "celery_queue",
                                           "demo_user")

    @property
    def prompts_path(self) -> Path:
        return Path(self.path) / self.prompts_dir

    HOOKS: ClassVar[tuple[str, ...]] = ("demo_seed", "demo_models", "artifacts_resign", "prompt_evaluate",
                                        "attention")

    def hook(self, name: str) -> Callable[..., Any] | None:
        """The callable behind one of :attr:`HOOKS`; None where the app declares none."""
        if name not in self.HOOKS:
            raise ValueError(f"unknown hook {name!r}")
        dotted = getattr(self, name)
        return import_string(dotted) if dotted else None

    def suite_problems(self) -> list[str]:
        """What is missing or malformed in the declaration (empty when it is complete)."""
        problems = [f"{attr} is not declared" for attr in self.REQUIRED if not getattr(self, attr, None)]
        nav = getattr(self, "nav", None)
        if nav and not (isinstance(nav, tuple) and len(nav) == 2 and nav[0] and isinstance(nav[1], str)):
            problems.append("nav must be a (label, url name) pair")
        return problems


def suite_apps() -> list[SuiteApp]:
    """The installed suite apps, in INSTALLED_APPS order."""
    return [cfg for cfg in django_apps.get_app_configs() if isinstance(cfg, SuiteApp)]


def suite_app(label: str) -> SuiteApp:
    for cfg in suite_apps():
        if cfg.label == label:
            return cfg
    raise LookupError(f"no suite app labelled {label!r}")


def suite_urlpatterns(*, api: bool = False) -> list:
    """URL patterns of every suite app: its pages (and extra root URLs), or its REST API (``api=True``)."""
    from django.urls import include, path

    patterns = []
    for cfg in suite_apps():
        if api:
            patterns.append(path(f"{cfg.label}/", include(f"{cfg.name}.{cfg.api_urls}")))
            continue
        patterns += [path(prefix, include(f"{cfg.name}.{module}")) for prefix, module in cfg.root_urls]
        patterns.append(path(f"{cfg.label}/", include(f"{cfg.name}.{cfg.urls}")))
    return patterns


def app_roles() -> tuple[str, ...]:
    """The roles of the suite apps, in INSTALLED_APPS order (``admin`` is added by core.roles)."""
    return tuple(cfg.role for cfg in suite_apps())


def batch_task_name(app_label: str) -> str:
    """The Celery task that parses a batch of the app ``app_label``; LookupError for an unknown app."""
    return suite_app(app_label).batch_task


def task_route(name: str, args=None, kwargs=None, options=None, task=None, **kw) -> dict | None:
    """Celery router (``CELERY_TASK_ROUTES``): a task named ``<app label>.*`` goes to that app's queue."""
    prefix = name.split(".", 1)[0]
    for cfg in suite_apps():
        if cfg.label == prefix:
            return {"queue": cfg.celery_queue}
    return None


@checks.register()
def suite_apps_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """``manage.py check``: every suite app declares what core needs; roles unique; queues served."""
    from django.conf import settings

    errors: list[checks.CheckMessage] = []
    served = set(getattr(settings, "CELERY_QUEUES_ALL", ()))
    seen_roles: dict[str, str] = {}
    for cfg in suite_apps():
        for problem in cfg.suite_problems():
            errors.append(checks.Error(f"suite app {cfg.label!r}: {problem}", obj=cfg, id="core.E101"))
        role = getattr(cfg, "role", None)
        if role and role in seen_roles:
            errors.append(checks.Error(f"suite apps {seen_roles[role]!r} and {cfg.label!r} "
                                       f"share the role {role!r}",
                                       obj=cfg, id="core.E102"))
        elif role:
            seen_roles[role] = cfg.label
        queue = getattr(cfg, "celery_queue", None)
        if queue and queue not in served:
            errors.append(checks.Error(f"suite app {cfg.label!r}: queue {queue!r} "
                                       "is not in CELERY_QUEUES_ALL",
                                       hint="no worker would serve it", obj=cfg, id="core.E103"))
    return errors


# --- job models ------------------------------------------------------------------------------------
_JOB_MODELS: dict[str, type[Job]] = {}


def register_job_model(model: type[Job]) -> type[Job]:
    if not model.job_type or not model.task_name or not model.role:
        raise ValueError(f"{model.__name__} must set job_type, task_name and role")
    _JOB_MODELS[model.job_type] = model
    return model


def job_models() -> dict[str, type[Job]]:
    return dict(_JOB_MODELS)


def job_model(job_type: str) -> type[Job]:
    try:
        return _JOB_MODELS[job_type]
    except KeyError:
        raise LookupError(f"unknown job type {job_type!r}") from None
