"""Small builders for API tests"""

from __future__ import annotations

import uuid
from typing import Any

from flask.testing import FlaskClient


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
