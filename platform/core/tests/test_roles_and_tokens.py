"""Roles gate pages and API; tokens are hashed, revocable; the CLI prints the token last."""
import io

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.django_db

APP_PAGES = {"finance": "/finance/", "medical": "/medical/", "manufacturing": "/manufacturing/"}


@pytest.mark.parametrize("app", sorted(APP_PAGES))
def test_app_pages_need_their_role(client, make_user, app):
    other = next(a for a in APP_PAGES if a != app)
    outsider = make_user("outsider", other)
    client.force_login(outsider)
    assert client.get(APP_PAGES[app]).status_code == 403
    insider = make_user("insider", app)
    client.force_login(insider)
    assert client.get(APP_PAGES[app]).status_code == 200


def test_anonymous_pages_redirect_to_login(client):
    response = client.get("/finance/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_api_needs_a_token(client):
    response = client.get("/api/v1/jobs/")
    assert response.status_code in (401, 403)
    assert response.json()["error"]["code"] in ("not_authenticated", "authentication_failed")


def test_admin_api_role(make_user, api_client_for):
    finance_user = make_user("fin", "finance")
    response = api_client_for(finance_user).post("/api/v1/diagnostics/", {}, format="json")
    assert response.status_code == 403
    assert "admin" in response.json()["error"]["message"]


def test_create_api_user_prints_token_last_and_it_works(client):
    out = io.StringIO()
    call_command("create_api_user", "loan-system", "--roles", "finance,manufacturing", stdout=out)
    token = out.getvalue().strip().splitlines()[-1]
    assert token.startswith("sk_")
    response = client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200
    assert response.json() == {"username": "loan-system", "roles": ["finance", "manufacturing"]}


def test_create_api_user_rejects_unknown_roles():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="unknown role"):
        call_command("create_api_user", "x", "--roles", "finance,wizard", stdout=io.StringIO())


def test_token_is_stored_hashed_and_revocable(client, make_user):
    from core.models import ApiToken
    from core.services import api_token_create, api_token_revoke

    user = make_user("u1", "finance")
    token, secret = api_token_create(user=user, name="t")
    stored = ApiToken.objects.get(pk=token.pk)
    assert secret not in (stored.key_hash, stored.prefix) and len(stored.key_hash) == 64
    assert client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 200
    assert client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {secret}x").status_code == 401
    api_token_revoke(token=token)
    response = client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "token revoked"


def test_login_is_rate_limited(client, make_user, settings):
    from core.models import AuditEvent

    settings.LOGIN_RATE_LIMIT = 3
    make_user("victim", "finance")
    from django.core.cache import cache

    cache.delete("login-fail:127.0.0.1")
    for _ in range(3):
        assert client.post("/accounts/login/", {"username": "victim", "password": "wrong"}).status_code == 200
    blocked = client.post("/accounts/login/", {"username": "victim", "password": "pw-Test-12345"})
    assert blocked.status_code == 429
    assert AuditEvent.objects.filter(action="login_failed").count() == 4
    cache.delete("login-fail:127.0.0.1")


def test_audit_log_is_append_only(make_user):
    from core.audit import audit_record
    from core.models import AuditEvent

    user = make_user("a", "finance")
    event = audit_record(actor=user, action="view", object_type="x", object_id="1")
    event.detail = {"changed": True}
    with pytest.raises(PermissionError):
        event.save()
    with pytest.raises(PermissionError):
        event.delete()
    with pytest.raises(PermissionError):
        AuditEvent.objects.all().delete()
    with pytest.raises(PermissionError):
        AuditEvent.objects.update(action="edit")
    assert AuditEvent.objects.get(pk=event.pk).detail == {}
