"""Conditional writes: If-Match against the current ETag (RFC 9110), for every service"""

from __future__ import annotations

from api.errors import PreconditionFailed, PreconditionRequired


def check_if_match(if_match: str | None, current: str) -> None:
    """428 without If-Match; 412 unless it names the current ETag (or is `*`)."""
    if if_match is None:
        raise PreconditionRequired("Send If-Match with the ETag you last read.")
    candidates = {tag.strip() for tag in if_match.split(",")}
    if "*" not in candidates and current not in candidates:
        raise PreconditionFailed("The resource changed since you read it; read it again.")
