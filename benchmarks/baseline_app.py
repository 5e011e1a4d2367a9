"""The bare-Flask baseline: the framework's ceiling for the API's public reads and booking checks.

It serves the exact bytes captured from the real app before the run (the body and every header
but the ones gunicorn writes itself), from memory, with no database, no schema and no
serialisation:

- `GET /v1/treatments`, `GET /v1/changes`: the captured body;
- `GET /v1/treatments/<slug>`: the captured body, or 304 without a body when `If-None-Match`
  holds its ETag, as the app does;
- `POST /v1/booking-checks`: parses the JSON body as the app must, then answers the captured
  (fixed) answer, the same size as the app's.

`BENCH_FIXTURES` names the folder bench.py wrote: `fixtures.json` (statuses, headers) and one
`<name>.body` file per captured response (`list`, `detail`, `detail_304`, `booking_5`,
`changes`). Run it under the same gunicorn settings as the app:
`gunicorn --no-control-socket --workers 5 --pythonpath benchmarks 'baseline_app:create_app()'`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from flask import Flask, Response, request

# Written by gunicorn or Werkzeug for every response, so never copied from the capture.
SERVER_HEADERS = {"server", "date", "connection", "content-length", "content-type", "transfer-encoding"}


class Fixture:
    """One captured response, replayed as it was."""

    def __init__(self, folder: Path, name: str, meta: dict[str, Any]) -> None:
        self.body = (folder / f"{name}.body").read_bytes()
        self.status = int(meta["status"])
        self.content_type = meta["headers"].get("Content-Type")
        self.headers = [(k, v) for k, v in meta["headers"].items() if k.lower() not in SERVER_HEADERS]
        self.etag = meta["headers"].get("ETag")

    def respond(self) -> Response:
        response = Response(self.body, status=self.status, content_type=self.content_type)
        response.headers.extend(self.headers)
        return response


def create_app(folder: str | None = None) -> Flask:
    folder_path = Path(folder or os.environ["BENCH_FIXTURES"])
    meta = json.loads((folder_path / "fixtures.json").read_text())
    fixtures = {name: Fixture(folder_path, name, item) for name, item in meta["responses"].items()}
    treatment_list, detail, not_modified = fixtures["list"], fixtures["detail"], fixtures["detail_304"]
    booking, changes = fixtures["booking_5"], fixtures["changes"]
    details = {meta["detail_slug"]: detail}

    app = Flask(__name__)

    @app.get("/health/live")
    def live() -> Any:
        return {"status": "ok"}

    @app.get("/v1/treatments")
    def list_treatments() -> Response:
        return treatment_list.respond()

    @app.get("/v1/treatments/<slug>")
    def get_treatment(slug: str) -> Response:
        fixture = details.get(slug)
        if fixture is None:
            return Response(status=404)
        if_none_match = request.headers.get("If-None-Match")
        if if_none_match and fixture.etag in {tag.strip() for tag in if_none_match.split(",")}:
            return not_modified.respond()
        return fixture.respond()

    @app.post("/v1/booking-checks")
    def booking_check() -> Response:
        data = request.get_json()
        if not isinstance(data, dict) or not isinstance(data.get("treatments"), list):
            return Response(status=422)
        return booking.respond()

    @app.get("/v1/changes")
    def change_feed() -> Response:
        return changes.respond()

    return app
