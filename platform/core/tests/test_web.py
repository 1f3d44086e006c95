"""Health endpoints, the schema, exports, the UI shell pages."""
import pytest

pytestmark = pytest.mark.django_db


def test_healthz(client):
    assert client.get("/healthz").json() == {"ok": True}


def test_readyz_reports_each_check_and_503_when_model_service_down(client, settings):
    settings.MODEL_SERVICE_URL = "http://127.0.0.1:9/v1"  # nothing listens on the discard port
    response = client.get("/readyz")
    body = response.json()
    assert response.status_code == 503
    assert body["checks"]["database"]["ok"] and body["checks"]["redis"]["ok"]
    assert body["checks"]["model_service"]["ok"] is False


def test_schema_and_docs(client, make_user):
    response = client.get("/api/schema/")
    assert response.status_code == 200 and b"/api/v1/jobs/" in response.content
    assert client.get("/api/docs/").status_code == 200


def test_api_404_is_json(client, make_user, api_client_for):
    user = make_user("x", "admin")
    response = api_client_for(user).get("/api/v1/jobs/00000000-0000-0000-0000-000000000000/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_shell_pages_render_in_both_languages(client, make_user):
    user = make_user("admin1", "admin")
    client.force_login(user)
    page = client.get("/", HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 200 and b"Dashboard" in page.content
    client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/"})
    page = client.get("/")
    assert "仪表板".encode() in page.content
    for url in ("/tokens/", "/help/", "/dashboard/activity/", "/status/"):
        assert client.get(url).status_code == 200, url


def test_security_headers(client):
    response = client.get("/accounts/login/")
    assert response["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
    assert response["X-Content-Type-Options"] == "nosniff"


def test_exports_neutralise_formulas():
    from core.exports import flatten, neutralise, rows_to_csv_bytes, rows_to_xlsx_bytes

    assert neutralise("=HYPERLINK(\"x\")") == "'=HYPERLINK(\"x\")"
    assert neutralise("-1+2") == "'-1+2" and neutralise(-1.5) == -1.5 and neutralise("@SUM") == "'@SUM"
    assert flatten({"llm": {"risk_level": 2}, "codes": ["a", "b"]}) == {"llm_risk_level": 2, "codes": "a; b"}
    data = rows_to_csv_bytes(["a"], [{"a": "+cmd"}]).decode("utf-8-sig")
    assert "'+cmd" in data
    import io

    from openpyxl import load_workbook

    sheet = load_workbook(io.BytesIO(rows_to_xlsx_bytes(["a"], [{"a": "=1+1"}]))).active
    assert sheet["A2"].value == "'=1+1"
