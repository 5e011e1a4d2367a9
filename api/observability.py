"""Request ids, structured JSON logs and security headers on every response.

Logs are JSON lines carrying the request id; they never contain an API key, a webhook secret or
a request body: the access line names method, path, status and timing only.
"""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid
from typing import Any

import orjson
import structlog
from flask import Flask, Response, g, has_request_context, request

REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

# The docs page loads Swagger UI's files from this app only; no inline script runs anywhere.
CONTENT_SECURITY_POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": ["'self'", "'unsafe-inline'"],  # Swagger UI sets inline styles
    "img-src": ["'self'", "data:"],
    "object-src": "'none'",
    "frame-ancestors": "'none'",
    "base-uri": "'none'",
}


def request_id() -> str:
    return g.get("request_id") or "-"


def _add_request_id(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    """Every line logged while a request is handled names it; nothing to do per request."""
    if has_request_context() and "request_id" in g:
        event.setdefault("request_id", g.request_id)
    return event


def configure_logging(level: str) -> None:
    """JSON lines on stderr through the standard logging module (gunicorn's too)."""
    shared = [
        _add_request_id,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )


def new_request_id(given: str | None) -> str:
    """The client's `X-Request-ID` when it is well-formed, else a fresh one."""
    return given if given and REQUEST_ID.match(given) else uuid.uuid4().hex


# Paths whose last segment is a credential (a one-time sign-in link): logged without it.
SECRET_PATH_PREFIXES = ("/console/sign-in/link/",)


def loggable_path(path: str) -> str:
    for prefix in SECRET_PATH_PREFIXES:
        if path.startswith(prefix):
            return prefix + "…"
    return path


def write_access_line(
    request_id: str, method: str, path: str, status: int, started: float, client: str | None
) -> None:
    """One JSON line per request, in the same shape as the other log lines. Written directly:
    through structlog and the logging module it cost a fifth of a cached read."""
    now = time.time()
    line = {
        "event": "request",
        "request_id": request_id,
        "level": "info",
        "logger": "api.access",
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e6):06d}Z",
        "method": method,
        "path": loggable_path(path),
        "status": status,
        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
        "client": client,
    }
    sys.stderr.buffer.write(orjson.dumps(line) + b"\n")
    sys.stderr.flush()


def security_headers(hsts: bool) -> list[tuple[str, str]]:
    """The same headers on every response, worked out once. (A per-request library such as
    Flask-Talisman re-parses its policy on every response, a third of a cached read's cost.)"""
    policy = "; ".join(
        f"{directive} {' '.join(value) if isinstance(value, list) else value}"
        for directive, value in CONTENT_SECURITY_POLICY.items()
    )
    headers = [
        ("Content-Security-Policy", policy),
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        ("Referrer-Policy", "no-referrer"),
        ("Cross-Origin-Opener-Policy", "same-origin"),
    ]
    if hsts:
        headers.append(("Strict-Transport-Security", "max-age=31536000; includeSubDomains"))
    return headers


def init_app(app: Flask) -> None:
    if app.config["LOG_JSON"]:
        configure_logging(app.config["LOG_LEVEL"])
    static_headers = security_headers(app.config["HSTS"])

    @app.before_request
    def _start() -> None:
        g.request_id = new_request_id(request.headers.get("X-Request-ID"))
        g.started = time.perf_counter()

    @app.after_request
    def _finish(response: Response) -> Response:
        headers = response.headers
        for name, value in static_headers:
            if name != "Content-Security-Policy" or name not in headers:  # a view may set a stricter one
                headers[name] = value
        headers["X-Request-ID"] = request_id()
        if app.config["LOG_REQUESTS"]:
            write_access_line(
                request_id(), request.method, request.path, response.status_code,
                g.get("started", time.perf_counter()), request.remote_addr,
            )  # fmt: skip
        return response
