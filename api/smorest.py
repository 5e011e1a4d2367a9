"""Project subclasses of flask-smorest's Api and Blueprint: problem+json errors and auth docs"""

from __future__ import annotations

import http
from collections.abc import Callable
from typing import Any

import marshmallow as ma
from flask_smorest import Api as BaseApi
from flask_smorest import Blueprint as BaseBlueprint
from flask_smorest.utils import prepare_response

from api import errors
from api.errors import PROBLEM_MEDIA_TYPE


class FieldErrorSchema(ma.Schema):
    location = ma.fields.String(allow_none=True, metadata={"example": "json"})
    field = ma.fields.String(metadata={"example": "slug"})
    message = ma.fields.String(metadata={"example": "Not a valid slug."})


class UnmetCriterionSchema(ma.Schema):
    code = ma.fields.String(
        metadata={"enum": ["evidence_below_minimum", "no_regulatory_approval", "regulatory_warning"]}
    )
    message = ma.fields.String()


class ProblemSchema(ma.Schema):
    """An RFC 9457 problem document."""

    type = ma.fields.String(metadata={"example": "/problems/not-found"})
    title = ma.fields.String(metadata={"example": "Not found"})
    status = ma.fields.Integer(metadata={"example": 404})
    detail = ma.fields.String(metadata={"example": "No treatment has the slug 'botox-x'."})
    instance = ma.fields.String(metadata={"example": "/v1/treatments/botox-x"})
    errors = ma.fields.List(
        ma.fields.Nested(FieldErrorSchema), metadata={"description": "Field errors (422)"}
    )
    unmet = ma.fields.List(
        ma.fields.Nested(UnmetCriterionSchema),
        metadata={"description": "Unmet approval criteria (policy gate, 409)"},
    )


class Api(BaseApi):
    ERROR_SCHEMA = ProblemSchema

    def handle_http_exception(self, error: Any) -> Any:
        return errors.handle_http_exception(error)

    def _register_responses(self) -> None:
        for status in http.HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            if not (100 <= status < 200) and status not in (204, 304):
                response["schema"] = self.ERROR_SCHEMA
            prepare_response(response, self.spec, PROBLEM_MEDIA_TYPE)
            self.spec.components.response(status.name, response, lazy=True)
        default = {"description": "Default error response", "schema": self.ERROR_SCHEMA}
        prepare_response(default, self.spec, PROBLEM_MEDIA_TYPE)
        self.spec.components.response("DEFAULT_ERROR", default, lazy=True)


class Blueprint(BaseBlueprint):
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
