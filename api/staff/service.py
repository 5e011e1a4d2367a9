"""Staff accounts: invitations, one-time sign-in links, passwords and signing everyone out.

Passwords are hashed with argon2id (argon2-cffi's defaults, rehashed when those change). A person
is invited with a one-time link (the CLI prints it, or the console shows it to the admin who
invited them: there is no mail); the link sets their password. An admin's reset ends the person's
sessions, forgets their password and makes a new link. Each use case commits once.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import re
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from api.api_keys.models import Role
from api.audit.service import Actor
from api.db import utcnow
from api.errors import Conflict, InvalidInput, NotFound
from api.staff.models import SignInLink, StaffSession, StaffUser

EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Checked against when no account matches, so an unknown email takes as long as a wrong
    password. Made on first use (not at import: every CLI command would pay for it)."""
    return PasswordHasher().hash(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class StaffSettings:
    link_lifetime: dt.timedelta
    password_min_length: int


class LinkInvalid(NotFound):
    slug, title = "sign-in-link-invalid", "Sign-in link not valid"

    def __init__(self) -> None:
        super().__init__(
            "This sign-in link has expired or has already been used. Ask an admin for a new one."
        )


def actor_for(user: StaffUser) -> Actor:
    """A person's actions are attributed to their (unique) email and role, as a key's to its name."""
    return Actor(name=user.email, role=Role(user.role).value)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def normalise_email(email: str) -> str:
    return email.strip().lower()


def create_user(
    session: Session, email: str, name: str, role: Role, settings: StaffSettings
) -> tuple[StaffUser, str]:
    """Add a person and return them with their one-time sign-in token (shown once, never stored)."""
    email = normalise_email(email)
    errors = []
    if not EMAIL.match(email) or len(email) > 100:
        errors.append({"location": "form", "field": "email", "message": "Enter an email address."})
    if not name.strip() or len(name) > 100:
        errors.append(
            {"location": "form", "field": "name", "message": "Enter a name of up to 100 characters."}
        )
    if errors:
        raise InvalidInput("The account has invalid fields.", errors)
    if session.scalar(select(StaffUser.id).where(StaffUser.email == email)) is not None:
        raise Conflict(f"An account for {email} already exists.")
    user = StaffUser(email=email, name=name.strip(), role=Role(role))
    session.add(user)
    session.flush()
    token = _new_link(session, user, settings)
    session.commit()
    return user, token


def list_users(session: Session) -> list[StaffUser]:
    return list(session.scalars(select(StaffUser).order_by(StaffUser.email)))


def find_user(session: Session, email: str) -> StaffUser:
    user = session.scalars(select(StaffUser).where(StaffUser.email == normalise_email(email))).first()
    if user is None:
        raise NotFound(f"No account has the email {normalise_email(email)}.")
    return user


def reset_user(session: Session, email: str, settings: StaffSettings) -> str:
    """An admin's reset: end every session of the person, forget their password and earlier links,
    and return a new one-time sign-in token."""
    user = find_user(session, email)
    user.password_hash = None
    session.execute(delete(StaffSession).where(StaffSession.user_id == user.id))
    session.execute(delete(SignInLink).where(SignInLink.user_id == user.id))
    token = _new_link(session, user, settings)
    session.commit()
    return token


def set_active(session: Session, email: str, active: bool) -> StaffUser:
    """Deactivate (ending every session) or reactivate an account."""
    user = find_user(session, email)
    user.active = active
    if not active:
        session.execute(delete(StaffSession).where(StaffSession.user_id == user.id))
    session.commit()
    return user


def set_role(session: Session, email: str, role: Role) -> StaffUser:
    """Give a person another role; the last active admin keeps theirs (someone must administer).
    Their open sessions carry on with the new role from their next request."""
    user = find_user(session, email)
    if user.role == Role.ADMIN and role != Role.ADMIN and user.active and _active_admins(session) <= 1:
        raise Conflict(f"{user.email} is the last active admin: make someone else admin first.")
    user.role = role
    session.commit()
    return user


def _active_admins(session: Session) -> int:
    query = select(StaffUser.id).where(StaffUser.role == Role.ADMIN, StaffUser.active.is_(True))
    return len(session.scalars(query).all())


def link_user(session: Session, token: str) -> StaffUser:
    """The person a one-time link is for, if it is unused, unexpired and their account active."""
    link = session.scalars(select(SignInLink).where(SignInLink.token_hash == hash_token(token))).first()
    if link is None or link.used_at is not None or link.expires_at <= utcnow():
        raise LinkInvalid()
    user = session.get(StaffUser, link.user_id)
    if user is None or not user.active:
        raise LinkInvalid()
    return user


def use_link(session: Session, token: str, password: str, confirm: str, settings: StaffSettings) -> StaffUser:
    """Spend a one-time link: set the person's password. The link works once."""
    user = link_user(session, token)
    _check_password(password, confirm, settings)
    link = session.scalars(
        select(SignInLink).where(SignInLink.token_hash == hash_token(token)).with_for_update()
    ).one()
    if link.used_at is not None:  # spent by a concurrent request meanwhile
        raise LinkInvalid()
    link.used_at = utcnow()
    user.password_hash = _hasher.hash(password)
    user.last_sign_in_at = utcnow()
    session.commit()
    return user


def authenticate(session: Session, email: str, password: str) -> StaffUser | None:
    """The active person with this email and password, or None (in the same time either way)."""
    user = session.scalars(select(StaffUser).where(StaffUser.email == normalise_email(email))).first()
    stored = user.password_hash if user is not None and user.active else None
    try:
        _hasher.verify(stored or _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or stored is None:
        return None
    if _hasher.check_needs_rehash(stored):
        user.password_hash = _hasher.hash(password)
    user.last_sign_in_at = utcnow()
    session.commit()
    return user


def sign_out_everywhere(session: Session, user_id: int) -> int:
    """End every console session of a person; returns how many there were."""
    result = session.execute(delete(StaffSession).where(StaffSession.user_id == user_id))
    session.commit()
    return int(getattr(result, "rowcount", 0) or 0)


def _new_link(session: Session, user: StaffUser, settings: StaffSettings) -> str:
    token = secrets.token_urlsafe(32)
    session.add(
        SignInLink(
            user_id=user.id, token_hash=hash_token(token), expires_at=utcnow() + settings.link_lifetime
        )
    )
    return token


def _check_password(password: str, confirm: str, settings: StaffSettings) -> None:
    errors = []
    if len(password) < settings.password_min_length:
        errors.append(
            {
                "location": "form",
                "field": "password",
                "message": f"Use at least {settings.password_min_length} characters.",
            }
        )
    elif len(password) > 200:
        errors.append({"location": "form", "field": "password", "message": "Use at most 200 characters."})
    if password != confirm:
        errors.append({"location": "form", "field": "confirm", "message": "The two passwords differ."})
    if errors:
        raise InvalidInput("The password cannot be used.", errors)
