"""From HTML forms to what the services take, through the API's own schemas.

A form's fields are text; the API's schemas are strict about JSON types. So each form field is
converted to the JSON value it stands for (empty → left out or null, numbers, checkboxes,
one-per-line lists), then loaded by the same marshmallow schema the API route uses: one set of
validation rules, whichever door a change comes through.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

import marshmallow as ma
from flask import current_app

from api.errors import DomainError, field_errors
from api.staff.service import StaffSettings


def staff_settings() -> StaffSettings:
    config = current_app.config
    return StaffSettings(
        link_lifetime=dt.timedelta(hours=config["CONSOLE_SIGN_IN_LINK_HOURS"]),
        password_min_length=config["CONSOLE_PASSWORD_MIN_LENGTH"],
    )


def errors_by_field(error: DomainError | ma.ValidationError) -> dict[str, list[str]]:
    """`{field: [messages]}`; messages about the whole form are under ''."""
    if isinstance(error, ma.ValidationError):
        flat = field_errors(error.normalized_messages(), "form")
    else:
        flat = list(error.extra.get("errors") or [])
        if not flat:
            return {"": [error.detail]}
    out: dict[str, list[str]] = {}
    for item in flat:
        out.setdefault(str(item.get("field") or "").split(".")[0], []).append(item["message"])
    return out


def text(form: Mapping[str, str], name: str, *, null: bool = False) -> Any:
    """A text field; empty means left out (or null, when `null`)."""
    value = form.get(name, "").replace("\r\n", "\n").strip()
    if value:
        return value
    return None if null else _MISSING


def number(form: Mapping[str, str], name: str) -> Any:
    """A number field: an int or float when it is one, else the text (the schema refuses it)."""
    raw = form.get(name, "").strip()
    if not raw:
        return None
    for kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            continue
    return raw


def checkbox(form: Mapping[str, str], name: str) -> bool:
    return form.get(name) in {"on", "true", "1", "yes"}


def lines(form: Mapping[str, str], name: str) -> list[str]:
    return [line.strip() for line in form.get(name, "").splitlines() if line.strip()]


class _Missing:
    pass


_MISSING: Any = _Missing()


def compact(values: Mapping[str, Any]) -> dict[str, Any]:
    """Drop the fields a form left empty (so the schema's defaults apply)."""
    return {k: v for k, v in values.items() if not isinstance(v, _Missing)}


def load(schema: ma.Schema, values: Mapping[str, Any]) -> dict[str, Any]:
    loaded: dict[str, Any] = schema.load(compact(values))
    return loaded


def pick(form: Mapping[str, str], names: Iterable[str]) -> dict[str, str]:
    """The raw text of the fields, to put back in the form when it is shown again."""
    return {name: form.get(name, "") for name in names}
