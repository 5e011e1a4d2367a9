"""Small builders for API tests"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask.testing import FlaskClient
from werkzeug.serving import make_server


def random_slug(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create_treatment(client: FlaskClient, headers: dict[str, str], **fields: Any) -> dict[str, Any]:
    body = {"slug": random_slug(), "name": "Test treatment", "category": "skin_procedure",
            "summary": "A treatment made by a test."} | fields  # fmt: skip
    response = client.post("/v1/treatments", json=body, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


STRONG_RCT = {"title": "A large randomised trial", "design": "rct", "participants": 250,
              "randomised": True, "controlled": True, "blinded": True, "follow_up_months": 12,
              "sponsorship": "industry", "peer_reviewed": True}  # fmt: skip
FDA_APPROVAL = {"regulator": "FDA", "status": "approved", "pathway": "PMA", "reference": "P000000",
                "source_url": "https://www.accessdata.fda.gov/example"}  # fmt: skip


def add_treatment(app: Any, slug: str, status: str = "under_review", **fields: Any) -> None:
    """Create a treatment through the service, as the seed does (studies, entries, decision)."""
    from api.audit.service import SEED_ACTOR
    from api.db import get_session
    from api.rules import current_rules
    from api.treatments import service

    studies = fields.pop("studies", [])
    regulatory = fields.pop("regulatory", [])
    data = {"slug": slug, "name": slug.replace("-", " ").title(), "category": "skin_procedure",
            "summary": f"About {slug}."} | fields  # fmt: skip
    with app.app_context():
        service.create_treatment(
            get_session(), data, SEED_ACTOR, current_rules(), studies=studies, regulatory=regulatory,
            decision={"status": status, "reason": f"{slug} is {status}."},
        )  # fmt: skip


def study(**fields: Any) -> dict[str, Any]:
    """A study dict as the service takes it (defaults: a strong, peer-reviewed RCT)."""
    return {"title": "A randomised trial", "design": "rct", "participants": 250, "randomised": True,
            "controlled": True, "blinded": True, "follow_up_months": 12, "sponsorship": "industry",
            "peer_reviewed": True} | fields  # fmt: skip


def approval(**fields: Any) -> dict[str, Any]:
    return {"regulator": "FDA", "status": "approved", "pathway": "PMA", "reference": "P000000",
            "source_url": "https://www.accessdata.fda.gov/example"} | fields  # fmt: skip


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """The app behind a real threaded HTTP server on a free port, for truly concurrent requests;
    yields its base URL and always shuts it down."""
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(30)
