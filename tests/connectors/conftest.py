"""Connectors' fixtures: a fake Square on 127.0.0.1, treatments mapped to its services, and passes
run as the worker runs them (fast backoff, so failures are retried in milliseconds)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from api.connectors.worker import Passes
from tests.fakes.square import FakeSquare, fake_square
from tests.helpers import add_treatment, approval, study

FAST = {
    "CONNECTORS_ALLOW_LOOPBACK_HTTP": True,
    "CONNECTORS_BACKOFF_BASE_SECONDS": 0.01,
    "CONNECTORS_BACKOFF_CAP_SECONDS": 0.05,
    "CONNECTORS_PASS_BACKOFF_BASE_SECONDS": 0.05,
    "CONNECTORS_PASS_BACKOFF_CAP_SECONDS": 0.2,
    "CONNECTORS_POLL_SECONDS": 0.05,
    "CONNECTORS_TIMEOUT_SECONDS": 2.0,
    "CONNECTORS_RECONCILE_SECONDS": 300.0,  # no timed pass during a test: what happens, events did
}


@pytest.fixture
def fast(app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in FAST.items():
        monkeypatch.setitem(app.config, key, value)


@pytest.fixture
def square(fast: None) -> Iterator[FakeSquare]:
    with fake_square() as fake:
        yield fake
        assert fake.violations == [], "requests or answers that Square's OpenAPI document does not allow"


def approved(app: Any, slug: str, **fields: Any) -> None:
    add_treatment(app, slug, "approved", studies=[study()], regulatory=[approval()], **fields)


def connect(client: Any, admin: dict[str, str], square: FakeSquare, **fields: Any) -> dict[str, Any]:
    body = {"system": "square", "name": "Square, main site", "base_url": square.url,
            "credentials": {"access_token": square.token}} | fields  # fmt: skip
    response = client.post("/v1/connectors", json=body, headers=admin)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


@pytest.fixture
def said() -> list[str]:
    return []


@pytest.fixture
def passes(app: Any, fast: None, said: list[str]) -> Passes:
    return Passes(app, said.append)
