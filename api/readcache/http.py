"""HTTP validators for cached answers: ETags, dates, and whether a client's copy is current"""

from __future__ import annotations

import datetime as dt
import hashlib
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

from api.readcache.store import Entry


def body_etag(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


def http_date(value: Any) -> str:
    return format_datetime(value.astimezone(dt.UTC).replace(microsecond=0), usegmt=True)


def is_fresh(entry: Entry, if_none_match: str | None, since: str | None) -> bool:
    """Whether the client's copy is current (If-None-Match wins over If-Modified-Since)."""
    if if_none_match:
        tags = {tag.strip() for tag in if_none_match.split(",")}
        return "*" in tags or entry.etag in tags or f"W/{entry.etag}" in tags
    if since and entry.last_modified:
        try:
            return parsedate_to_datetime(entry.last_modified) <= parsedate_to_datetime(since)
        except (TypeError, ValueError):
            return False
    return False
