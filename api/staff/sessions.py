"""Server-side console sessions: Flask's `session`, kept in the `staff_sessions` table.

The cookie carries only a random token (256 bits); the session's data (Flask-Login's user id,
Flask-WTF's CSRF token, flashed messages) is a row keyed by the token's SHA-256. So deleting rows
signs browsers out wherever they are ("sign out everywhere", an admin's reset, deactivation), a
session unused for `CONSOLE_IDLE_MINUTES` or older than `CONSOLE_SESSION_MAX_HOURS` ends, and
every worker on every host sees the same sessions through the database.

Only paths under `SESSION_COOKIE_PATH` (/console) have a session; the API's routes get Flask's
null session and never touch the table.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from typing import Any

from flask import Flask, Request, Response
from flask.sessions import SessionInterface, SessionMixin
from sqlalchemy import delete
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.datastructures import CallbackDict

from api.db import get_session, utcnow
from api.staff.models import StaffSession
from api.staff.service import hash_token

TOUCH_EVERY = dt.timedelta(minutes=1)  # last_seen_at is written at most this often
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError, PoolTimeout)  # as api.errors answers 503
log = logging.getLogger(__name__)


class ServerSession(CallbackDict[str, Any], SessionMixin):
    """A session whose data lives in the database; the cookie holds its token."""

    def __init__(
        self,
        initial: dict[str, Any] | None = None,
        token: str | None = None,
        touch: bool = False,
        unavailable: bool = False,
    ) -> None:
        def on_update(session: ServerSession) -> None:
            session.modified = True

        super().__init__(initial or {}, on_update)
        self.token = token  # None until stored
        self.modified = False
        self.touch = touch  # last_seen_at is due an update
        self.rotate = False
        # The database could not be asked: the console answers 503 (api.console.blueprint).
        self.unavailable = unavailable

    def regenerate(self) -> None:
        """Give the session a new token when it is saved (at sign-in: no fixation)."""
        self.rotate = True
        self.modified = True


class ServerSessionInterface(SessionInterface):
    def _applies(self, app: Flask, request: Request) -> bool:
        """Console pages have sessions; the API and the console's static files do not."""
        path = request.path
        return path.startswith(app.config["SESSION_COOKIE_PATH"]) and not path.startswith("/console/static/")

    def open_session(self, app: Flask, request: Request) -> ServerSession | None:
        if not self._applies(app, request):
            return None  # Flask's null session: the API has no sessions
        token = request.cookies.get(app.config["SESSION_COOKIE_NAME"])
        if not token or len(token) > 100:
            return ServerSession()
        try:
            return self._load(app, token)
        except DATABASE_UNAVAILABLE:
            log.warning("console session not loaded: the database is unavailable", exc_info=True)
            return ServerSession(token=token, unavailable=True)

    def _load(self, app: Flask, token: str) -> ServerSession:
        db = get_session()
        row = db.get(StaffSession, hash_token(token))
        if row is None:
            return ServerSession()
        now = utcnow()
        idle = dt.timedelta(minutes=app.config["CONSOLE_IDLE_MINUTES"])
        lifetime = dt.timedelta(hours=app.config["CONSOLE_SESSION_MAX_HOURS"])
        if now - row.last_seen_at > idle or now - row.created_at > lifetime:
            db.delete(row)
            db.commit()
            return ServerSession()
        data = dict(row.data)
        return ServerSession(data, token=token, touch=now - row.last_seen_at > TOUCH_EVERY)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        if not isinstance(session, ServerSession) or session.unavailable:
            return
        try:
            self._save(app, session, response)
        except DATABASE_UNAVAILABLE:  # the answer stands; the session's change is lost (logged)
            log.warning("console session not saved: the database is unavailable", exc_info=True)
            get_session().invalidate()

    def _save(self, app: Flask, session: ServerSession, response: Response) -> None:
        from flask import request

        name, path = app.config["SESSION_COOKIE_NAME"], app.config["SESSION_COOKIE_PATH"]
        db = get_session()
        # Whatever the request left uncommitted (a refused write) is not the session's to commit.
        db.rollback()
        now = utcnow()
        if session.token is not None and (session.rotate or not session):
            db.execute(delete(StaffSession).where(StaffSession.id == hash_token(session.token)))
            if not session:
                db.commit()
                response.delete_cookie(
                    name, path=path, httponly=True, samesite="Lax", secure=request.is_secure
                )
                return
            session.token = None
        if not session:
            return  # nothing to keep, nothing stored
        user_id = session.get("_user_id")
        user_id = int(user_id) if user_id is not None else None
        if session.token is None:
            session.token = secrets.token_urlsafe(32)
            db.add(
                StaffSession(
                    id=hash_token(session.token),
                    user_id=user_id,
                    data=dict(session),
                    created_at=now,
                    last_seen_at=now,
                )
            )
            self._prune(app, db, now)
        elif session.modified or session.touch:
            row = db.get(StaffSession, hash_token(session.token))
            if row is None:  # ended meanwhile (signed out everywhere): stays ended
                db.commit()
                response.delete_cookie(
                    name, path=path, httponly=True, samesite="Lax", secure=request.is_secure
                )
                return
            row.data, row.user_id, row.last_seen_at = dict(session), user_id, now
        else:
            return
        db.commit()
        response.set_cookie(
            name, session.token, path=path, httponly=True, samesite="Lax", secure=request.is_secure
        )

    def _prune(self, app: Flask, db: Any, now: dt.datetime) -> None:
        """Sessions past their idle timeout go when a new one starts (the table stays small)."""
        idle = dt.timedelta(minutes=app.config["CONSOLE_IDLE_MINUTES"])
        db.execute(delete(StaffSession).where(StaffSession.last_seen_at < now - idle))
