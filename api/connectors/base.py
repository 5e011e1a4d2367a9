"""What every booking system's module provides, and the HTTP they all speak through.

A system is one module with one class (`square.Square`, ...): it reads which of the services it is
given are offered for online booking, and switches one on or off. Everything else (what should
be offered, what was hidden by whom, retries, bookkeeping) is the same for every system and lives
in `plan`, `service` and `worker`. No Flask here.

`Http` sends every request through `api.outbound` (resolve once, public addresses only, loopback
only where allowed) and retries what is worth retrying: a 429 waits for its `Retry-After`, a 5xx
or a timeout backs off exponentially with jitter. Each request is kept as a `Call` for the
connector's log: method, path, status, duration, error; never a header, so never a credential.
"""

from __future__ import annotations

import datetime as dt
import http.client
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import orjson

from api import outbound
from api.db import utcnow

MAX_RESPONSE_BYTES = 4 * 1024 * 1024
MAX_ERROR_LENGTH = 1000


class ConnectorError(Exception):
    """A pass could not finish; the message is fit for the connector's status (no secrets)."""


class Unavailable(ConnectorError):
    """The booking system is busy or down: try again later (`retry_after` seconds, if it said)."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class HttpSettings:
    timeout_seconds: float = 10.0
    max_attempts: int = 4  # per request, counting the first
    backoff_base_seconds: float = 0.5
    backoff_cap_seconds: float = 30.0
    max_retry_after_seconds: float = 30.0  # a longer Retry-After ends the pass; the worker waits it out
    allow_loopback: bool = False

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> HttpSettings:
        return cls(
            timeout_seconds=float(config["CONNECTORS_TIMEOUT_SECONDS"]),
            max_attempts=int(config["CONNECTORS_MAX_ATTEMPTS"]),
            backoff_base_seconds=float(config["CONNECTORS_BACKOFF_BASE_SECONDS"]),
            backoff_cap_seconds=float(config["CONNECTORS_BACKOFF_CAP_SECONDS"]),
            allow_loopback=bool(config["CONNECTORS_ALLOW_LOOPBACK_HTTP"]),
        )


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    status: int | None
    duration_ms: int
    error: str | None = None
    at: dt.datetime = field(default_factory=utcnow)


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any  # the decoded JSON, or None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def backoff(attempt: int, base: float, cap: float) -> float:
    """Full jitter: a random wait in [0, min(cap, base * 2^(attempt-1))] before retry `attempt`."""
    return random.uniform(0, min(cap, base * 2 ** (attempt - 1)))


def retry_after(headers: Mapping[str, str]) -> float | None:
    """A `Retry-After` in seconds (the date form is not used by the systems here), or None."""
    try:
        return max(0.0, float(headers.get("retry-after", "")))
    except ValueError:
        return None


@dataclass
class Http:
    base_url: str
    headers: Mapping[str, str]
    settings: HttpSettings
    label: str  # the system's name, for messages
    calls: list[Call] = field(default_factory=list)
    sleep: Callable[[float], None] = time.sleep

    def send(self, method: str, path: str, body: Any = None) -> Reply:
        """One logical request: retried on 429, 5xx and network failures, up to `max_attempts`.
        Any other answer is returned for the caller to read; giving up raises `Unavailable`."""
        payload = None if body is None else orjson.dumps(body)
        headers = dict(self.headers) | {"Accept": "application/json"}
        if payload is not None:
            headers["Content-Type"] = "application/json"
        s = self.settings
        problem, wait_hint = "", None
        for attempt in range(1, s.max_attempts + 1):
            if attempt > 1:
                wait = (
                    wait_hint
                    if wait_hint is not None
                    else backoff(attempt - 1, s.backoff_base_seconds, s.backoff_cap_seconds)
                )
                self.sleep(wait)
            wait_hint = None
            started = time.monotonic()
            try:
                response = outbound.request(
                    method, self.base_url.rstrip("/") + path, headers=headers, body=payload,
                    timeout=s.timeout_seconds, allow_loopback=s.allow_loopback,
                    max_body_bytes=MAX_RESPONSE_BYTES,
                )  # fmt: skip
            except outbound.OutboundError as error:  # refused before sending: retrying will not help
                self._log(method, path, None, started, str(error))
                raise ConnectorError(f"{self.label}: {error}") from None
            except (OSError, http.client.HTTPException) as error:
                problem = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
                self._log(method, path, None, started, problem)
                continue
            reply = Reply(response.status, _json(response.body))
            if response.status == 429:
                problem = f"{self.label} answered 429 (too many requests)"
                self._log(method, path, 429, started, problem)
                wait_hint = retry_after(response.headers)
                if wait_hint is not None and wait_hint > s.max_retry_after_seconds:
                    raise Unavailable(f"{problem}; it asks to wait {wait_hint:g} s", wait_hint)
                continue
            if response.status >= 500:
                problem = f"{self.label} answered {response.status}: {error_detail(reply.body)}"
                self._log(method, path, response.status, started, problem)
                continue
            self._log(method, path, response.status, started, None if reply.ok else error_detail(reply.body))
            return reply
        raise Unavailable(f"gave up after {s.max_attempts} attempts: {problem}")

    def _log(self, method: str, path: str, status: int | None, started: float, error: str | None) -> None:
        took = round((time.monotonic() - started) * 1000)
        self.calls.append(Call(method, path, status, took, error and error[:MAX_ERROR_LENGTH]))


def _json(body: bytes) -> Any:
    try:
        return orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        return None


def error_detail(body: Any) -> str:
    """The error codes and details a booking system sent back, in one line."""
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        return "; ".join(
            f"{e.get('code', '?')}: {e.get('detail', '')}".rstrip(": ")
            for e in body["errors"]
            if isinstance(e, dict)
        )[:MAX_ERROR_LENGTH]
    return "no details"


class BookingSystem(Protocol):
    """One booking system's side of a connector: `__init__(self, http: Http)`, and the rest below."""

    system: ClassVar[str]  # the key in a treatment's external_ids, and in `POST /v1/connectors`
    title: ClassVar[str]
    credential_fields: ClassVar[tuple[str, ...]]  # all required

    @staticmethod
    def default_base_url(credentials: Mapping[str, str]) -> str:
        """Where the vendor serves its API for these credentials."""
        ...

    @staticmethod
    def auth_headers(credentials: Mapping[str, str]) -> dict[str, str]:
        """The headers every request carries (authentication, API version, user agent)."""
        ...

    def read(self, external_ids: Sequence[str]) -> dict[str, bool]:
        """For each id that names a service: is it offered for online booking? Ids that name
        nothing (deleted, mistyped) are left out."""
        ...

    def switch(self, external_id: str, online: bool) -> bool:
        """Offer the service for online booking or not, changing nothing else about it; True if
        it changed (False: it already was so, or it is gone)."""
        ...
