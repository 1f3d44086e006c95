"""The UI shell in a real browser: log in, switch language, watch a job progress to done."""
import pytest

pytestmark = [pytest.mark.browser, pytest.mark.live, pytest.mark.django_db(transaction=True)]


def test_login_language_switch_and_live_job_progress(page, login, live_server, celery_worker, make_user):
    make_user("opsadmin", "admin")
    login("opsadmin")
    assert page.locator("h1").inner_text() == "Dashboard"

    # Switch to Simplified Chinese and back: the shell is translated.
    page.select_option("#lang-select", "zh-hans")
    page.wait_for_selector("h1:has-text('仪表板')")
    assert "退出登录" in page.inner_text("header")
    page.select_option("#lang-select", "en")
    page.wait_for_selector("h1:has-text('Dashboard')")

    # Run a diagnostic job with a wait and watch its page update without a reload.
    page.fill("#id_delay", "4")
    page.click("#run-diagnostic")
    page.wait_for_url("**/jobs/**")
    seen = set()
    for _ in range(120):
        seen.add(page.get_attribute("#job-status section", "data-status"))
        if "succeeded" in seen:
            break
        page.wait_for_timeout(500)
    assert "running" in seen, seen  # the progress was visible while it ran
    assert "succeeded" in seen, seen
    assert page.inner_text("#job-status-label") == "Succeeded"

    # The dashboard lists it as done.
    page.goto(f"{live_server.url}/")
    page.wait_for_selector("#activity .status-succeeded")


def test_wrong_role_sees_403_page(page, login, live_server, make_user):
    make_user("eng", "manufacturing")
    login("eng")
    response = page.goto(f"{live_server.url}/finance/")
    assert response.status == 403
    assert "role" in page.inner_text("main")
