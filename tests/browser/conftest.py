"""Playwright driving Debian's Chromium (Playwright's own browser download cannot work offline).

Without Chromium the browser tests FAIL with a message saying how to install it: a plain ``make test`` on a
machine without a browser must not pass by silently skipping them. ``SKIP_BROWSER_TESTS=1`` skips them on
purpose (README, "Tests")."""
import os
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
SKIP = os.environ.get("SKIP_BROWSER_TESTS", "").strip().lower() in ("1", "true", "yes")
NO_BROWSER = (f"no Chromium at {CHROMIUM}: the browser tests need it. Install it (Debian/Ubuntu: "
              "`apt-get install chromium`, or point CHROMIUM_PATH at one), or skip them on purpose with "
              "`SKIP_BROWSER_TESTS=1 make test`")


def pytest_collection_modifyitems(config, items):
    if not SKIP:
        return
    here = Path(__file__).parent
    mark = pytest.mark.skip(reason="SKIP_BROWSER_TESTS=1: browser tests skipped on request")
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(mark)
# Playwright's sync API keeps an event loop running in this thread; the test's own ORM calls are
# still synchronous and safe.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="module")
def browser():
    """One Chromium per test module. Not per session: Playwright's sync API keeps an asyncio loop
    running in the main thread while it is open, and later tests (the model service's) call
    asyncio.run()."""
    if not Path(CHROMIUM).exists():
        pytest.fail(NO_BROWSER, pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
                  "--no-first-run", "--disable-component-update", "--disable-sync"],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(locale="en-US")
    page = context.new_page()
    page.set_default_timeout(20000)
    yield page
    context.close()


@pytest.fixture
def login(page, live_server):
    def do(username: str, password: str = "pw-Test-12345"):
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", password)
        page.click("#login-button")
        page.wait_for_url(f"{live_server.url}/")
        return page

    return do
