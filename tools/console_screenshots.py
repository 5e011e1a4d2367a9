"""Take the README's pictures of the staff console: `make screenshots`.

Builds a throwaway SQLite database with the demo catalogue, serves the app on a free loopback
port, signs in through a one-time link as an admin and photographs a few pages with Debian's
Chromium (Playwright): the walk of part 1, then a MEDLINE upload screened (one record excluded,
one included) with its PRISMA flow, and administration. Writes docs/screenshots/console-*.png.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "docs" / "screenshots"
CHROMIUM = os.environ.get("TPA_CHROMIUM", "/usr/bin/chromium")
PASSWORD = "a long screenshot password"
SAMPLE = ROOT / "tests" / "fixtures" / "literature" / "sample.nbib"


def main() -> None:
    from playwright.sync_api import sync_playwright
    from werkzeug.serving import make_server

    from api import create_app
    from api.context import current_rules
    from api.db import alembic_config, get_session
    from api.seed import load_catalogue

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/console.db"
        from alembic import command

        command.upgrade(alembic_config(url), "head")
        settings = {
            "DATABASE_URL": url,
            "LOG_REQUESTS": False,
            "LOG_LEVEL": "WARNING",
            "RATELIMIT_ENABLED": False,
            "PUBLIC_BASE_URL": "http://127.0.0.1:8000",  # required of a server; the pages do not use it
        }
        app = create_app(settings | {"SECRET_KEY": "screenshots-only-console-secret-key-0123"})
        with app.app_context():
            load_catalogue(get_session(), current_rules(), demo=True)
        server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{server.server_port}"
        link = (
            app.test_cli_runner()
            .invoke(
                args=[
                    "users",
                    "create",
                    "--email",
                    "ana@clinic.example",
                    "--name",
                    "Ana Admin",
                    "--role",
                    "admin",
                ]
            )
            .output.strip()
            .splitlines()[-1]
            .replace(app.config["CONSOLE_BASE_URL"], base)
        )
        OUT.mkdir(parents=True, exist_ok=True)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
                page = browser.new_page(viewport={"width": 1000, "height": 720})
                page.goto(link)
                page.get_by_label("New password").fill(PASSWORD)
                page.get_by_label("The same password again").fill(PASSWORD)
                page.get_by_role("button", name="Set password and sign in").click()
                page.screenshot(path=OUT / "console-dashboard.png")
                page.goto(f"{base}/console/treatments")
                page.screenshot(path=OUT / "console-treatments.png")
                page.goto(f"{base}/console/treatments/exosomes")
                page.locator("#evidence-h").scroll_into_view_if_needed()
                page.evaluate("document.getElementById('evidence-h').scrollIntoView()")
                page.screenshot(path=OUT / "console-evidence.png")
                page.goto(f"{base}/console/treatments/exosomes#decide")
                page.locator("#decision-status").select_option("approved")
                page.locator("#decision-reason").fill("Approved for cosmetic use.")
                page.locator("#gate-refused").wait_for()
                page.locator("#decide").screenshot(path=OUT / "console-decision.png")
                # Screening: upload a MEDLINE export, exclude one record, include another.
                page.goto(f"{base}/console/screening")
                upload = page.locator("#upload-form")
                upload.get_by_label("Treatment").select_option("exosomes")
                upload.get_by_label("File").set_input_files(str(SAMPLE))
                upload.get_by_role("button", name="Upload").click()
                page.locator("#import-summary").wait_for()
                page.screenshot(path=OUT / "console-import.png")
                page.goto(f"{base}/console/screening")
                page.screenshot(path=OUT / "console-screening.png")
                review = page.locator(".record").filter(has_text="narrative review")
                review.get_by_label("Exclusion reason").select_option("wrong_design")
                review.get_by_role("button", name=re.compile("^Exclude")).click()
                page.locator(".record").filter(has_text="randomized controlled trial").get_by_role(
                    "link", name=re.compile("^Include")
                ).click()
                form = page.locator("#study-form")
                form.get_by_label("Design").select_option("rct")
                form.get_by_label("Participants").fill("120")
                form.get_by_label("Follow-up (months)").fill("6")
                form.get_by_label("Peer-reviewed").check()
                form.get_by_label("Randomised").check()
                form.get_by_role("button", name="Save and include").click()
                page.goto(f"{base}/console/treatments/exosomes")
                page.locator("#literature").screenshot(path=OUT / "console-prisma.png")
                page.goto(f"{base}/console/admin")
                page.screenshot(path=OUT / "console-admin.png")
                mobile = browser.new_page(viewport={"width": 360, "height": 740})
                mobile.context.add_cookies(page.context.cookies())
                mobile.goto(f"{base}/console/treatments/exosomes")
                mobile.screenshot(path=OUT / "console-360px.png")
                browser.close()
        finally:
            server.shutdown()
            app.extensions["db_engine"].dispose()
    for picture in sorted(OUT.glob("console-*.png")):
        print(f"{picture.relative_to(ROOT)}  {picture.stat().st_size // 1024} KiB")


if __name__ == "__main__":
    main()
