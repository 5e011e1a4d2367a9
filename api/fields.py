"""Strict marshmallow fields shared by every schema: JSON means what it says"""

from __future__ import annotations

import re
from typing import Any

import marshmallow as ma
from marshmallow import ValidationError, fields, validate

from api.pagination import MAX_CURSOR_LENGTH, decode_cursor

# C0 controls except tab, newline and carriage return, plus DEL and the C1 range. PostgreSQL
# refuses NUL outright while SQLite stores it, so both are refused here, before the database.
CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
SINGLE_LINE_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# The whitespace `str.strip()` removes that is not a control character, spelled out: regex engines
# disagree on what `\s` means (ECMAScript, Python and schemathesis's ASCII reading all differ).
WHITESPACE = r" \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
# A character that is neither a control character nor whitespace: "visible" text.
VISIBLE = r"[^\x00-\x1f\x7f-\x9f" + WHITESPACE + "]"
SLUG_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
_URL_HOST = r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}(?::[0-9]{1,5})?"
_URL_REST = r"(?:/|[/?#]" + VISIBLE + "+)?$"
# Absolute URLs with a DNS host name (ASCII labels, an alphabetic top-level domain), an optional
# port, and a path, query or fragment without whitespace or control characters.
HTTP_URL_PATTERN = r"^https?://" + _URL_HOST + _URL_REST
HTTPS_URL_PATTERN = r"^https://" + _URL_HOST + _URL_REST


# Another system's address as it may be configured (webhook receivers, booking systems): https with a
# DNS host name, or plain http to a loopback host (accepted only where a development setting allows
# it: the services decide). The document promises the https form.
_LOOPBACK_HOST = r"(?:localhost|127(?:\.[0-9]{1,3}){3}|\[::1\])(?::[0-9]{1,5})?"
LOOPBACK_HTTP_URL_PATTERN = rf"^http://{_LOOPBACK_HOST}(?:/|[/?#]{VISIBLE}+)?$"


class Pattern(validate.Regexp):
    """A regular expression the whole value must match, as JSON Schema reads an anchored `pattern`.

    (Python's `$` also matches before a trailing newline, so `re.match` would let "slug\\n" through.)
    """

    def __call__(self, value: Any) -> Any:
        if self.regex.fullmatch(value) is None:
            raise ma.ValidationError(self._format_error(value))
        return value


class NoControlChars(validate.Validator):
    """Refuses control characters (tab, newline and carriage return too, unless `multiline`)."""

    def __init__(self, multiline: bool = False) -> None:
        self.multiline = multiline
        self.chars = CONTROL_CHARS if multiline else SINGLE_LINE_CONTROL_CHARS

    def __call__(self, value: str) -> str:
        if self.chars.search(value):
            raise ma.ValidationError("Control characters are not allowed.")
        return value


class MinVisible(validate.Validator):
    """Needs at least `count` characters once surrounding whitespace is stripped."""

    def __init__(self, count: int) -> None:
        self.count = count

    def __call__(self, value: str) -> str:
        if len(value.strip()) < self.count:
            raise ma.ValidationError(
                "Must not be blank." if self.count == 1 else f"At least {self.count} characters of text."
            )
        return value


def text_pattern(multiline: bool = False, min_visible: int = 0) -> str:
    """The JSON Schema `pattern` saying what NoControlChars and MinVisible enforce, exactly."""
    controls = (CONTROL_CHARS if multiline else SINGLE_LINE_CONTROL_CHARS).pattern[1:-1]
    allowed, visible = f"[^{controls}]", VISIBLE
    if min_visible <= 0:
        return f"^{allowed}*$"
    if min_visible == 1:
        return f"^{allowed}*{visible}{allowed}*$"
    return f"^{allowed}*{visible}{allowed}{{{min_visible - 2},}}{visible}{allowed}*$"


def openapi_properties(
    converter: Any, field: fields.Field, ret: dict[str, Any], **_kw: Any
) -> dict[str, Any]:
    """An apispec attribute function: document what these fields enforce beyond apispec's defaults.

    Strings: the control-character and visible-text rules as a `pattern` (unless a Regexp
    validator already gives one, which must then exclude control characters itself).
    Dicts: a Length validator bounds the number of keys (`maxProperties`, not `maxLength`), and
    the key field's rules become `propertyNames`.
    """
    if isinstance(field, fields.Dict):
        for length, properties in (("minLength", "minProperties"), ("maxLength", "maxProperties")):
            if length in ret:
                ret[properties] = ret.pop(length)
        if field.key_field is not None:
            names = converter.field2property(field.key_field)
            names.pop("type", None)
            if names:
                ret["propertyNames"] = names
        return {}
    if not isinstance(field, fields.String) or "pattern" in ret:
        return {}
    no_controls = next((v for v in field.validators if isinstance(v, NoControlChars)), None)
    if no_controls is None:
        return {}
    min_visible = next((v.count for v in field.validators if isinstance(v, MinVisible)), 0)
    return {"pattern": text_pattern(no_controls.multiline, min_visible)}


def Text(max_length: int, *, multiline: bool = False, min_length: int = 0, **kwargs: Any) -> fields.String:
    """A string with a maximum length that refuses control characters."""
    validators = [validate.Length(min=min_length, max=max_length), NoControlChars(multiline)]
    if min_length:
        validators.append(MinVisible(min_length))
    validators.extend(kwargs.pop("validate", []))
    return fields.String(validate=validators, **kwargs)


def Slug(**kwargs: Any) -> fields.String:
    return fields.String(
        validate=[
            validate.Length(min=2, max=80),
            Pattern(SLUG_PATTERN, error="Lowercase letters, digits and single hyphens only."),
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
    """An integral JSON number, as JSON Schema's `integer` reads it: 250 and 250.0, never "250",
    2.5 or true (JSON itself does not tell 250.0 from 250)."""

    def _validated(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.make_error("invalid", input=value)
        if isinstance(value, float):
            if not value.is_integer():
                raise self.make_error("invalid", input=value)
            value = int(value)
        return super()._validated(value)


class _StrictNumber(fields.Float):
    def _validated(self, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.make_error("invalid", input=value)
        return super()._validated(value)


def StrictInteger(*, min: int = 0, max: int = 2_147_483_647, **kwargs: Any) -> fields.Integer:
    """A JSON integer (no strings, fractions or booleans; 12.0 is 12), bounded to fit a 32-bit column."""
    return _StrictInteger(strict=True, validate=validate.Range(min=min, max=max), **kwargs)


def StrictNumber(*, min: float = 0, max: float = 9999, **kwargs: Any) -> fields.Float:
    """A JSON number (no strings or booleans) within bounds."""
    return _StrictNumber(validate=validate.Range(min=min, max=max), **kwargs)


class Cursor(fields.String):
    """A list cursor (`api.pagination`), loaded as the (name, id) it names."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(validate=validate.Length(min=1, max=MAX_CURSOR_LENGTH), **kwargs)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return decode_cursor(text)
        except ValueError as error:
            raise ValidationError("Not a cursor from this API: use a response's `next_cursor`.") from error


OUTBOUND_URL = Pattern(f"(?:{HTTPS_URL_PATTERN})|(?:{LOOPBACK_HTTP_URL_PATTERN})", error="Not a valid URL.")
