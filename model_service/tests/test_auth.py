"""Bearer keys from the keys file and MODEL_SERVICE_API_KEYS; JSON 401 otherwise; keys never logged."""

from __future__ import annotations

import httpx

from model_service.tests.helpers import API_KEY, ENV_KEY, chat_body


def test_missing_key_is_json_401(server):
    r = httpx.post(server.url + "/v1/chat/completions", json=chat_body("hi"))
    assert r.status_code == 401
    assert r.json()["error"]["type"] == "authentication_error"
    assert r.headers["www-authenticate"] == "Bearer"


def test_wrong_key_and_wrong_scheme_are_401(server):
    for header in (f"Bearer {API_KEY}x", f"Basic {API_KEY}", "Bearer"):
        r = httpx.get(server.url + "/v1/models", headers={"Authorization": header})
        assert r.status_code == 401, header


def test_file_key_and_env_key_both_work(server):
    for key in (API_KEY, ENV_KEY):
        r = httpx.get(server.url + "/v1/models", headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 200


def test_health_and_metrics_need_no_key(server):
    assert httpx.get(server.url + "/health").status_code == 200
    assert httpx.get(server.url + "/metrics").status_code == 200


def test_keys_never_logged(server, client):
    client.get("/v1/models")
    httpx.get(server.url + "/v1/models", headers={"Authorization": "Bearer wrong-secret-zzz"})
    log = server.log()
    assert API_KEY not in log and ENV_KEY not in log and "wrong-secret-zzz" not in log
