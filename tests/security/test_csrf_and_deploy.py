"""CSRF on every HTML form endpoint, and ``manage.py check --deploy`` clean under production settings."""
import os
import subprocess
import sys

import pytest
from django.test import Client

from conftest import ROOT

from .test_access_matrix import _concrete, _walk

pytestmark = pytest.mark.django_db

APPS = ("finance", "medical", "manufacturing")


def html_post_urls():
    """Every non-API page of the three apps (path converters filled), plus login and language switch."""
    from django.urls import get_resolver

    urls = set()
    for route, _pattern in _walk(get_resolver().url_patterns):
        path = _concrete(route)
        if path.startswith(tuple(f"/{app}/" for app in APPS)):
            urls.add(path)
    return sorted(urls) + ["/accounts/login/", "/i18n/setlang/"]


def test_every_form_post_without_csrf_token_is_refused(make_user):
    urls = html_post_urls()
    assert len(urls) > 10, urls
    admin = make_user("csrf_admin", "admin")
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin)
    failures = []
    for path in urls:
        response = client.post(path, {"x": "1", "language": "zh-hans", "username": "a", "password": "b"})
        if response.status_code != 403:
            failures.append(f"POST {path} -> {response.status_code} (expected 403)")
    assert not failures, "\n".join(failures)


def test_form_post_with_csrf_token_gets_past_the_check(make_user):
    """The 403s above are the CSRF check, not something else: with the token the same POSTs are let in."""
    admin = make_user("csrf_admin2", "admin")
    client = Client(enforce_csrf_checks=True)
    assert client.get("/accounts/login/").status_code == 200  # sets the csrftoken cookie
    token = client.cookies["csrftoken"].value
    wrong = client.post("/accounts/login/", {"username": "csrf_admin2", "password": "wrong",
                                             "csrfmiddlewaretoken": token})
    assert wrong.status_code == 200, wrong.status_code  # the form answers (bad credentials), not the CSRF 403
    client.force_login(admin)
    token = client.cookies["csrftoken"].value
    response = client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/"}, HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 302, response.status_code


def test_check_deploy_is_clean_under_production_settings(tmp_path):
    env = dict(os.environ, DJANGO_ENV="production",
               SECRET_KEY="k" * 20 + "Zq8#pL2!vX9@mN4$rT6%wY1^bH3&jF5*" + "s" * 12,
               ALLOWED_HOSTS="suite.example", DEBUG="false", VAR_DIR=str(tmp_path),
               MEDICAL_DEID_SALT="salt-" + "Hq4Jr5Ks6Lt7" * 3)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    # The browser tests' conftest sets this for Playwright in the test process; it is never set in deployment.
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout, result.stdout
