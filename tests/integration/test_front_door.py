"""What reaches the API through a real server: bodies however framed, URIs however long"""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from api import create_app
from api.api_keys.models import Role
from api.api_keys.service import create_key
from api.db import get_session
from tests.conftest import execute
from tests.databases import fresh_database
from tests.helpers import add_treatment, gunicorn

LIMIT = 1024 * 1024  # the default TPA_MAX_CONTENT_LENGTH
NBIB = (Path(__file__).resolve().parent.parent / "fixtures" / "literature" / "sample.nbib").read_text()


@pytest.fixture(scope="module")
def server() -> Iterator[dict[str, Any]]:
    with fresh_database() as url:
        app = create_app({"DATABASE_URL": url, "LOG_REQUESTS": False})
        add_treatment(app, "microneedling", "under_review")
        with app.app_context():
            key = create_key(get_session(), "editor", Role("editor"))
        with gunicorn(url) as port:
            yield {"port": port, "app": app, "editor": {"Authorization": f"Bearer {key}"}}
        app.extensions["db_engine"].dispose()


def medline(size: int) -> bytes:
    """MEDLINE records with distinct PMIDs and DOIs, about `size` bytes in all."""
    records, n = [], 0
    while sum(map(len, records)) < size:
        n += 1
        records.append(
            NBIB.split("\n\n")[0].replace("99999911", f"9{n:07d}").replace("NBIB.011", f"CHUNK.{n}") + "\n\n"
        )
    return "".join(records).encode()


def send_chunked(port: int, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        chunks = (body[i : i + 65536] for i in range(0, len(body), 65536))
        connection.request("POST", path, body=chunks, headers=headers, encode_chunked=True)
        response = connection.getresponse()
        return response.status, (response.getheader("Content-Type"), orjson.loads(response.read()))
    finally:
        connection.close()


def studies(app: Any) -> int:
    return execute(app, "SELECT count(*) FROM studies")[0][0]


def test_a_chunked_body_over_the_limit_is_413_and_writes_nothing(server):
    body = medline(int(LIMIT * 1.2))
    assert len(body) > LIMIT
    before = studies(server["app"])
    status, (content_type, problem) = send_chunked(
        server["port"], "/v1/treatments/microneedling/studies/import?format=nbib", body,
        server["editor"] | {"Content-Type": "application/x-nbib"},
    )  # fmt: skip
    assert (status, content_type, problem["status"]) == (413, "application/problem+json", 413)
    assert studies(server["app"]) == before


def test_a_chunked_body_within_the_limit_is_read_whole(server):
    body = medline(200_000)
    records = body.count(b"PMID- ")
    before = studies(server["app"])
    status, (_, result) = send_chunked(
        server["port"], "/v1/treatments/microneedling/studies/import?format=nbib", body,
        server["editor"] | {"Content-Type": "application/x-nbib"},
    )  # fmt: skip
    assert status == 201, result
    assert result["count"] == records and studies(server["app"]) == before + records
