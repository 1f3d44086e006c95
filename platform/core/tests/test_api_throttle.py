"""A runaway integration is held back: requests that create work are limited per caller (429 with
Retry-After, in the API's error shape); polling is never limited; other callers are not affected."""
import pytest
from django.core.cache import cache

pytestmark = pytest.mark.django_db


def _submit(api):
    return api.post("/api/v1/diagnostics/", {"prompt": "hi", "use_model": False}, format="json")


def test_submissions_over_the_rate_get_429_with_retry_after(settings, make_user, api_client_for):
    settings.API_SUBMIT_RATE = "3/min"
    busy, other = make_user("busy", "admin"), make_user("other", "admin")
    cache.delete_many([f"throttle_submit_{busy.pk}", f"throttle_submit_{other.pk}"])
    api = api_client_for(busy)
    first = [_submit(api) for _ in range(3)]
    assert [r.status_code for r in first] == [202, 202, 202], [r.content for r in first]
    refused = _submit(api)
    assert refused.status_code == 429
    assert 0 < int(refused["Retry-After"]) <= 60
    assert refused.json()["error"]["code"] == "throttled" and refused.json()["error"]["status"] == 429
    # polling the jobs it already has is not limited
    for _ in range(10):
        assert api.get(first[0].json()["url"]).status_code == 200
    # another caller has its own allowance
    assert _submit(api_client_for(other)).status_code == 202


def test_the_limit_can_be_switched_off(settings, make_user, api_client_for):
    settings.API_SUBMIT_RATE = None
    api = api_client_for(make_user("unlimited", "admin"))
    assert all(_submit(api).status_code == 202 for _ in range(5))


def test_an_unreachable_cache_does_not_stop_submissions(settings, make_user, api_client_for):
    """Redis away: the limit is skipped (logged), the work is still accepted (the row is the truth)."""
    from conftest import free_port

    settings.API_SUBMIT_RATE = "1/min"
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": f"redis://127.0.0.1:{free_port()}/0"}}
    api = api_client_for(make_user("cacheless", "admin"))
    assert [_submit(api).status_code for _ in range(3)] == [202, 202, 202]


def test_stow_rs_counts_too(settings, make_user, api_client_for):
    """DICOMweb STOW-RS is an API endpoint like the others: a PACS pushing in a loop is held back."""
    settings.API_SUBMIT_RATE = "1/min"
    user = make_user("pacs", "medical")
    cache.delete(f"throttle_submit_{user.pk}")
    api = api_client_for(user)
    statuses = [api.post("/dicomweb/studies", b"not multipart", content_type="application/dicom").status_code
                for _ in range(2)]
    assert statuses[0] != 429 and statuses[1] == 429, statuses
