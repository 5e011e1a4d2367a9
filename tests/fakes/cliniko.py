"""A stateful fake of the part of Cliniko's API the connector uses, served on 127.0.0.1.

Modelled by hand from Cliniko's documented fields (docs.api.cliniko.com: AppointmentType, the
list's pagination, authentication): Cliniko publishes no OpenAPI document that could be used
here. What it holds to, as Cliniko does:
- HTTP Basic with the API key as the user name and an empty password, else 401;
- a `User-Agent` header naming the app and a contact email, else 400 (Cliniko refuses requests
  without one);
- the host is the key's shard (`api.<shard>.cliniko.com`): the fake is told its shard and refuses
  a key of another shard with 401;
- `GET /v1/appointment_types` pages of `per_page` (at most 100) with `total_entries` and `links`;
  `PATCH /v1/appointment_types/{id}` changes only the fields sent and bumps `updated_at`;
- 429 with `Retry-After` when a test scripts it (`fail`).
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from werkzeug.wrappers import Request, Response

from tests.helpers import serving

USER_AGENT = re.compile(r"^.+ \(.+@.+\)$")  # "App name (contact@example.com)"
DASHBOARD = "/fake-dashboard"
WRITABLE = {"name", "description", "duration_in_minutes", "show_in_online_bookings", "color", "max_attendees"}


@dataclass
class FakeCliniko:
    api_key: str = "MS0xLTEyMzQ1Njc4OTA-uk1"
    shard: str = "uk1"
    types: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    faults: list[tuple[str, int, int, str | None]] = field(
        default_factory=list
    )  # method, status, times, retry
    url: str = ""

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def add_type(self, type_id: str, name: str, online: bool = True, minutes: int = 30) -> None:
        self.types[type_id] = {
            "id": type_id, "name": name, "description": f"{name}, by appointment.", "category": "Aesthetics",
            "duration_in_minutes": minutes, "color": "#6f42c1", "max_attendees": 1,
            "show_in_online_bookings": online, "online_payments_enabled": False, "archived_at": None,
            "created_at": "2026-01-05T09:00:00Z", "updated_at": "2026-01-05T09:00:00Z",
            "links": {"self": f"https://api.{self.shard}.cliniko.com/v1/appointment_types/{type_id}"},
        }  # fmt: skip

    def online(self, type_id: str) -> bool:
        return bool(self.types[type_id]["show_in_online_bookings"])

    def staff_set(self, type_id: str, online: bool) -> None:
        """A change made in Cliniko's settings by staff."""
        with self._lock:
            self.types[type_id]["show_in_online_bookings"] = online
            self.types[type_id]["updated_at"] = _now()

    def fail(self, method: str, status: int, times: int = 1, retry_after: str | None = None) -> None:
        self.faults.append((method, status, times, retry_after))

    def patches(self) -> list[tuple[str, dict[str, str]]]:
        return [(path, headers) for method, path, headers in self.requests if method == "PATCH"]

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        return self._answer(Request(environ))(environ, start_response)

    def _answer(self, request: Request) -> Response:
        if request.path.startswith(
            DASHBOARD
        ):  # not Cliniko's API: what staff see and do in Cliniko's settings
            type_id = request.path.removeprefix(DASHBOARD).strip("/")
            if request.method == "POST" and type_id in self.types:
                self.staff_set(
                    type_id, bool((request.get_json(silent=True) or {}).get("show_in_online_bookings"))
                )
            return _json({i: {"name": t["name"], "show_in_online_bookings": t["show_in_online_bookings"]}
                          for i, t in self.types.items()})  # fmt: skip
        self.requests.append((request.method, request.full_path.rstrip("?"), dict(request.headers)))
        if not USER_AGENT.match(request.headers.get("User-Agent", "")):
            return _json({"message": "A User-Agent naming your app and a contact email is required."}, 400)
        if (
            request.headers.get("Authorization")
            != "Basic " + base64.b64encode(f"{self.api_key}:".encode()).decode()
        ):
            return _json({"message": "Unauthorized"}, 401)
        for i, (method, status, times, retry_after) in enumerate(self.faults):
            if times and method == request.method:
                self.faults[i] = (method, status, times - 1, retry_after)
                return _json(
                    {"message": "Scripted by the test."}, status, {"Retry-After": retry_after or "1"}
                )
        if request.method == "GET" and request.path == "/v1/appointment_types":
            return self._list(request)
        match = re.fullmatch(r"/v1/appointment_types/([^/]+)", request.path)
        if match and request.method == "GET" and match[1] in self.types:
            return _json(self.types[match[1]])
        if match and request.method == "PATCH" and match[1] in self.types:
            body = request.get_json(silent=True)
            if not isinstance(body, dict) or not set(body) <= WRITABLE:
                return _json({"errors": {"base": ["Unknown or read-only fields."]}}, 422)
            with self._lock:
                self.types[match[1]] |= body | {"updated_at": _now()}
            return _json(self.types[match[1]])
        return _json({"message": "Not found"}, 404)

    def _list(self, request: Request) -> Response:
        per_page = min(int(request.args.get("per_page", 50)), 100)
        page = int(request.args.get("page", 1))
        live = [t for t in self.types.values() if not t["archived_at"]]
        chunk = live[(page - 1) * per_page : page * per_page]
        base = f"https://api.{self.shard}.cliniko.com/v1/appointment_types?per_page={per_page}"
        links = {"self": f"{base}&page={page}"} | (
            {"next": f"{base}&page={page + 1}"} if page * per_page < len(live) else {}
        )
        return _json({"appointment_types": chunk, "total_entries": len(live), "links": links})


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _json(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(payload), status, headers or {}, content_type="application/json")


@contextmanager
def fake_cliniko(**options: Any) -> Iterator[FakeCliniko]:
    fake = FakeCliniko(**options)
    with serving(fake) as url:
        fake.url = url + "/v1"
        yield fake


def main() -> None:
    """`make fake-cliniko`: a fake Cliniko with the demo catalogue's appointment types, until Ctrl-C."""
    import argparse

    from werkzeug.serving import run_simple

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--port", type=int, default=8101)
    args = parser.parse_args()
    fake = FakeCliniko()
    for type_id, name in (
        ("1001", "Anti-wrinkle injections"),
        ("1002", "Dermal fillers"),
        ("1003", "Fat freezing"),
    ):
        fake.add_type(type_id, name)
    print(f"Fake Cliniko on http://127.0.0.1:{args.port}/v1 (API key: {fake.api_key}); appointment types")
    print(f"and their online booking: GET http://127.0.0.1:{args.port}{DASHBOARD}", flush=True)
    run_simple("127.0.0.1", args.port, fake, threaded=True)


if __name__ == "__main__":
    main()
