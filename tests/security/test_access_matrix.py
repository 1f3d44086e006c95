"""Every role against every app page and endpoint: only the app's own role (or admin) gets in."""
import uuid

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

pytestmark = pytest.mark.django_db

APPS = ("finance", "medical", "manufacturing")
# Model management (train, activate) is for administrators only, inside each app.
ADMIN_ONLY_MARKERS = ("/models",)
# A wrong method answers 405 before any object is touched: that refuses as well as 403 does.
REFUSED = (403, 405)


def _walk(patterns, prefix=""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), entry


def _concrete(route: str) -> str:
    """Fill path converters with plausible values (objects that do not exist: a 404 is fine, a 200 is not)."""
    import re

    def fill(match):
        kind = match.group(1) or "str"
        return {"uuid": str(uuid.uuid4()), "int": "999999", "slug": "x", "path": "x"}.get(kind, "x")

    route = re.sub(r"<(?:(\w+):)?\w+>", fill, route)
    route = route.replace("^", "").replace("$", "")
    return "/" + route


def app_urls():
    urls = []
    for route, _pattern in _walk(get_resolver().url_patterns):
        path = _concrete(route)
        for app in APPS:
            if (path.startswith((f"/{app}/", f"/api/v1/{app}/"))
                    or (app == "medical" and path.startswith("/dicomweb/"))):
                urls.append((app, path))
    return sorted(set(urls))


def test_there_are_app_urls_to_check():
    apps_found = {app for app, _ in app_urls()}
    assert apps_found == set(APPS)


@pytest.mark.parametrize("role", [None, *APPS, "admin"])
def test_role_matrix(role, make_user, api_client_for, client):
    user = make_user(f"user_{role or 'none'}", *([role] if role else []))
    api = api_client_for(user)
    client.force_login(user)
    failures = []
    for app, path in app_urls():
        is_api = path.startswith(("/api/", "/dicomweb/"))
        for method in ("get", "post"):
            response = getattr(api if is_api else client, method)(path)
            code = response.status_code
            if code >= 500:
                failures.append(f"{role} {method.upper()} {path} -> {code} (server error)")
            elif role == "admin" or (role == app and not any(m in path for m in ADMIN_ONLY_MARKERS)):
                if code == 403:
                    failures.append(f"{role} {method.upper()} {path} -> 403 (should be let in)")
            elif role != app and code not in REFUSED:
                failures.append(f"{role} {method.upper()} {path} -> {code} (expected 403)")
    assert not failures, "\n".join(failures)


def test_anonymous_is_refused_everywhere(client):
    failures = []
    for _app, path in app_urls():
        response = client.get(path)
        if path.startswith(("/api/", "/dicomweb/")):
            ok = response.status_code in (401, 403)
        else:
            ok = (response.status_code == 302 and "/accounts/login/" in response["Location"]) or \
                response.status_code == 405
        if not ok:
            failures.append(f"GET {path} -> {response.status_code}")
    assert not failures, "\n".join(failures)
