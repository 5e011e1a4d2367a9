"""Creating, verifying and revoking API keys"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.api_keys.models import ApiKey, Role
from api.db import utcnow
from api.errors import Conflict, NotFound

KEY_PREFIX = "tpa_"
KEY_PATTERN = re.compile(r"^tpa_[A-Za-z0-9_-]{43}$")
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)  # don't write on every request


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(session: Session, name: str, role: Role) -> str:
    """Store a new key's hash and return the key itself: the only time it is ever seen."""
    if session.scalar(select(ApiKey.id).where(ApiKey.name == name)) is not None:
        raise Conflict(f"A key named '{name}' already exists.")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiKey(name=name, role=role, key_hash=hash_key(key), display_prefix=key[:8]))
    session.commit()
    return key


def list_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.name)))


def revoke_key(session: Session, name: str) -> ApiKey:
    key = session.scalars(select(ApiKey).where(ApiKey.name == name)).first()
    if key is None:
        raise NotFound(f"No key is named '{name}'.")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        session.commit()
    return key


def verify_key(session: Session, presented: str) -> ApiKey | None:
    """The active key matching `presented`, or None. Malformed keys never reach the database."""
    if not KEY_PATTERN.match(presented):
        return None
    digest = hash_key(presented)
    key = session.scalars(select(ApiKey).where(ApiKey.key_hash == digest)).first()
    # The index lookup finds the row; the constant-time comparison is the check.
    if key is None or not hmac.compare_digest(key.key_hash, digest) or key.revoked_at is not None:
        return None
    now = utcnow()
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        key.last_used_at = now
        session.commit()
    return key
