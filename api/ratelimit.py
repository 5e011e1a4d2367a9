"""Rate limits per client (Flask-Limiter): public reads, booking checks, failed authentication.

Clients are told apart by API key when they send a valid one (they get the higher
`RATE_LIMIT_AUTHENTICATED`), otherwise by address. Limits live in `RATE_LIMIT_STORAGE_URL`:
memory (per process) by default, Redis in production so they hold across workers.
"""

from __future__ import annotations

import hashlib
import time

from flask import Flask, Response, current_app, g, request
from flask_limiter import HeaderNames, Limiter
from limits import parse

from api.errors import DomainError

_verified: dict[str, tuple[bool, float]] = {}  # token hash -> (valid, checked at)
VERIFIED_TTL = 60.0
LIMITER_RETRY_AFTER = "X-Limiter-Retry-After"  # internal: moved to Retry-After on a 429 only


class TooManyAuthFailures(DomainError):
    status, slug, title = 429, "too-many-requests", "Too many requests"


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
    """Who the client is, for its limits: worked out once per request."""
    if "rate_limit_client" not in g:
        token = _token()
        if token and _valid_key(token):
            g.rate_limit_client = "key:" + hashlib.sha256(token.encode()).hexdigest()[:32]
        else:
            g.rate_limit_client = "addr:" + (request.remote_addr or "unknown")
    client: str = g.rate_limit_client
    return client


def limit_for_request() -> str:
    config = current_app.config
    if client_key().startswith("key:"):
        return config["RATE_LIMIT_AUTHENTICATED"]
    if request.path == "/v1/booking-checks":
        return config["RATE_LIMIT_BOOKING"]
    return config["RATE_LIMIT_PUBLIC"]


def _limiter() -> Limiter | None:
    limiter: Limiter = current_app.extensions["rate_limiter"]
    return limiter if current_app.config["RATELIMIT_ENABLED"] else None


def check_auth_failures() -> None:
    """Refuse an authentication attempt from an address that failed too often (429)."""
    limiter = _limiter()
    if limiter is None:
        return
    item = parse(current_app.config["RATE_LIMIT_AUTH_FAILURES"])
    address = request.remote_addr or "unknown"
    if not limiter.limiter.test(item, "auth-failures", address):
        reset, _remaining = limiter.limiter.get_window_stats(item, "auth-failures", address)
        retry_after = max(1, int(reset - time.time()))
        raise TooManyAuthFailures(
            "Too many failed authentication attempts from this address; wait and retry.",
            headers={"Retry-After": str(retry_after)},
        )


def note_auth_failure() -> None:
    limiter = _limiter()
    if limiter is not None:
        item = parse(current_app.config["RATE_LIMIT_AUTH_FAILURES"])
        limiter.limiter.hit(item, "auth-failures", request.remote_addr or "unknown")


def _retry_after_only_when_limited(response: Response) -> Response:
    """Flask-Limiter would put its window's Retry-After on every response, overriding a 503's
    own; it belongs only on a 429 that has none."""
    limiter_value = response.headers.pop(LIMITER_RETRY_AFTER, None)
    if response.status_code == 429 and limiter_value and "Retry-After" not in response.headers:
        response.headers["Retry-After"] = limiter_value
    return response


def init_app(app: Flask) -> None:
    """One limiter per app, storing its counters in `RATE_LIMIT_STORAGE_URL`."""
    app.config["RATELIMIT_STORAGE_URI"] = app.config["RATE_LIMIT_STORAGE_URL"]
    app.config.setdefault("RATELIMIT_KEY_PREFIX", "tpa")
    # Registered before the limiter, so it runs after the limiter has added its headers.
    app.after_request(_retry_after_only_when_limited)
    limiter = Limiter(
        key_func=client_key,
        default_limits=[limit_for_request],
        headers_enabled=True,
        header_name_mapping={HeaderNames.RETRY_AFTER: LIMITER_RETRY_AFTER},
        default_limits_exempt_when=lambda: request.path.startswith(("/health/", "/docs")),
    )
    limiter.init_app(app)
    app.extensions["rate_limiter"] = limiter
