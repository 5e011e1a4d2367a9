"""Errors: the domain's exceptions and their one rendering, RFC 9457 problem+json.

Services raise `DomainError` subclasses; routes never catch them. `register(app)` turns them,
werkzeug's HTTP errors, webargs' validation errors and database failures into problem
documents. Nothing else builds an error response.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from flask import Flask, Response, current_app, g, request
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import HTTPException, InternalServerError

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_BASE = "/problems/"

log = logging.getLogger(__name__)


class DomainError(Exception):
    """A failure the API reports to its client; subclasses name what went wrong."""

    status = 400
    slug = "bad-request"
    title = "Bad request"

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None, **extra: Any):
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra


class NotFound(DomainError):
    status, slug, title = 404, "not-found", "Not found"


class Conflict(DomainError):
    status, slug, title = 409, "conflict", "Conflict"


class UriTooLong(DomainError):
    status, slug, title = 414, "uri-too-long", "URI too long"


class InvalidInput(DomainError):
    """Field-level validation failure found by a service rather than a schema."""

    status, slug, title = 422, "invalid-input", "Invalid input"

    def __init__(self, detail: str, errors: list[dict[str, Any]]):
        super().__init__(detail, errors=errors)


class PreconditionRequired(DomainError):
    status, slug, title = 428, "precondition-required", "Precondition required"


class PreconditionFailed(DomainError):
    status, slug, title = 412, "precondition-failed", "Precondition failed"


class Unauthenticated(DomainError):
    status, slug, title = 401, "unauthenticated", "Authentication required"

    def __init__(self, detail: str):
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="treatment-policy"'})


class Forbidden(DomainError):
    status, slug, title = 403, "forbidden", "Forbidden"


class ServiceUnavailable(DomainError):
    status, slug, title = 503, "service-unavailable", "Service unavailable"

    def __init__(self, detail: str, retry_after: int = 5):
        super().__init__(detail, headers={"Retry-After": str(retry_after)})


def problem_response(
    status: int,
    title: str,
    detail: str | None = None,
    slug: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + slug if slug else "about:blank",
        "title": title,
        "status": status,
    }
    if detail:
        body["detail"] = detail
    # The occurrence: the path, with the request id that is also in the logs and X-Request-ID.
    body["instance"] = f"{request.path}#request-{g.get('request_id', '-')}"
    body.update(extra)
    response = Response(orjson.dumps(body), status=status, mimetype=PROBLEM_MEDIA_TYPE)
    response.headers.update(headers or {})
    return response


def field_errors(messages: Any, location: str | None = None, prefix: str = "") -> list[dict[str, Any]]:
    """Flatten marshmallow's nested messages into `[{location, field, message}]`."""
    out: list[dict[str, Any]] = []
    if isinstance(messages, dict):
        for key, value in messages.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if key == "_schema" and not prefix:
                name = ""
            out.extend(field_errors(value, location, name))
    elif isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        out.extend({"location": location, "field": prefix, "message": m} for m in messages)
    elif isinstance(messages, list):
        for item in messages:
            out.extend(field_errors(item, location, prefix))
    else:
        out.append({"location": location, "field": prefix, "message": str(messages)})
    return out


def handle_http_exception(error: HTTPException) -> Response:
    """werkzeug and webargs errors as problem documents (keeps `Allow` on 405)."""
    status = error.code or 500
    if status >= 500:
        return problem_response(500, "Internal server error", "The server could not answer.")
    headers = {k: v for k, v in error.get_headers() if k.lower() not in {"content-type"}}
    extra: dict[str, Any] = {}
    detail = error.description
    data = getattr(error, "data", None) or {}
    if "messages" in data:
        errors = []
        for location, messages in data["messages"].items():
            errors.extend(field_errors(messages, location))
        extra["errors"] = errors
        detail = "The request body is not valid JSON." if status == 400 else "The request has invalid fields."
    headers.update(data.get("headers") or {})
    return problem_response(status, error.name, detail, slug=None, headers=headers, **extra)


def handle_domain_error(error: DomainError) -> Response:
    return problem_response(error.status, error.title, error.detail, error.slug, error.headers, **error.extra)


def handle_integrity_error(error: IntegrityError) -> Response:
    # A constraint the service did not foresee: the write is refused whole, never half-made.
    log.warning("integrity error: %s", error.orig)
    return problem_response(409, "Conflict", "The change conflicts with the data already stored.", "conflict")


def handle_operational_error(error: OperationalError | InterfaceError | PoolTimeout) -> Response:
    # Unreachable, cut mid-way, timed out, or no pooled connection free in time: retry later.
    log.error("database unavailable: %s", getattr(error, "orig", None) or error)
    return problem_response(
        503,
        "Service unavailable",
        "The database cannot be reached; try again shortly.",
        "service-unavailable",
        {"Retry-After": "5"},
    )


def handle_stale_data(_error: StaleDataError) -> Response:
    # A concurrent write committed first: this one is rolled back whole.
    return handle_domain_error(PreconditionFailed("The resource changed since you read it; read it again."))


def handle_too_deep(_error: RecursionError) -> Response:
    # Hostile input: JSON nested deeper than the parser will follow.
    return problem_response(400, "Bad Request", "The request body is nested too deeply.")


def handle_unexpected(error: Exception) -> Response:
    log.exception("unhandled error", exc_info=error)
    return handle_http_exception(InternalServerError())


def _refuse_long_uris() -> None:
    """gunicorn (`gunicorn.conf.py`) lets any request line through, so that an over-long one is
    refused here, as problem+json, and not with the server's own HTML page."""
    uri = request.environ.get("RAW_URI") or request.full_path
    limit = current_app.config["MAX_URI_LENGTH"]
    if len(uri) > limit:
        raise UriTooLong(f"The request's URI is longer than {limit} characters.")


def register(app: Flask) -> None:
    app.before_request(_refuse_long_uris)
    app.register_error_handler(DomainError, handle_domain_error)
    app.register_error_handler(IntegrityError, handle_integrity_error)
    for unavailable in (OperationalError, InterfaceError, PoolTimeout):
        app.register_error_handler(unavailable, handle_operational_error)
    app.register_error_handler(StaleDataError, handle_stale_data)
    app.register_error_handler(RecursionError, handle_too_deep)
    app.register_error_handler(Exception, handle_unexpected)
