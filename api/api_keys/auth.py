"""Bearer authentication and role checks for write routes"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flask import current_app, g, request

from api.api_keys.models import ApiKey, Role
from api.api_keys.service import verify_key
from api.audit.service import Actor
from api.db import get_session
from api.errors import Forbidden, Unauthenticated
from api.ratelimit import check_auth_failures, note_auth_failure


def require_role(role: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    needed = Role(role)

    def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if "actor" not in g:  # not already authenticated for the idempotency check
                g.actor = authenticate(needed)
            return func(*args, **kwargs)

        wrapper.required_role = needed  # type: ignore[attr-defined]  # carried up by functools.wraps
        return wrapper

    return decorator


def authenticate(needed: Role) -> Actor:
    """The key's holder, if the key is valid and has the role.

    The key is checked first: a valid key is never refused because of failures from its address
    (behind a proxy, or on a shared network, one guesser would otherwise lock every writer out).
    The failure limit only throttles guessing: an invalid key over it answers 429, not 401.
    """
    try:
        key = _verified_key()
    except Unauthenticated:
        check_auth_failures()
        note_auth_failure()
        raise
    if not key.role.includes(needed):
        raise Forbidden(f"This needs the '{needed.value}' role; the key has '{key.role.value}'.")
    return Actor(name=key.name, role=key.role.value)


def _verified_key() -> ApiKey:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        raise Unauthenticated("Send an API key as 'Authorization: Bearer <key>'.")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("The Authorization header must be 'Bearer <key>'.")
    key = verify_key(get_session(), token.strip())
    if key is None:
        raise Unauthenticated("The API key is unknown or has been revoked.")
    return key


def current_actor() -> Actor:
    actor: Actor = g.actor
    return actor


def required_role(endpoint: str | None, method: str) -> Role | None:
    """The role the route for this endpoint and method requires, if any."""
    view = current_app.view_functions.get(endpoint or "")
    handler = getattr(getattr(view, "view_class", None), method.lower(), None)
    role: Role | None = getattr(handler, "required_role", None)
    return role
