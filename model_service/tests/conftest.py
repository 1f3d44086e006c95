"""One real model-service process per test session (the embedded SmolLM2 on CPU), spoken to over HTTP."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads (see model_service/cli.py)

import httpx  # noqa: E402
import pytest  # noqa: E402

from model_service.tests.helpers import API_KEY, Server, start_server, stop_server  # noqa: E402


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory):
    """The shared model service of this test session."""
    srv = start_server(tmp_path_factory.mktemp("model_service"))
    yield srv
    stop_server(srv)


@pytest.fixture(scope="session")
def client(server: Server):
    """An authenticated httpx client."""
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=120) as c:
        yield c
