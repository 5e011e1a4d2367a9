"""Keyset cursors for the treatment list: where the previous page ended, as an opaque string.

A cursor is the (name, id) of the last item of a page, as base64url JSON. The next page starts
strictly after it on the list's own order and index, so a page costs the same however deep it
is, and a write between two pages never repeats or skips an item that was already there.
"""

from __future__ import annotations

import base64
import binascii

import orjson

MAX_CURSOR_LENGTH = 400
# Page numbers reach this many items deep at most; deeper, follow `next_cursor`. An offset walks
# every item before it, so unbounded page numbers would cost more the larger the catalogue.
MAX_LIST_OFFSET = 10_000
MAX_ID = 2_147_483_647


def encode_cursor(name: str, row_id: int) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([name, row_id])).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, int]:
    """The (name, id) a cursor names; ValueError for anything this API did not write."""
    if len(cursor) > MAX_CURSOR_LENGTH:
        raise ValueError("too long")
    try:
        value = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, orjson.JSONDecodeError, ValueError) as error:
        raise ValueError("not a cursor") from error
    if not (
        isinstance(value, list) and len(value) == 2 and isinstance(value[0], str)
        and type(value[1]) is int and 0 < value[1] <= MAX_ID and "\x00" not in value[0]
    ):  # fmt: skip
        raise ValueError("not a cursor")
    return value[0], value[1]
