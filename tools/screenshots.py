"""The README's pictures of the website kit (`make screenshots`), taken in Debian's Chromium.

Serves the app on a fresh SQLite database seeded with the demo positions, and a page on another
origin that embeds the widget, then writes small PNGs to docs/screenshots/. Not a test.
"""

from __future__ import annotations

import functools
import logging
import sys
import tempfile
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from alembic import command
from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from api import create_app  # noqa: E402
from api.context import current_rules  # noqa: E402
from api.db import alembic_config, get_session  # noqa: E402
from api.seed import load_catalogue  # noqa: E402
from tests.browser import CHROMIUM  # noqa: E402
from tests.helpers import free_port  # noqa: E402

OUT = ROOT / "docs" / "screenshots"
EMBED = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>A clinic's own page</title>
<link rel="icon" href="data:,">
<style>body {{ font: 17px/1.5 Georgia, serif; max-width: 34rem; margin: 2rem auto; padding: 0 1rem; }}</style>
<script src="{api}/widget.js" defer></script></head>
<body><h1>Exosome facials</h1>
<p>Clients often ask us about exosome facials. Here is where we stand today:</p>
<treatment-status slug="exosomes">
  <a href="{api}/treatments/exosomes">Our position on exosomes</a>
</treatment-status>
</body></html>
"""


class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def main() -> None:
    from playwright.sync_api import sync_playwright

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access lines
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        api_port, site_port = free_port(), free_port()
        base, site = f"http://127.0.0.1:{api_port}", f"http://localhost:{site_port}"
        app = create_app({"DATABASE_URL": f"sqlite:///{folder}/screenshots.db", "PUBLIC_BASE_URL": base,
                          "CORS_ORIGINS": (site,), "LOG_REQUESTS": False,
                          "SECRET_KEY": "screenshots-only-secret-key-0123456789ab"})  # fmt: skip
        command.upgrade(alembic_config(app.config["DATABASE_URL"]), "head")
        with app.app_context():
            load_catalogue(get_session(), current_rules(), demo=True)
        (Path(folder) / "embed.html").write_text(EMBED.format(api=base))
        servers = [
            make_server("127.0.0.1", api_port, app, threaded=True),
            ThreadingHTTPServer(("127.0.0.1", site_port), functools.partial(Quiet, directory=folder)),
        ]
        for server in servers:
            threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
                shots = [
                    ("index.png", base + "/", {"width": 1000, "height": 760}),
                    ("treatment-360px.png", base + "/treatments/exosomes", {"width": 360, "height": 1100}),
                    ("widget.png", site + "/embed.html", {"width": 640, "height": 520}),
                ]
                for name, url, viewport in shots:
                    page = browser.new_page(viewport=viewport)
                    page.goto(url)
                    if "embed" in url:
                        page.locator('treatment-status[data-state="loaded"]').wait_for(timeout=5000)
                    page.screenshot(path=str(OUT / name))
                    page.close()
                    print(f"docs/screenshots/{name}")
                browser.close()
        finally:
            for server in servers:
                server.shutdown()
            app.extensions["db_engine"].dispose()


if __name__ == "__main__":
    main()
