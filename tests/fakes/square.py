"""A stateful fake of the part of Square's API the connector uses, served on 127.0.0.1.

It keeps catalog objects with versions as Square does: an upsert replaces the whole object and
must carry the stored `version` (a stale one is refused with `VERSION_MISMATCH`); a repeated
`idempotency_key` gets the first answer again; two catalog writes at once for the one seller get
429 (Square processes one at a time per seller). Tests script outages with `fail`, and edits in
Square's dashboard with `staff_set`.

Every request it receives and every answer it gives is validated against Square's own OpenAPI
document (tests/fixtures/square/, cut from Square's published document, Apache-2.0) with
openapi-core; error bodies, which Square's document leaves undescribed per status, are checked
against its `Error` schema's required fields and code enums. A violation is answered 400 and kept
in `violations`: tests assert there is none.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import itertools
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from openapi_core import OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
from werkzeug.wrappers import Request, Response

from tests.helpers import serving

DOCUMENT = Path(__file__).resolve().parents[1] / "fixtures" / "square" / "api-subset.json"
SQUARE_HOST = "https://connect.squareup.com"
DASHBOARD = "/fake-dashboard"  # the document's server: requests are matched as if sent there


@cache
def square_document() -> tuple[OpenAPI, dict[str, Any]]:
    from openapi_core import Config

    if not DOCUMENT.exists():
        raise FileNotFoundError(f"Square's OpenAPI document is missing: {DOCUMENT}")
    spec = OpenAPI.from_file_path(str(DOCUMENT), config=Config(spec_validator_cls=None))
    return spec, json.loads(DOCUMENT.read_text())


class _AsSentToSquare(WerkzeugOpenAPIRequest):
    @property
    def host_url(self) -> str:
        return SQUARE_HOST


@dataclass
class Fault:
    method: str
    path_prefix: str
    status: int
    times: int
    retry_after: str | None = None


@dataclass
class FakeSquare:
    token: str = "sq-test-token"
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    write_delay: float = 0.0  # seconds an upsert takes (to see concurrent writes refused)
    stall_seconds: float = 0.0  # every request waits this long first (a system that hangs)
    url: str = ""

    bookings: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Where a booking made on the dashboard is announced, signed, as Square's webhooks do (make fake-square).
    notify_url: str = ""
    signature_key: str = ""

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._writing = threading.Lock()
        self._versions = itertools.count(1_700_000_000_000)
        self._idempotent: dict[str, dict[str, Any]] = {}
        self._conflicts: dict[str, int] = {}

    # --- what tests set up and look at --------------------------------------------------------

    def add_service(self, variation_id: str, name: str, price: int = 25000, available: bool = True) -> None:
        """An appointment service: an ITEM with one ITEM_VARIATION, as Square Appointments makes them."""
        item_id = f"ITEM-{variation_id}"
        self.objects[item_id] = {
            "type": "ITEM", "id": item_id, "version": next(self._versions), "is_deleted": False,
            "present_at_all_locations": True,
            "item_data": {"name": name, "product_type": "APPOINTMENTS_SERVICE", "variations": []},
        }  # fmt: skip
        self.objects[variation_id] = {
            "type": "ITEM_VARIATION", "id": variation_id, "version": next(self._versions),
            "is_deleted": False, "present_at_all_locations": True, "updated_at": _now(),
            "item_variation_data": {
                "item_id": item_id, "name": f"{name} (60 min)", "pricing_type": "FIXED_PRICING",
                "price_money": {"amount": price, "currency": "EUR"}, "service_duration": 3_600_000,
                "available_for_booking": available, "sellable": True, "stockable": True,
                "team_member_ids": ["TM-ANNA", "TM-BRAM"], "ordinal": 1,
            },
        }  # fmt: skip

    def available(self, variation_id: str) -> bool:
        return bool(self.objects[variation_id]["item_variation_data"].get("available_for_booking"))

    def staff_set(self, variation_id: str, available: bool) -> None:
        """A change made in Square's dashboard: a new version."""
        with self._lock:
            variation = self.objects[variation_id]
            variation["item_variation_data"]["available_for_booking"] = available
            variation["version"] = next(self._versions)

    def conflict_next_writes(self, variation_id: str, times: int = 1) -> None:
        """Someone else edits the variation just before each of our next `times` writes."""
        self._conflicts[variation_id] = times

    def fail(
        self, method: str, path_prefix: str, status: int, times: int = 1, retry_after: str | None = None
    ) -> None:
        self.faults.append(Fault(method, path_prefix, status, times, retry_after))

    def add_booking(self, booking_id: str, *variation_ids: str, status: str = "ACCEPTED") -> dict[str, Any]:
        """A booking of those services (by staff at the desk, or online before a change arrived)."""
        self.bookings[booking_id] = {
            "id": booking_id, "version": 1, "status": status, "created_at": _now(), "updated_at": _now(),
            "location_id": "LOC-MAIN", "customer_id": "CUST-1", "start_at": "2026-12-08T10:00:00Z",
            "source": "FIRST_PARTY_MERCHANT",
            "appointment_segments": [
                {"duration_minutes": 60, "service_variation_id": v, "team_member_id": "TM-ANNA",
                 "service_variation_version": self.objects[v]["version"] if v in self.objects else 1}
                for v in variation_ids
            ],
        }  # fmt: skip
        return copy.deepcopy(self.bookings[booking_id])

    def notification(self, booking_id: str, event_id: str, event_type: str = "booking.created") -> bytes:
        """The body Square POSTs to a webhook subscription for a booking event (the booking as
        RetrieveBooking would answer it)."""
        event = {
            "merchant_id": "MERCHANT-1", "type": event_type, "event_id": event_id, "created_at": _now(),
            "data": {"type": "booking", "id": booking_id,
                     "object": {"booking": copy.deepcopy(self.bookings[booking_id])}},
        }  # fmt: skip
        return json.dumps(event).encode()

    def writes(self) -> list[dict[str, Any]]:
        return [
            body for method, path, body in self.requests if (method, path) == ("POST", "/v2/catalog/object")
        ]

    # --- serving ------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        response = self._answer(request)
        return response(environ, start_response)

    def _answer(self, request: Request) -> Response:
        if request.path.startswith(DASHBOARD):
            return self._dashboard(request)
        spec, document = square_document()
        time.sleep(self.stall_seconds)
        body = request.get_json(silent=True)
        self.requests.append((request.method, request.path, body))
        try:
            spec.validate_request(_AsSentToSquare(request))
        except Exception as error:  # noqa: BLE001 - any validation failure is a violation
            return self._violation(f"request {request.method} {request.path}: {error}")
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return _error(
                401, "AUTHENTICATION_ERROR", "UNAUTHORIZED", "This request could not be authorized."
            )
        if not request.headers.get("Square-Version"):
            return self._violation("request without a Square-Version header")
        fault = self._fault(request)
        if fault is not None:
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            category = "RATE_LIMIT_ERROR" if fault.status == 429 else "API_ERROR"
            code = "RATE_LIMITED" if fault.status == 429 else "INTERNAL_SERVER_ERROR"
            return _error(fault.status, category, code, "Scripted by the test.", headers)
        response = self._route(request, body or {})
        if 200 <= response.status_code < 300:
            try:
                spec.validate_response(_AsSentToSquare(request), WerkzeugOpenAPIResponse(response))
            except Exception as error:  # noqa: BLE001
                return self._violation(f"response to {request.method} {request.path}: {error}")
        else:
            self._check_error_body(document, response)
        return response

    def _route(self, request: Request, body: dict[str, Any]) -> Response:
        path = request.path
        if request.method == "POST" and path == "/v2/catalog/batch-retrieve":
            found = [copy.deepcopy(self.objects[i]) for i in body["object_ids"] if i in self.objects]
            return _json({"objects": found} if found else {})
        if request.method == "GET" and path.startswith("/v2/catalog/object/"):
            object_id = path.removeprefix("/v2/catalog/object/")
            if object_id not in self.objects:
                return _error(404, "INVALID_REQUEST_ERROR", "NOT_FOUND", f"Object `{object_id}` not found.")
            return _json({"object": copy.deepcopy(self.objects[object_id])})
        if request.method == "POST" and path == "/v2/catalog/object":
            return self._upsert(body)
        if path.startswith("/v2/bookings/"):
            return self._booking(request.method, path.removeprefix("/v2/bookings/"), body)
        return _error(404, "INVALID_REQUEST_ERROR", "NOT_FOUND", "Not served by the fake.")

    def _upsert(self, body: dict[str, Any]) -> Response:
        key = body["idempotency_key"]
        if key in self._idempotent:
            return _json(self._idempotent[key])
        if not self._writing.acquire(blocking=False):
            return _error(
                429, "RATE_LIMIT_ERROR", "RATE_LIMITED", "Only one catalog write at a time per seller."
            )
        try:
            time.sleep(self.write_delay)
            with self._lock:
                new = body["object"]
                stored = self.objects.get(new["id"])
                if stored is None:
                    return _error(
                        404, "INVALID_REQUEST_ERROR", "NOT_FOUND", f"Object `{new['id']}` not found."
                    )
                if self._conflicts.get(new["id"]):
                    self._conflicts[new["id"]] -= 1
                    stored["version"] = next(self._versions)  # someone else's edit lands first
                if new.get("version") != stored["version"]:
                    return _error(
                        409, "INVALID_REQUEST_ERROR", "CONFLICT",
                        "Object version does not match latest database version.", field_name="version",
                    )  # fmt: skip
                replaced = copy.deepcopy(new) | {"version": next(self._versions), "updated_at": _now()}
                if "ordinal" in stored.get("item_variation_data", {}):  # read-only: Square keeps its own
                    replaced["item_variation_data"]["ordinal"] = stored["item_variation_data"]["ordinal"]
                self.objects[new["id"]] = replaced
                answer = {"catalog_object": copy.deepcopy(replaced), "id_mappings": []}
                self._idempotent[key] = answer
                return _json(answer)
        finally:
            self._writing.release()

    def _dashboard(self, request: Request) -> Response:
        """Not Square's API: a stand-in for Square's dashboard, where staff switch online booking.
        `GET /fake-dashboard` lists the services; `POST /fake-dashboard/{id}` with
        `{"available_for_booking": true}` switches one as staff would."""
        variation_id = request.path.removeprefix(DASHBOARD).strip("/")
        if request.method == "POST" and variation_id == "bookings":
            return self._book_at_the_desk(request.get_json(silent=True) or {})
        if request.method == "POST" and variation_id in self.objects:
            self.staff_set(
                variation_id, bool((request.get_json(silent=True) or {}).get("available_for_booking"))
            )
        services = {
            i: {"name": o["item_variation_data"]["name"], "available_for_booking": self.available(i),
                "version": o["version"]}
            for i, o in self.objects.items() if o["type"] == "ITEM_VARIATION"
        }  # fmt: skip
        return _json(services)

    def _booking(self, method: str, rest: str, body: dict[str, Any]) -> Response:
        booking_id, _, action = rest.partition("/")
        booking = self.bookings.get(booking_id)
        if booking is None:
            return _error(404, "INVALID_REQUEST_ERROR", "NOT_FOUND", f"Booking `{booking_id}` not found.")
        if method == "GET" and not action:
            return _json({"booking": copy.deepcopy(booking)})
        if method == "POST" and action == "cancel":
            with self._lock:
                if body.get("booking_version") is not None and body["booking_version"] != booking["version"]:
                    return _error(409, "INVALID_REQUEST_ERROR", "CONFLICT", "Booking version mismatch.")
                if booking["status"] not in ("PENDING", "ACCEPTED"):
                    return _error(400, "INVALID_REQUEST_ERROR", "BAD_REQUEST", "The booking is not active.")
                booking |= {
                    "status": "CANCELLED_BY_SELLER",
                    "version": booking["version"] + 1,
                    "updated_at": _now(),
                }
                return _json({"booking": copy.deepcopy(booking)})
        return _error(404, "INVALID_REQUEST_ERROR", "NOT_FOUND", "Not served by the fake.")

    def _book_at_the_desk(self, asked: dict[str, Any]) -> Response:
        """`POST /fake-dashboard/bookings` `{"services": ["SQ-EXO"]}`: staff book at the desk (which
        Square allows even for a service off online booking); announced to `notify_url`, signed."""
        import urllib.request

        booking = self.add_booking(f"BK-{len(self.bookings) + 1}", *asked.get("services", []))
        sent = None
        if self.notify_url:
            body = self.notification(booking["id"], f"evt-{booking['id']}")
            digest = hmac.new(self.signature_key.encode(), self.notify_url.encode() + body, hashlib.sha256)
            signature = base64.b64encode(digest.digest()).decode()
            headers = {"Content-Type": "application/json", "x-square-hmacsha256-signature": signature}
            request = urllib.request.Request(self.notify_url, body, headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=10) as answer:
                    sent = json.loads(answer.read())
            except urllib.error.HTTPError as error:
                sent = {"status": error.code}
        return _json({"booking": copy.deepcopy(self.bookings[booking["id"]]), "notification_answer": sent})

    def _fault(self, request: Request) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if (
                    fault.times
                    and request.method == fault.method
                    and request.path.startswith(fault.path_prefix)
                ):
                    fault.times -= 1
                    return fault
        return None

    def _violation(self, message: str) -> Response:
        self.violations.append(message)
        return _error(400, "INVALID_REQUEST_ERROR", "BAD_REQUEST", message[:500])

    def _check_error_body(self, document: dict[str, Any], response: Response) -> None:
        schemas = document["components"]["schemas"]
        errors = json.loads(response.get_data()).get("errors")
        for error in errors or [None]:
            if not isinstance(error, dict) or not {"category", "code"} <= error.keys():
                self.violations.append(f"error body without category and code: {errors}")
            elif error["category"] not in schemas["ErrorCategory"]["enum"]:
                self.violations.append(f"unknown error category {error['category']}")
            elif error["code"] not in schemas["ErrorCode"]["enum"]:
                self.violations.append(f"unknown error code {error['code']}")


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())


def _json(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(payload), status, headers or {}, content_type="application/json")


def _error(
    status: int, category: str, code: str, detail: str, headers: dict[str, str] | None = None,
    field_name: str | None = None,
) -> Response:  # fmt: skip
    error = {"category": category, "code": code, "detail": detail} | (
        {"field": field_name} if field_name else {}
    )
    return _json({"errors": [error]}, status, headers)


@contextmanager
def fake_square(**options: Any) -> Iterator[FakeSquare]:
    """A FakeSquare serving on a free loopback port (its `url`) for the block."""
    fake = FakeSquare(**options)
    with serving(fake) as url:
        fake.url = url
        yield fake


def main() -> None:
    """`make fake-square`: a fake Square with the demo catalogue's services, until Ctrl-C."""
    import argparse

    from werkzeug.serving import run_simple

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--token", default="sandbox-access-token")
    parser.add_argument("--notify-url", default="", help="where bookings made on the dashboard are announced")
    parser.add_argument("--signature-key", default="sandbox-signature-key")
    args = parser.parse_args()
    fake = FakeSquare(token=args.token, notify_url=args.notify_url, signature_key=args.signature_key)
    for variation_id, name in (
        ("SQ-BTX", "Botulinum toxin"),
        ("SQ-HAF", "Hyaluronic acid fillers"),
        ("SQ-EXO", "Exosome facial"),
    ):
        fake.add_service(variation_id, name)
    print(f"Fake Square on http://127.0.0.1:{args.port} (access token: {args.token}); services and their")
    print(f"online booking: GET http://127.0.0.1:{args.port}{DASHBOARD}", flush=True)
    run_simple("127.0.0.1", args.port, fake, threaded=True)


if __name__ == "__main__":
    main()
