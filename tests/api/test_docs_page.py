"""The docs page in a real browser (Chromium): it renders the document, with no console error"""

from __future__ import annotations

from tests.helpers import serving


def test_the_favicon_is_served_by_the_app(client):
    with client.get("/favicon.ico") as response:
        assert response.status_code == 200
        assert response.mimetype == "image/vnd.microsoft.icon"
        assert response.get_data()[:4] == b"\x00\x00\x01\x00"  # an ICO header


def test_the_docs_page_loads_in_chromium_without_a_console_error(app, page):  # noqa: F811
    # Chromium asks for /favicon.ico itself; a 404 there was the console error.
    with serving(app) as base:
        page.goto(f"{base}/docs")
        page.wait_for_selector(".swagger-ui .opblock-tag", timeout=20_000)  # the operations rendered
        page.wait_for_load_state("networkidle")
        assert page.locator(".swagger-ui .opblock").count() >= 30
    assert page.console_errors == []
