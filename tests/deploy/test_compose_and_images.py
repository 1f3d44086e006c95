"""deploy/: the compose file and the Dockerfiles hang together, without a Docker engine.

No Docker engine runs where this suite runs, so the images are not built here. What can be checked
without one is checked: every service builds or pulls an image that exists, workers serve every
Celery queue, the environment names in the compose file are the ones the settings read, model
routing names real prompt templates and real services, the model service accepts its command line,
the web image's build-time commands run under production settings, and ``check --deploy`` is clean
with the compose file's environment.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def _services(compose) -> dict:
    return compose["services"]


def _dockerfile(service: dict) -> Path:
    build = service["build"]
    return (DEPLOY / build.get("context", ".") / build["dockerfile"]).resolve()


def _from_images(dockerfile: Path) -> list[str]:
    return re.findall(r"^FROM\s+(\S+)", dockerfile.read_text(), flags=re.MULTILINE)


def _substitute(value: str) -> str:
    """Compose's ${VAR:?msg} / ${VAR:-default} / ${VAR} with stand-in values for required ones."""
    def repl(m: re.Match) -> str:
        name, op, rest = m.group(1), m.group(2) or "", m.group(3) or ""
        if op == ":-":
            return rest
        return secrets.token_urlsafe(48) if name == "SECRET_KEY" else f"test-{name.lower()}"
    return re.sub(r"\$\{(\w+)(:[-?])?([^}]*)\}", repl, str(value))


def test_every_service_builds_or_pulls_an_image_that_exists(compose):
    services = _services(compose)
    built = {svc["image"]: name for name, svc in services.items() if "build" in svc and "image" in svc}
    for name, svc in services.items():
        assert "image" in svc or "build" in svc, f"{name}: neither image nor build"
        if "build" not in svc:
            assert not svc["image"].startswith("suite-"), f"{name}: uses {svc['image']} but does not build it"
            continue
        dockerfile = _dockerfile(svc)
        assert dockerfile.is_file(), f"{name}: {dockerfile} missing"
        assert (DEPLOY / svc["build"]["context"]).resolve() == ROOT, (
            f"{name}: build context is not the repository")
        for base in _from_images(dockerfile):
            if base.startswith("suite-"):
                # FROM one of our own images: compose must build that one first and hand it over.
                contexts = svc["build"].get("additional_contexts") or {}
                assert contexts.get(base, "").startswith("service:"), (
                    f"{name}: FROM {base} without additional_contexts")
                provider = contexts[base].split(":", 1)[1]
                assert services[provider].get("image") == base and "build" in services[provider], (name, base)
    assert {"suite-web", "suite-worker", "suite-beat", "suite-model"} <= set(built)


def test_dockerfile_copies_exist_and_the_context_keeps_state_out():
    for dockerfile in DEPLOY.glob("Dockerfile.*"):
        for line in dockerfile.read_text().splitlines():
            if line.startswith("COPY ") and "--from" not in line:
                sources = shlex.split(line)[1:-1]
                for src in sources:
                    assert src == "." or (ROOT / src).exists(), (
                        f"{dockerfile.name}: COPY {src} does not exist")
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    # the dev database, uploaded reports and DICOM files, the dev secret key, virtualenvs, history
    assert {".git", ".venv", "var", ".env"} <= ignored


def test_workers_serve_every_queue_and_one_beat_runs(compose):
    from django.conf import settings

    services = _services(compose)
    served: set[str] = set()
    for svc in services.values():
        if svc.get("image") == "suite-worker":
            served |= set(svc["environment"]["QUEUES"].split(","))
    assert served == set(settings.CELERY_QUEUES_ALL), (
        f"queues nobody serves: {set(settings.CELERY_QUEUES_ALL) - served}")
    assert [n for n, s in services.items() if s.get("image") == "suite-beat"] == ["beat"]
    worker_cmd = (DEPLOY / "Dockerfile.worker").read_text()
    assert "-Q $QUEUES" in worker_cmd and "--prefetch-multiplier 1" in worker_cmd


def test_app_environment_names_are_the_ones_the_settings_read(compose):
    source = "".join(p.read_text() for p in (ROOT / "platform" / "config").glob("*.py"))
    read = (set(re.findall(r"""env_\w+\(\s*["'](\w+)["']""", source))
            | set(re.findall(r"""environ(?:\.get)?\(\s*["'](\w+)["']""", source)))
    app_env = compose["x-app-env"]
    unknown = sorted(name for name in app_env if name not in read)
    assert not unknown, f"compose sets variables the settings never read: {unknown}"
    model_source = "".join(p.read_text() for p in (ROOT / "model_service").glob("*.py"))
    for name in ("model", "model-edge"):
        for var in _services(compose)[name]["environment"]:
            assert f'"{var}"' in model_source, f"{name}: the model service never reads {var}"


def test_model_routes_name_real_templates_and_services(compose):
    services = _services(compose)
    routes = json.loads(compose["x-app-env"]["MODEL_SERVICE_ROUTES"])
    templates = {f"{app.name}.{t.name}" for app in (ROOT / "apps").iterdir() if (app / "prompts").is_dir()
                 for t in (app / "prompts").iterdir()}
    for prefix, url in routes.items():
        assert any(t.startswith(prefix) for t in templates), f"route {prefix!r} matches no prompt template"
        host = re.match(r"https?://([^:/]+)", url).group(1)
        assert host in services, f"route {prefix!r} points at {host!r}, not a compose service"
    default_host = re.match(r"https?://([^:/]+)", compose["x-app-env"]["MODEL_SERVICE_URL"]).group(1)
    assert default_host in services
    # one shared response cache for every model endpoint
    caches = {services[n]["environment"]["REDIS_URL"] for n in ("model", "model-edge")}
    assert len(caches) == 1


def test_model_service_accepts_its_container_command_line(compose):
    from model_service.cli import build_parser

    text = (DEPLOY / "Dockerfile.model").read_text()
    entrypoint = json.loads(re.search(r"^ENTRYPOINT\s+(\[.*\])", text, flags=re.MULTILINE).group(1))
    assert entrypoint[:3] == ["python", "-m", "model_service"]
    for name in ("model", "model-edge"):
        args = entrypoint[3:] + list(_services(compose)[name].get("command") or [])
        parsed = build_parser().parse_args(args)
        assert parsed.host == "0.0.0.0" and parsed.port == 8080


def _env_lines(dockerfile: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for m in re.finditer(r"^ENV\s+(.+)$", dockerfile.read_text(), flags=re.MULTILINE):
        for pair in shlex.split(m.group(1)):
            key, _, value = pair.partition("=")
            env[key] = value
    return env


def _clean_env(tmp_path: Path) -> dict[str, str]:
    """The process environment without this suite's settings (no DATABASE_URL, REDIS_URL, VAR_DIR...)."""
    keep = {"PATH", "HOME", "LANG", "LC_ALL", "SYSTEMROOT", "TMPDIR"}
    env = {k: v for k, v in os.environ.items() if k in keep}
    env["VAR_DIR"] = str(tmp_path / "var")
    return env


def test_web_image_build_steps_run_under_production_settings(tmp_path):
    """The manage.py steps of Dockerfile.web's RUN lines, with its ENV and exported variables, exit 0."""
    dockerfile = DEPLOY / "Dockerfile.web"
    text = dockerfile.read_text().replace("\\\n", " ")
    image_env = _env_lines(dockerfile)
    assert image_env["DJANGO_ENV"] == "production"
    exported: dict[str, str] = {}
    steps = 0
    for line in re.findall(r"^RUN\s+(.+)$", text, flags=re.MULTILINE):
        for part in (p.strip() for p in line.split("&&")):
            words = shlex.split(part)
            if words[:1] == ["export"]:  # `export A=1 B=2` holds for the rest of this RUN
                exported.update(w.split("=", 1) for w in words[1:])
                continue
            if "manage.py" not in part:
                continue
            inline = {}
            while "=" in words[0] and not words[0].startswith("-"):
                key, _, value = words.pop(0).partition("=")
                inline[key] = value
            assert words[:2] == ["python", "manage.py"], part
            env = {**_clean_env(tmp_path), **image_env, **exported, **inline,
                   "VAR_DIR": str(tmp_path / "var")}
            proc = subprocess.run([sys.executable, *words[1:]], cwd=ROOT, env=env, capture_output=True,
                                  text=True, timeout=300, check=False)
            assert proc.returncode == 0, f"{part}\n{proc.stderr[-3000:]}"
            steps += 1
        exported.clear()
    assert steps >= 2  # compilemessages_py and collectstatic
    assert (tmp_path / "var" / "static" / "admin").is_dir()  # collectstatic ran into VAR_DIR
    assert not (tmp_path / "var" / "redis").exists()  # no embedded Redis was started during the build


def test_check_deploy_is_clean_with_the_compose_environment(compose, tmp_path):
    env = {**_clean_env(tmp_path), **{k: _substitute(v) for k, v in compose["x-app-env"].items()}}
    proc = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "no issues" in proc.stdout
