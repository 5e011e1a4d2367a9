"""The website kit in a real browser (Chromium, `tests/browser.py`): pages, widget, accessibility.

One app server for the module (a threaded server on a port chosen first, so its
TPA_PUBLIC_BASE_URL is its own address) and one "clinic website" on another port, another origin,
that embeds the widget with one script tag and one element, as the README says.
"""

from __future__ import annotations

import functools
import json
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest
from pyld import jsonld
from werkzeug.serving import make_server

from api import create_app
from tests.api.test_jsonld import SCHEMA, VOCABULARY, local_loader, walk
from tests.helpers import add_treatment, approval, free_port, study

SERIOUS = {"serious", "critical"}
EMBED = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>The clinic's own website</title>
<link rel="icon" href="data:,">
<script src="{api}/widget.js" defer></script></head>
<body><main><h1>Exosome facials</h1>
<treatment-status slug="exosomes"{extra}>
  <a href="{api}/treatments/exosomes">Our position</a>
</treatment-status>
</main></body></html>
"""


class Website(SimpleHTTPRequestHandler):
    def log_message(self, *args):  # quiet
        pass


@pytest.fixture(scope="module")
def servers(app, tmp_path_factory):
    """(the app's base URL, the clinic website's origin): two origins on loopback."""
    api_port, site_port = free_port(), free_port()
    base, site = f"http://127.0.0.1:{api_port}", f"http://localhost:{site_port}"
    live = create_app({"DATABASE_URL": app.config["DATABASE_URL"], "PUBLIC_BASE_URL": base,
                       "CORS_ORIGINS": (site,), "LOG_REQUESTS": False,
                       "RATELIMIT_ENABLED": False})  # fmt: skip
    folder = tmp_path_factory.mktemp("website")
    (folder / "embed.html").write_text(EMBED.format(api=base, extra=""))
    (folder / "slow.html").write_text(EMBED.format(api=base, extra=' timeout="300"'))
    httpd = make_server("127.0.0.1", api_port, live, threaded=True)
    website = ThreadingHTTPServer(("127.0.0.1", site_port), functools.partial(Website, directory=str(folder)))
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in (httpd, website)]
    for thread in threads:
        thread.start()
    yield base, site
    for server in (httpd, website):
        server.shutdown()
        server.server_close()
    live.extensions["db_engine"].dispose()


@pytest.fixture
def catalogue(app):
    add_treatment(
        app, "botox", "approved", name="Botulinum toxin", studies=[study()], regulatory=[approval()]
    )
    add_treatment(app, "exosomes", "not_approved", name="Exosome therapy", category="regenerative",
                  studies=[study(participants=28, follow_up_months=3)],
                  regulatory=[approval(regulator="HPRA", status="not_approved",
                                       reference="none")])  # fmt: skip
    add_treatment(app, "prp", "under_review", name="Platelet-rich plasma")


def serious_violations(page):
    from axe_playwright_python.sync_playwright import Axe

    violations = Axe().run(page).response["violations"]
    return [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]])
        for v in violations
        if v["impact"] in SERIOUS
    ]


def test_the_index_and_a_page_show_the_right_status_and_their_json_ld(page, servers, catalogue):
    base, _ = servers
    page.goto(base + "/")
    assert "Botulinum toxin" in page.locator("#offered").inner_text()
    assert "Platelet-rich plasma" in page.locator("#under_review").inner_text()
    assert "Exosome therapy" in page.locator("#not_offered").inner_text()
    page.get_by_role("link", name="Exosome therapy").click()
    page.wait_for_url(base + "/treatments/exosomes")
    assert page.locator(".verdict .badge").inner_text() == "Not offered"
    assert page.locator(".verdict .headline").inner_text() == "We do not offer this treatment."
    document = json.loads(page.locator('script[type="application/ld+json"]').text_content())
    expanded = jsonld.expand(document, {"documentLoader": local_loader})
    types, properties = set(), set()
    walk(expanded, types, properties)
    assert SCHEMA + "MedicalWebPage" in types
    assert {p.removeprefix(SCHEMA) for p in properties} <= set(VOCABULARY["properties"])
    assert document["url"] == base + "/treatments/exosomes"
    assert page.console_errors == []  # the CSP refused nothing, nothing failed to load


def test_axe_finds_no_serious_or_critical_violation(page, servers, catalogue):
    base, _ = servers
    for path in ("/", "/treatments/exosomes"):
        page.goto(base + path)
        assert serious_violations(page) == [], path


def test_at_360_px_nothing_scrolls_sideways_and_without_javascript_it_all_reads(
    browser,
    servers,
    catalogue,
):
    base, _ = servers
    context = browser.new_context(viewport={"width": 360, "height": 740}, java_script_enabled=False)
    try:
        narrow = context.new_page()
        for path in ("/", "/treatments/exosomes", "/treatments/botox"):
            narrow.goto(base + path)
            width = narrow.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
            assert width[0] <= width[1], (path, width)
        assert narrow.locator(".verdict .badge").inner_text() == "Offered"
        narrow.emulate_media(media="print")
        assert narrow.locator(".crumbs").is_hidden()  # printable: no navigation on paper
    finally:
        context.close()


def test_the_widget_on_another_origin_shows_the_status_and_links_to_the_page(page, servers, catalogue):
    base, site = servers
    page.goto(site + "/embed.html")
    widget = page.locator('treatment-status[data-state="loaded"]')
    widget.wait_for(timeout=5000)
    assert widget.locator(".status").inner_text() == "Exosome therapy: Not offered"
    assert widget.locator(".reason").inner_text() == "exosomes is not_approved."
    assert widget.locator("a.link").get_attribute("href") == base + "/treatments/exosomes"
    assert page.evaluate("document.querySelector('treatment-status').shadowRoot !== null")
    assert page.console_errors == []


def test_the_widget_shows_a_neutral_fallback_when_the_api_is_down(page, servers, catalogue):
    base, site = servers
    page.route(f"{base}/v1/**", lambda route: route.abort("connectionrefused"))
    page.goto(site + "/embed.html")
    widget = page.locator('treatment-status[data-state="fallback"]')
    widget.wait_for(timeout=5000)
    text = widget.locator(".box").inner_text().lower()
    assert "could not load" in text
    assert "offered" not in text and "bookable" not in text
    assert widget.locator("a.link").get_attribute("href") == base + "/treatments/exosomes"


def test_the_widget_gives_up_on_an_api_that_does_not_answer(page, servers, catalogue):
    base, site = servers
    page.route(f"{base}/v1/**", lambda route: None)  # never answered
    page.goto(site + "/slow.html")
    widget = page.locator('treatment-status[data-state="fallback"]')
    widget.wait_for(timeout=3000)  # its timeout attribute says 300 ms
    assert "offered" not in widget.locator(".box").inner_text().lower()
