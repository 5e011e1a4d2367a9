"""Strict marshmallow fields shared by every schema: JSON means what it says"""

from __future__ import annotations

import re
from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

# C0 controls except tab, newline and carriage return, plus DEL and the C1 range. PostgreSQL
# refuses NUL outright while SQLite stores it, so both are refused here, before the database.
CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
SINGLE_LINE_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
SLUG_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"


def _no_control_chars(multiline: bool) -> Any:
    pattern = CONTROL_CHARS if multiline else SINGLE_LINE_CONTROL_CHARS

    def check(value: str) -> None:
        if pattern.search(value):
            raise ma.ValidationError("Control characters are not allowed.")

    return check


def _min_visible(min_length: int) -> Any:
    def check(value: str) -> None:
        if len(value.strip()) < min_length:
            raise ma.ValidationError(
                "Must not be blank." if min_length == 1 else f"At least {min_length} characters of text."
            )

    return check


def Text(max_length: int, *, multiline: bool = False, min_length: int = 0, **kwargs: Any) -> fields.String:
    """A string with a maximum length that refuses control characters."""
    validators = [validate.Length(min=min_length, max=max_length), _no_control_chars(multiline)]
    if min_length:
        validators.append(_min_visible(min_length))
    validators.extend(kwargs.pop("validate", []))
    return fields.String(validate=validators, **kwargs)


def Slug(**kwargs: Any) -> fields.String:
    return fields.String(
        validate=[
            validate.Length(min=2, max=80),
            validate.Regexp(SLUG_PATTERN, error="Lowercase letters, digits and single hyphens only."),
        ],
        metadata={"example": "botulinum-toxin-type-a"},
        **kwargs,
    )


class StrictBoolean(fields.Boolean):
    """Only JSON true and false, never 0, 1 or "yes"."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


class QueryBoolean(fields.Boolean):
    """A query-string boolean: exactly `true` or `false`."""

    truthy = {"true"}
    falsy = {"false"}


class _StrictInteger(fields.Integer):
    def _validated(self, value: Any) -> int:
        if isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return super()._validated(value)


class _StrictNumber(fields.Float):
    def _validated(self, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.make_error("invalid", input=value)
        return super()._validated(value)


def StrictInteger(*, min: int = 0, max: int = 2_147_483_647, **kwargs: Any) -> fields.Integer:
    """A JSON integer (no strings, fractions or booleans), bounded to fit a 32-bit column."""
    return _StrictInteger(strict=True, validate=validate.Range(min=min, max=max), **kwargs)


def StrictNumber(*, min: float = 0, max: float = 9999, **kwargs: Any) -> fields.Float:
    """A JSON number (no strings or booleans) within bounds."""
    return _StrictNumber(validate=validate.Range(min=min, max=max), **kwargs)
