"""Project subclasses of flask-smorest's Api and Blueprint: problem+json errors and auth docs

The OpenAPI document has no catch-all `default` response: every operation lists each status it
can answer (see `Blueprint`), so a status it does not list is a contract failure that the contract
fuzzing (schemathesis) reports.
"""

from __future__ import annotations

import functools
import http
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import marshmallow as ma
from apispec.ext.marshmallow import MarshmallowPlugin as BaseMarshmallowPlugin
from apispec.ext.marshmallow import OpenAPIConverter
from flask import request
from flask_smorest import Api as BaseApi
from flask_smorest import Blueprint as BaseBlueprint
from flask_smorest import abort
from flask_smorest.utils import prepare_response
from werkzeug.exceptions import BadRequest, UnsupportedMediaType
from werkzeug.routing import BaseConverter

from api import errors
from api.errors import PROBLEM_MEDIA_TYPE
from api.fields import SLUG_PATTERN, openapi_properties


class ResponseSchema(ma.Schema):
    """A representation the API sends. Each field is in every answer (null where `allow_none`), so
    the OpenAPI document lists them all as `required` and generated clients get attributes that
    are never unset; a field that may be left out is named, as the document spells it, in
    `OPTIONAL`. `tests/api/test_openapi.py` fails on a response schema without `required`.
    """

    OPTIONAL: ClassVar[frozenset[str]] = frozenset()


class FieldErrorSchema(ResponseSchema):
    OPTIONAL = frozenset({"record", "line"})

    location = ma.fields.String(allow_none=True, metadata={"example": "json"})
    field = ma.fields.String(metadata={"example": "slug"})
    message = ma.fields.String(metadata={"example": "Not a valid slug."})
    record = ma.fields.Integer(
        allow_none=True, metadata={"description": "Literature import: the record, counted from 1"}
    )
    line = ma.fields.Integer(allow_none=True, metadata={"description": "Literature import: the line"})


class UnmetCriterionSchema(ResponseSchema):
    code = ma.fields.String(
        metadata={"enum": ["evidence_below_minimum", "no_regulatory_approval", "regulatory_warning"]}
    )
    message = ma.fields.String()


class ProblemSchema(ResponseSchema):
    """An RFC 9457 problem document."""

    # The front door's own errors (deploy/nginx) carry no `instance`.
    OPTIONAL = frozenset({"instance", "errors", "unmet"})

    type = ma.fields.String(
        metadata={"description": "`/problems/<slug>`, or `about:blank` for plain HTTP errors"}
    )
    title = ma.fields.String()
    status = ma.fields.Integer()
    detail = ma.fields.String()
    instance = ma.fields.String(
        metadata={"description": "The path, and the request id that is also in `X-Request-ID` and the logs"}
    )
    errors = ma.fields.List(
        ma.fields.Nested(FieldErrorSchema), metadata={"description": "Field errors (422)"}
    )
    unmet = ma.fields.List(
        ma.fields.Nested(UnmetCriterionSchema),
        metadata={"description": "Unmet approval criteria (policy gate, 409)"},
    )


RETRY_AFTER = {
    "description": "Seconds to wait before trying again",
    "required": True,
    "schema": {"type": "string", "pattern": "^[0-9]+$"},
}
# Headers and descriptions of the error responses every operation may answer.
RESPONSE_DETAILS: dict[int, dict[str, Any]] = {
    400: {"description": "The body is not JSON, or is empty."},
    413: {"description": "The body is larger than the configured limit (1 MiB)."},
    414: {"description": "The request's URI is longer than the configured limit (8190 characters)."},
    415: {"description": "The body is not `application/json`."},
    431: {"description": "A request header is longer than the front door allows (8 KiB, deploy/nginx)."},
    429: {
        "description": (
            "Too many requests from this client (or too many failed authentications): wait "
            "`Retry-After` seconds. `X-RateLimit-Limit`, `X-RateLimit-Remaining` and "
            "`X-RateLimit-Reset` describe the limit."
        ),
        "headers": {"Retry-After": RETRY_AFTER},
    },
    503: {
        "description": "The database cannot be reached; try again after `Retry-After` seconds.",
        "headers": {"Retry-After": RETRY_AFTER},
    },
}


EXAMPLE_REQUEST_ID = "5f0c1a9e2b7d4c3a8e6f1b2d3c4a5e6f"


def _problem(
    status: int, slug: str | None, title: str, detail: str, path: str, **extra: Any
) -> dict[str, Any]:
    return {"type": f"/problems/{slug}" if slug else "about:blank", "title": title, "status": status,
            "detail": detail, "instance": f"{path}#request-{EXAMPLE_REQUEST_ID}", **extra}  # fmt: skip


# One realistic example per error status, as the API answers it (`tests/api/test_openapi.py`
# provokes each and compares `type`, `title` and `status`); the front door's own 431 has no
# `instance`.
PROBLEM_EXAMPLES: dict[int, dict[str, Any]] = {
    400: _problem(400, None, "Bad Request", "The request body is not valid JSON.", "/v1/booking-checks",
                  errors=[{"location": "json", "field": "", "message": "Invalid JSON body."}]),
    401: _problem(401, "unauthenticated", "Authentication required",
                  "Send an API key as 'Authorization: Bearer <key>'.", "/v1/treatments"),
    403: _problem(403, "forbidden", "Forbidden", "This needs the 'reviewer' role; the key has 'editor'.",
                  "/v1/treatments/exosomes/decisions"),
    404: _problem(404, "not-found", "Not found", "No treatment has the slug 'botox-x'.",
                  "/v1/treatments/botox-x"),
    405: _problem(405, None, "Method Not Allowed", "The method is not allowed for the requested URL.",
                  "/v1/treatments"),
    409: _problem(409, "policy-gate-refused", "Approval refused by the policy gate",
                  "The treatment does not meet the clinic's criteria for approval.",
                  "/v1/treatments/exosomes/decisions",
                  unmet=[{"code": "no_regulatory_approval",
                          "message": "No recognised regulator has approved, cleared or CE-marked it."}]),
    412: _problem(412, "precondition-failed", "Precondition failed",
                  "The resource changed since you read it; read it again.", "/v1/treatments/exosomes"),
    413: _problem(413, None, "Request Entity Too Large",
                  "The data value transmitted exceeds the capacity limit.",
                  "/v1/treatments/exosomes/studies/import"),
    414: _problem(414, "uri-too-long", "URI too long", "The request's URI is longer than 8190 characters.",
                  "/v1/treatments"),
    415: _problem(415, None, "Unsupported Media Type",
                  "Send the body as JSON, with 'Content-Type: application/json'.", "/v1/booking-checks"),
    422: _problem(422, None, "Unprocessable Entity", "The request has invalid fields.", "/v1/booking-checks",
                  errors=[{"location": "json", "field": "treatments",
                           "message": "Length must be between 1 and 100."}]),
    428: _problem(428, "precondition-required", "Precondition required",
                  "Send If-Match with the ETag you last read.", "/v1/treatments/exosomes"),
    429: _problem(429, "too-many-requests", "Too many requests",
                  "Rate limit exceeded (300/minute); wait and retry.", "/v1/treatments"),
    431: {"type": "/problems/request-header-fields-too-large", "title": "Request header fields too large",
          "status": 431, "detail": "A request header is longer than 8 KiB."},
    500: _problem(500, None, "Internal server error", "The server could not answer.", "/v1/treatments"),
    503: _problem(503, "service-unavailable", "Service unavailable",
                  "The database cannot be reached; try again shortly.", "/v1/booking-checks"),
}  # fmt: skip


class Converter(OpenAPIConverter):
    """apispec's converter, plus the project's field rules and a schema's `OPENAPI_EXTRA`.

    `api.fields.openapi_properties` documents what the project's fields enforce (control
    characters, visible text, dict keys); `OPENAPI_EXTRA` carries schema-level rules that no single
    field states (e.g. "an accepted study needs a design").
    """

    def init_attribute_functions(self) -> None:
        super().init_attribute_functions()
        self.add_attribute_function(openapi_properties)

    def schema2jsonschema(self, schema: Any) -> dict[str, Any]:
        jsonschema: dict[str, Any] = super().schema2jsonschema(schema)
        jsonschema.update(getattr(schema, "OPENAPI_EXTRA", {}))
        if isinstance(schema, ResponseSchema) or (
            isinstance(schema, type) and issubclass(schema, ResponseSchema)
        ):
            optional = schema.OPTIONAL
            unknown = optional - set(jsonschema["properties"])
            assert not unknown, f"{type(schema).__name__}.OPTIONAL names no field: {sorted(unknown)}"
            required = [name for name in jsonschema["properties"] if name not in optional]
            jsonschema["required"] = sorted(set(jsonschema.get("required", [])) | set(required))
        return jsonschema


class MarshmallowPlugin(BaseMarshmallowPlugin):
    Converter = Converter


class SlugConverter(BaseConverter):
    """`<slug:slug>`: only what a slug can be matches; anything else (a NUL byte, which
    PostgreSQL refuses in text, capitals, spaces) is a 404 before any query."""

    regex = SLUG_PATTERN.removeprefix("^").removesuffix("$")


class Api(BaseApi):
    ERROR_SCHEMA = ProblemSchema
    DEFAULT_ERROR_RESPONSE_NAME = None  # no catch-all: each operation lists its statuses

    def __init__(self, app: Any = None, *, spec_kwargs: dict[str, Any] | None = None, **kwargs: Any):
        spec_kwargs = {"marshmallow_plugin": MarshmallowPlugin(), **(spec_kwargs or {})}
        super().__init__(app, spec_kwargs=spec_kwargs, **kwargs)
        if app is not None:
            app.url_map.converters["slug"] = SlugConverter
            self.register_converter(
                SlugConverter, lambda _converter: {"type": "string", "pattern": SLUG_PATTERN}
            )

    def handle_http_exception(self, error: Any) -> Any:
        return errors.handle_http_exception(error)

    def _register_responses(self) -> None:
        for status in http.HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            if not (100 <= status < 200) and status not in (204, 304):
                response["schema"] = self.ERROR_SCHEMA
            response.update(RESPONSE_DETAILS.get(status, {}))
            if status in PROBLEM_EXAMPLES:
                response["example"] = PROBLEM_EXAMPLES[status]
            prepare_response(response, self.spec, PROBLEM_MEDIA_TYPE)
            self.spec.components.response(status.name, response, lazy=True)


def _once_each(schema: Any, parse: Callable[..., Any]) -> Callable[..., Any]:
    """`parse`, after refusing a scalar query parameter given more than once: webargs would
    quietly take one of the values (`?limit=1&limit=2`)."""
    fields = (schema() if isinstance(schema, type) else schema).fields
    scalars = {
        field.data_key or name for name, field in fields.items() if not isinstance(field, ma.fields.List)
    }

    def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
        parsed = parse(func)

        @functools.wraps(parsed)
        def wrapper(*args: Any, **kw: Any) -> Any:
            repeated = sorted(name for name in scalars if len(request.args.getlist(name)) > 1)
            if repeated:
                abort(422, messages={"query": {name: ["Give this parameter once."] for name in repeated}})
            return parsed(*args, **kw)

        return wrapper

    return decorator


def require_json_body() -> None:
    """Refuse a body that is not JSON (415) or is missing (400) before webargs reads it.

    webargs reads a non-JSON or empty body as "no fields", which would let a PATCH through as an
    empty update and turn a POST's problem into a list of missing fields.
    """
    if not request.is_json:
        raise UnsupportedMediaType("Send the body as JSON, with 'Content-Type: application/json'.")
    if not request.get_data(cache=True).strip():
        raise BadRequest("The request needs a JSON body.")


def link(path: str, method: str, parameters: Mapping[str, str], description: str) -> dict[str, Any]:
    """An OpenAPI link to the operation `method path` (by operationRef: operations have no ids).

    Parameter names may name their location (`header.If-Match`); values are runtime expressions
    such as `$response.body#/slug`, `$response.header.ETag` or `$request.path.slug`.
    """
    pointer = path.replace("~", "~0").replace("/", "~1")
    return {"operationRef": f"#/paths/{pointer}/{method}", "parameters": dict(parameters),
            "description": description}  # fmt: skip


class Blueprint(BaseBlueprint):
    # Answered by any operation: an over-long URI (414) or header (431, from the front door), the
    # rate limits (429), a database outage (503).
    COMMON_RESPONSES: Mapping[int, str] = {
        414: "REQUEST_URI_TOO_LONG", 429: "TOO_MANY_REQUESTS", 431: "REQUEST_HEADER_FIELDS_TOO_LARGE",
        503: "SERVICE_UNAVAILABLE",
    }  # fmt: skip

    def __init__(self, *args: Any, common_responses: Mapping[int, str] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.common_responses = self.COMMON_RESPONSES if common_responses is None else common_responses
        self._prepare_doc_cbks.append(self._prepare_common_responses_doc)

    def _prepare_common_responses_doc(self, doc: dict[str, Any], _doc_info: Any, **_kwargs: Any) -> Any:
        responses = doc.setdefault("responses", {})
        for status, name in self.common_responses.items():
            if status not in responses and str(status) not in responses:
                responses[status] = name
        return doc

    def arguments(self, schema: Any, *, location: str = "json", **kwargs: Any) -> Any:
        """flask-smorest's `arguments`; a JSON body must also be JSON (415) and present (400),
        and a query parameter that takes one value must be given once (422)."""
        parse = super().arguments(schema, location=location, **kwargs)
        if location == "query":
            return _once_each(schema, parse)
        if location != "json":
            return parse

        def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
            parsed = parse(func)

            @functools.wraps(parsed)
            def wrapper(*args: Any, **kw: Any) -> Any:
                require_json_body()
                return parsed(*args, **kw)

            documented: Callable[..., Any] = wrapper
            for status, name in ((400, "BAD_REQUEST"), (413, "REQUEST_ENTITY_TOO_LARGE"),
                                 (415, "UNSUPPORTED_MEDIA_TYPE")):  # fmt: skip
                documented = self.alt_response(status, response=name)(documented)
            return documented

        return decorator

    def requires_role(self, role: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Require a bearer key of `role` or higher, and say so in the OpenAPI document."""
        from api.api_keys.auth import require_role

        def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
            wrapped = require_role(role)(func)
            doc = {
                "security": [{"bearerAuth": []}],
                "x-required-role": role,
                "description": (func.__doc__ or "").strip() + f"\n\nRequires the `{role}` role or higher.",
            }
            wrapped = self.doc(**doc)(wrapped)
            wrapped = self.alt_response(401, response="UNAUTHORIZED")(wrapped)
            return self.alt_response(403, response="FORBIDDEN")(wrapped)

        return decorator
