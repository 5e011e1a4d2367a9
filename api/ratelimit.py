"""Rate limits per client: public reads, booking checks, failed authentication.

Clients are told apart by API key when they send a valid one (they get the higher
`RATE_LIMIT_AUTHENTICATED`), otherwise by address. Counters live in `RATE_LIMIT_STORAGE_URL`:
memory (per process) by default, Redis in production so they hold across workers.

The counting is the `limits` library's (fixed windows). Flask-Limiter, the extension built on
it, resolved and injected its limits in about 250 µs a request, more than a whole cached read
costs; the API's limits are three fixed ones, so each request makes one `hit` and one window
read here (about 15 µs with memory storage). `api.readcache.middleware` counts its answers
with the same `RateLimits.count`. As with Flask-Limiter's default limits, a client's count is
kept per endpoint.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass

from flask import Flask, Response, current_app, g, request
from limits import parse
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter

from api.errors import DomainError

log = logging.getLogger(__name__)

_verified: dict[str, tuple[bool, float]] = {}  # token hash -> (valid, checked at)
VERIFIED_TTL = 60.0
EXEMPT_PREFIXES = ("/health/", "/docs")


class TooManyRequests(DomainError):
    status, slug, title = 429, "too-many-requests", "Too many requests"


@dataclass(frozen=True)
class Window:
    """One client's standing in one limit, after this request was counted."""

    allowed: bool
    limit: int
    remaining: int
    reset_at: int  # epoch seconds when the window ends

    def headers(self) -> list[tuple[str, str]]:
        return [
            ("X-RateLimit-Limit", str(self.limit)),
            ("X-RateLimit-Remaining", str(self.remaining)),
            ("X-RateLimit-Reset", str(self.reset_at)),
        ]

    def retry_after(self) -> str:
        return str(max(1, self.reset_at - int(time.time())))


class RateLimits:
    """The API's limits and the storage that counts them."""

    def __init__(self, config: dict[str, object]) -> None:
        self.enabled = bool(config["RATELIMIT_ENABLED"])
        self.prefix = str(config.get("RATELIMIT_KEY_PREFIX") or "tpa")
        self.counter = FixedWindowRateLimiter(storage_from_string(str(config["RATE_LIMIT_STORAGE_URL"])))
        self.public = parse(str(config["RATE_LIMIT_PUBLIC"]))
        self.booking = parse(str(config["RATE_LIMIT_BOOKING"]))
        self.authenticated = parse(str(config["RATE_LIMIT_AUTHENTICATED"]))
        self.auth_failures = parse(str(config["RATE_LIMIT_AUTH_FAILURES"]))
        self.items = {"public": self.public, "booking": self.booking, "key": self.authenticated}

    def count(self, kind: str, endpoint: str, client: str) -> Window | None:
        """Count one request of `client` to `endpoint` against its `kind` of limit (`public`,
        `booking` or `key`); None when the storage cannot be reached (the request goes ahead:
        reads must not depend on the limiter's Redis)."""
        item, scope = self.items[kind], f"{kind}:{endpoint}"
        try:
            allowed = self.counter.hit(item, self.prefix, scope, client)
            reset, remaining = self.counter.get_window_stats(item, self.prefix, scope, client)
        except Exception:  # the storage's own connection errors; nothing here can be repaired
            log.warning("rate-limit storage unreachable; request not counted", exc_info=True)
            return None
        return Window(allowed, item.amount, remaining, int(reset + 1))

    def failures_exceeded(self, address: str) -> Window | None:
        """The address's failed-authentication window, if it is used up."""
        try:
            if self.counter.test(self.auth_failures, self.prefix, "auth-failures", address):
                return None
            reset, remaining = self.counter.get_window_stats(
                self.auth_failures, self.prefix, "auth-failures", address
            )
        except Exception:
            log.warning("rate-limit storage unreachable; failure limit not checked", exc_info=True)
            return None
        return Window(False, self.auth_failures.amount, remaining, int(reset + 1))

    def note_failure(self, address: str) -> None:
        try:
            self.counter.hit(self.auth_failures, self.prefix, "auth-failures", address)
        except Exception:
            log.warning("rate-limit storage unreachable; failure not counted", exc_info=True)


def rate_limits() -> RateLimits:
    limits: RateLimits = current_app.extensions["rate_limits"]
    return limits


def _token() -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _valid_key(token: str) -> bool:
    """Whether a bearer token is a live key; remembered briefly so limits cost no query."""
    from api.api_keys.service import verify_key
    from api.db import get_session

    digest = hashlib.sha256(token.encode()).hexdigest()
    known = _verified.get(digest)
    if known and time.monotonic() - known[1] < VERIFIED_TTL:
        return known[0]
    valid = verify_key(get_session(), token) is not None
    if len(_verified) > 10_000:
        _verified.clear()
    _verified[digest] = (valid, time.monotonic())
    return valid


def client_key() -> str:
    """Who the client is, for its limits: a valid key, else the address."""
    token = _token()
    if token and _valid_key(token):
        return "key:" + hashlib.sha256(token.encode()).hexdigest()[:32]
    return address_key(request.remote_addr)


def address_key(address: str | None) -> str:
    return "addr:" + (address or "unknown")


def check_auth_failures() -> None:
    """Refuse an authentication attempt from an address that failed too often (429)."""
    limits = rate_limits()
    if not limits.enabled:
        return
    window = limits.failures_exceeded(request.remote_addr or "unknown")
    if window is not None:
        raise TooManyRequests(
            "Too many failed authentication attempts from this address; wait and retry.",
            headers={"Retry-After": window.retry_after()},
        )


def note_auth_failure() -> None:
    limits = rate_limits()
    if limits.enabled:
        limits.note_failure(request.remote_addr or "unknown")


def _enforce() -> None:
    """Count the request against its client's limit; over it, 429 with Retry-After."""
    if request.endpoint is None or request.path.startswith(EXEMPT_PREFIXES):
        return
    limits = rate_limits()
    client = client_key()
    if client.startswith("key:"):
        kind = "key"
    elif request.path == "/v1/booking-checks":
        kind = "booking"
    else:
        kind = "public"
    window = g.rate_limit = limits.count(kind, request.endpoint, client)
    if window is not None and not window.allowed:
        raise TooManyRequests(
            f"Rate limit exceeded ({limits.items[kind]}); wait and retry.",
            headers={"Retry-After": window.retry_after()},
        )


def _add_headers(response: Response) -> Response:
    window = g.get("rate_limit")
    if window is not None:
        for name, value in window.headers():
            response.headers[name] = value
    return response


def init_app(app: Flask) -> None:
    limits = app.extensions["rate_limits"] = RateLimits(app.config)
    if limits.enabled:
        app.before_request(_enforce)
        app.after_request(_add_headers)
