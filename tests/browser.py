"""Real-browser tests: Playwright for Python driving Debian's Chromium.

Playwright's own browser download is not available here, so the tests launch the system's Chromium
(`apt-get install -y chromium`; `.ci/run` installs it). Without it the browser tests are skipped,
unless `REQUIRE_BROWSER` is set (CI sets it), when they fail instead.

The fixtures are registered once, for the whole suite, by `tests/conftest.py` (`pytest_plugins`):
ask for `page` (a fresh context per test) or `browser`. Never import them into a module: a second
definition would start a second Playwright in the same thread, which Playwright's sync API refuses.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("TPA_CHROMIUM", "/usr/bin/chromium"))


def _require_chromium() -> None:
    if CHROMIUM.exists():
        return
    if os.environ.get("REQUIRE_BROWSER"):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
    pytest.skip(f"needs Chromium at {CHROMIUM} (apt-get install -y chromium)")


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    _require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser) -> Iterator[object]:
    """A page in a fresh context (no cookies shared between tests); fails the test on a console error."""
    context = browser.new_context()
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.console_errors = errors
    yield page
    context.close()
