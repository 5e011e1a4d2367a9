"""Staff accounts, their server-side console sessions and their one-time sign-in links"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from api.api_keys.models import Role
from api.db import Base, checked_enum, utcnow


class StaffUser(Base):
    """A person: an editor, reviewer or admin (the roles keys have). Their actions are attributed
    to their email address, which is unique, as a key's are to its name."""

    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(100), unique=True)  # stored lower-case
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[Role] = mapped_column(checked_enum(Role, "staff_user_role"))
    # argon2id; None until the first sign-in link sets it, and again after an admin's reset.
    password_hash: Mapped[str | None] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_sign_in_at: Mapped[dt.datetime | None]

    # Flask-Login's user protocol
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return str(self.id)


class StaffSession(Base):
    """One browser's console session. The cookie holds a random token; only its SHA-256 is the
    key here, so a copy of the table signs no one in. Deleting a row signs that browser out."""

    __tablename__ = "staff_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 of the cookie's token
    user_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id", ondelete="CASCADE"), index=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)


class SignInLink(Base):
    """A one-time link that lets a person set their password: made by the CLI or an admin,
    used once, and only until it expires."""

    __tablename__ = "staff_sign_in_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]
    used_at: Mapped[dt.datetime | None]
