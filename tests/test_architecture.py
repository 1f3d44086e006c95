"""The layout rules of docs/conventions.md, checked on the source tree so that they stay true.

- Import rules: an app never imports another app; core and config never import an app; the model
  service imports nothing of the platform (it is deployed on its own).
- One shape: every suite app has the same entries (models, services, selectors, decisions, tasks,
  views, forms, admin, api/, templates/<app>/, prompts/, locale/, tests/).
- Thin tasks: a Celery task's body is one ``return`` of a service call.
- Core knows the apps only through the registry: no app name as a string in core's code (config
  keeps the list of installed apps and their settings).
- Small modules: no module past the size limit, so that each holds one responsibility.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
APPS = sorted(p.name for p in (ROOT / "apps").iterdir() if (p / "apps.py").exists())
MAX_MODULE_LINES = 500


def _sources(folder: Path, *, tests: bool = False):
    for path in sorted(folder.rglob("*.py")):
        parts = set(path.relative_to(ROOT).parts)
        if "migrations" in parts or (not tests and "tests" in parts):
            continue
        yield path


def _imports(path: Path) -> list[str]:
    """Every module a file imports, at any depth (function-level imports included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append(node.module)
            found += [f"{node.module}.{alias.name}" for alias in node.names]
    return found


def _violations(folder: Path, forbidden, *, tests: bool = True) -> list[str]:
    out = []
    for path in _sources(folder, tests=tests):
        for name in _imports(path):
            if forbidden(name):
                out.append(f"{path.relative_to(ROOT)} imports {name}")
    return sorted(set(out))


def test_the_apps_are_found():
    assert APPS == ["finance", "manufacturing", "medical"]


@pytest.mark.parametrize("app", APPS)
def test_an_app_never_imports_another_app(app):
    others = tuple(f"apps.{a}" for a in APPS if a != app)
    assert _violations(ROOT / "apps" / app, lambda n: n.startswith(others)) == []


@pytest.mark.parametrize("folder", ["platform/core", "platform/config"])
def test_core_and_config_never_import_an_app(folder):
    assert _violations(ROOT / folder, lambda n: n == "apps" or n.startswith("apps.")) == []


def test_the_model_service_imports_nothing_of_the_platform():
    platform = ("django", "rest_framework", "celery", "config", "core", "apps")
    assert _violations(ROOT / "model_service", lambda n: n.split(".")[0] in platform) == []


SHAPE = ["apps.py", "models.py", "admin.py", "services", "selectors", "decisions.py", "tasks.py", "views.py",
         "forms.py", "urls.py", "api/serializers.py", "api/views.py", "api/urls.py", "templates/{app}",
         "prompts", "locale", "tests"]


@pytest.mark.parametrize("app", APPS)
def test_every_app_has_the_same_shape(app):
    base = ROOT / "apps" / app
    missing = []
    for entry in SHAPE:
        path = base / entry.format(app=app)
        if not (path.exists() or path.with_suffix(".py").exists()):
            missing.append(entry.format(app=app))
    assert missing == [], f"apps/{app} lacks {missing}"


@pytest.mark.parametrize("app", APPS)
def test_tasks_are_thin(app):
    tree = ast.parse((ROOT / "apps" / app / "tasks.py").read_text(encoding="utf-8"))
    fat = []
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef):
            continue
        if not any("shared_task" in ast.unparse(d) for d in node.decorator_list):
            continue
        body = [s for s in node.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
        if len(body) != 1 or not isinstance(body[0], ast.Return) or not isinstance(body[0].value, ast.Call):
            fat.append(node.name)
    assert fat == [], f"apps/{app}/tasks.py: these tasks do more than return a service call: {fat}"


def test_core_names_no_app():
    found = []
    for path in _sources(ROOT / "platform" / "core"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in APPS:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.value!r}")
    assert found == [], "core and config learn the apps from the registry (core.registry), not by name"


def test_no_module_is_past_the_size_limit():
    big = []
    for folder in ("platform", "apps", "model_service"):
        for path in _sources(ROOT / folder):
            lines = path.read_text(encoding="utf-8").count("\n")
            if lines > MAX_MODULE_LINES:
                big.append(f"{path.relative_to(ROOT)}: {lines} lines")
    assert big == [], "split these by sub-domain (docs/conventions.md)"
