"""Configuration defaults, overlaid by the environment"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit


class Config:
    """Defaults for every setting; `create_app` overlays `TPA_*` env vars and test mappings."""

    # The embedded default is SQLite in the instance folder (filled in by create_app).
    DATABASE_URL: str | None = None
    DATABASE_ECHO = False

    MAX_CONTENT_LENGTH = 1024 * 1024  # 1 MiB; larger bodies answer 413
    MAX_URI_LENGTH = 8190  # longer request URIs answer 414 (gunicorn's own line limit is lifted)

    # Evidence rules (see README, "Evidence rules")
    EVIDENCE_SMALL_STUDY_PARTICIPANTS = 100  # fewer than this is a "small" study
    EVIDENCE_LONG_TERM_MONTHS = 12  # at least this is "long-term" follow-up
    POLICY_MINIMUM_EVIDENCE_LEVEL = "moderate"
    POLICY_RECOGNISED_REGULATORS = ("FDA", "EMA", "HPRA", "MHRA", "EU_MDR", "TGA", "HC")
    # A `warning_issued` regulatory entry on an approved treatment suspends its bookings at once,
    # until a decision (README "Booking checks"). TPA_POLICY_SUSPEND_ON_WARNING=false turns it off.
    POLICY_SUSPEND_ON_WARNING = True

    REVIEW_INTERVAL_MONTHS = 12  # after a decision, the next review is due in this many months
    REVIEW_INTERVAL_MONTHS_UNDER_REVIEW = 6
    IMPORT_MAX_RECORDS = 500  # references per literature import; more answers 422

    LIST_DEFAULT_PAGE_SIZE = 50
    LIST_MAX_PAGE_SIZE = 100
    BOOKING_CHECK_MAX_TREATMENTS = 100

    CLINIC_NAME = "The Clinic"

    # Where the public pages are reached (README "For the clinic's website"): the one source of every
    # public URL (canonical links, OpenGraph, sitemap, feed, JSON-LD), never a request's Host header.
    # A server refuses to start without it (`public_base_url`); `make run` sets it to itself.
    PUBLIC_BASE_URL: str | None = None
    # One stylesheet the clinic supplies, linked after the pages' own and allowed by their CSP.
    PUBLIC_STYLESHEET_URL: str | None = None
    # How long the <treatment-status> widget waits for the API before its neutral fallback.
    WIDGET_TIMEOUT_MS = 3000

    # Database connection bounds: a request never waits longer than these for the database.
    DATABASE_CONNECT_TIMEOUT = 3  # seconds
    DATABASE_STATEMENT_TIMEOUT_MS = 5000
    DATABASE_POOL_TIMEOUT = 5  # seconds waiting for a pooled connection
    # Beyond the statement timeout, how long the client waits for a server that stopped
    # answering before it closes the connection (api/db.py: a frozen server, a silent network).
    DATABASE_WAIT_MARGIN_MS = 1000
    # Connections per process (README "Connections"): the request pool, and the side pool of
    # one-query probes (one kept; more only while probes overlap). A cache listener adds one.
    DATABASE_POOL_SIZE = 2
    DATABASE_MAX_OVERFLOW = 2
    DATABASE_SIDE_MAX_OVERFLOW = 1

    LOG_JSON = True
    LOG_LEVEL = "INFO"
    LOG_REQUESTS = True
    HSTS = False  # set when served over HTTPS

    # Rate limits (the `limits` library). Memory storage is per process; use Redis in production.
    RATE_LIMIT_STORAGE_URL = "memory://"
    RATELIMIT_ENABLED = True
    RATE_LIMIT_PUBLIC = "300/minute"  # per client address: public reads
    RATE_LIMIT_BOOKING = "600/minute"  # per client address: booking checks
    RATE_LIMIT_AUTHENTICATED = "3000/minute"  # per API key
    RATE_LIMIT_AUTH_FAILURES = "20/minute"  # failed authentications per client address
    TRUSTED_PROXY_HOPS = 0  # X-Forwarded-For hops to trust for the client address

    IDEMPOTENCY_TTL_HOURS = 24
    IDEMPOTENCY_CLAIM_SECONDS = 60  # an in-progress claim older than this was abandoned

    # HTTP caching of public reads (see api/readcache/)
    CACHE_MAX_AGE = 60
    CACHE_STALE_WHILE_REVALIDATE = 30
    READ_CACHE_MAX_ENTRIES = 4096
    READ_CACHE_MAX_BYTES = 32 * 1024 * 1024  # per worker process
    # How caches learn of writes (api/readcache/version.py): "auto" (PostgreSQL: LISTEN/NOTIFY,
    # trusted while the listener is confirmed alive; SQLite: data_version) or "database" (every
    # public read asks the database; for a pooler in transaction mode, which cannot LISTEN).
    CACHE_COHERENCE = "auto"
    # The longest a worker trusts its caches without hearing from its listener: the staleness
    # bound when the listener's connection dies silently. It proves itself 4 times as often.
    CACHE_LISTENER_TRUST_SECONDS = 1.0
    CACHE_FAST_PATH = True  # answer cache hits before Flask (api/readcache/middleware.py)

    # Browser origins (the clinic's website) allowed to read and run booking checks cross-origin.
    # Writes are never opened cross-origin.
    CORS_ORIGINS: tuple[str, ...] = ()

    # Webhooks (see README, "Webhooks")
    WEBHOOKS_ALLOW_LOOPBACK_HTTP = False  # http:// to, and delivery to, loopback addresses; dev and tests
    WEBHOOKS_TIMEOUT_SECONDS = 5.0  # per request (connect, and each read)
    WEBHOOKS_BACKOFF_BASE_SECONDS = 30  # retry n waits a random time in [0, min(cap, base * 2^(n-1))]
    WEBHOOKS_BACKOFF_CAP_SECONDS = 6 * 3600
    WEBHOOKS_MAX_ATTEMPTS = 12  # give up after this many attempts ...
    WEBHOOKS_RETRY_WINDOW_HOURS = 24  # ... once the event has also waited this long
    WEBHOOKS_DISABLE_AFTER_FAILURES = 20  # consecutive failed attempts that deactivate a subscription
    WEBHOOKS_POLL_INTERVAL_SECONDS = 5.0  # the worker's pause between passes
    WEBHOOKS_BATCH_SIZE = 100  # deliveries claimed at once (one per subscription per round)
    WEBHOOKS_MAX_PARALLEL = 8  # concurrent requests, each to a different subscription

    # Booking-system connectors (see README, "Connecting the booking system")
    # Fernet keys encrypting connectors' credentials, newest first (comma-separated in TPA_SECRET_KEYS).
    SECRET_KEYS: tuple[str, ...] = ()
    CONNECTORS_ALLOW_LOOPBACK_HTTP = False  # http:// to loopback addresses; development and tests
    CONNECTORS_TIMEOUT_SECONDS = 10.0  # per request (connect, and each read)
    CONNECTORS_MAX_ATTEMPTS = 4  # per request: 429, 5xx and network failures are retried
    CONNECTORS_BACKOFF_BASE_SECONDS = 0.5  # between those attempts: full jitter, doubling ...
    CONNECTORS_BACKOFF_CAP_SECONDS = 30.0  # ... up to this
    CONNECTORS_POLL_SECONDS = 0.5  # how often the worker reads the change feed
    CONNECTORS_RECONCILE_SECONDS = 300.0  # a full pass (drift, mappings) this often
    CONNECTORS_PASS_BACKOFF_BASE_SECONDS = 2.0  # a failed pass is retried after a backoff ...
    CONNECTORS_PASS_BACKOFF_CAP_SECONDS = 300.0  # ... up to this (or the system's Retry-After)
    # The staff console (api/console/, api/staff/; README "Staff console"). SECRET_KEY signs its
    # CSRF tokens: every worker on every host needs the same one. A server refuses to start without
    # it (`secret_key`); `make run` keeps one in instance/secret_key. Commands and tests, which
    # serve no form, make one of their own.
    SECRET_KEY: str | None = None
    CONSOLE_BASE_URL = "http://127.0.0.1:8000"  # where sign-in links printed by the CLI point
    CONSOLE_IDLE_MINUTES = 30  # a console session unused this long is ended
    CONSOLE_SESSION_MAX_HOURS = 12  # and any console session this long after it began
    CONSOLE_SIGN_IN_LINK_HOURS = 24  # a one-time sign-in link expires after this
    CONSOLE_PASSWORD_MIN_LENGTH = 12
    # Failed sign-ins per account and client address; over it, that account from that address
    # waits (other people, and the same person elsewhere, are not locked out).
    CONSOLE_SIGN_IN_LIMIT = "10/15 minutes"
    # Flask's session is the console's server-side session (api/staff/sessions.py): its cookie
    # holds only a random token, sent back only to /console.
    SESSION_COOKIE_NAME = "tpa_console"
    SESSION_COOKIE_PATH = "/console"
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    # CSRF (Flask-WTF) is checked by the console on its own forms; the API's JSON routes are
    # key-authenticated and never read the session. Referrer-Policy is no-referrer everywhere, so
    # the Referer check Flask-WTF makes under HTTPS would refuse every form: the token and
    # SameSite=Lax cookies do the work.
    WTF_CSRF_CHECK_DEFAULT = False
    WTF_CSRF_SSL_STRICT = False
    WTF_CSRF_TIME_LIMIT: int | None = None  # a token lives as long as its session

    API_TITLE = "Treatment Policy API"
    API_VERSION = "1.0.0"
    OPENAPI_VERSION = "3.1.0"
    OPENAPI_URL_PREFIX = "/"
    OPENAPI_JSON_PATH = "v1/openapi.json"
    OPENAPI_SWAGGER_UI_PATH = "docs"
    OPENAPI_SWAGGER_UI_URL = "/docs/assets/"
    API_SPEC_OPTIONS: dict[str, Any] = {
        "info": {
            "description": (
                "The clinic's single source of truth for which aesthetic treatments it offers, "
                "which it refuses, and why. Public reads need no credentials."
            ),
        },
        "servers": [{"url": "/", "description": "This server"}],
    }


class ConfigError(RuntimeError):
    """A setting missing or malformed: raised by `create_app`, so a server fails at start."""


def public_base_url(config: Mapping[str, Any], *, required: bool) -> str | None:
    """`PUBLIC_BASE_URL` checked and without a trailing slash: an absolute http(s) URL with no query
    or fragment. Missing, it is an error when `required` (a server), else None."""
    value = (config.get("PUBLIC_BASE_URL") or "").strip()
    if not value:
        if required:
            raise ConfigError(
                "TPA_PUBLIC_BASE_URL is required: where the public pages are reached, e.g. "
                "https://www.clinic.example (every public URL is built from it, never from a request)."
            )
        return None
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.hostname or parts.query or parts.fragment:
        raise ConfigError(
            f"TPA_PUBLIC_BASE_URL must be an absolute http(s) URL without query or fragment, not {value!r}."
        )
    return value.rstrip("/")


def public_stylesheet_url(config: Mapping[str, Any]) -> str | None:
    """`PUBLIC_STYLESHEET_URL` checked: an absolute http(s) URL that can stand in a CSP source list."""
    value = (config.get("PUBLIC_STYLESHEET_URL") or "").strip()
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.hostname or any(c in value for c in " ;,'\"\\"):
        raise ConfigError(f"TPA_PUBLIC_STYLESHEET_URL must be an absolute http(s) URL, not {value!r}.")
    return value


SECRET_KEY_MIN_LENGTH = 32


def secret_key(config: Mapping[str, Any], *, required: bool) -> str | None:
    """`SECRET_KEY` checked: at least 32 characters. Missing, it is an error when `required` (a
    server: its workers, and every other host, must sign the console's forms alike), else None."""
    value = (config.get("SECRET_KEY") or "").strip()
    if not value:
        if required:
            raise ConfigError(
                "TPA_SECRET_KEY is required: it signs the staff console's forms and must be the same on "
                "every worker and host. Make one: python3 -c 'import secrets; print(secrets.token_hex(32))'"
            )
        return None
    if len(value) < SECRET_KEY_MIN_LENGTH:
        raise ConfigError(
            f"TPA_SECRET_KEY is too short: use at least {SECRET_KEY_MIN_LENGTH} random characters."
        )
    return value


def env_overrides(environ: os._Environ[str] | dict[str, str] = os.environ) -> dict[str, Any]:
    """Settings taken from the environment: `DATABASE_URL` and any `TPA_<SETTING>`."""
    overrides: dict[str, Any] = {}
    if environ.get("DATABASE_URL"):
        overrides["DATABASE_URL"] = environ["DATABASE_URL"]
    for key, value in environ.items():
        if key.startswith("TPA_"):
            name = key.removeprefix("TPA_")
            default = getattr(Config, name, None)
            overrides[name] = _coerce(value, default)
    return overrides


def _coerce(value: str, default: Any) -> Any:
    if isinstance(default, bool):
        return value.lower() in {"1", "true", "yes", "on"}
    if isinstance(default, int):
        return int(value)
    if isinstance(default, float):
        return float(value)
    if isinstance(default, tuple):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value
