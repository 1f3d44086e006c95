"""Schemathesis against /api/schema/, authenticated with every role: no endpoint answers 5xx."""
import pytest
import schemathesis
from hypothesis import HealthCheck, settings


@pytest.fixture
def api_schema(db):
    from config.wsgi import application

    return schemathesis.openapi.from_wsgi("/api/schema/", application)


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture
def admin_token(db):
    from django.contrib.auth.models import Group, User

    from core.roles import roles_ensure
    from core.services import api_token_create

    roles_ensure()
    user, _ = User.objects.get_or_create(username="fuzzer")
    user.groups.add(Group.objects.get(name="admin"))
    return api_token_create(user=user, name="fuzz")[1]


@schema.parametrize()
@settings(max_examples=6, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_no_server_errors(case, admin_token):
    response = case.call(headers={"Authorization": f"Bearer {admin_token}"})
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path} answered {response.status_code}: {response.text[:500]}"
    )
    if response.status_code >= 400 and response.headers.get("Content-Type", "").startswith("application/json"):
        body = response.json()
        assert "error" in body and "message" in body["error"], body  # the one error shape
