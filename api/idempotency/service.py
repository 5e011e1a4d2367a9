"""Idempotency keys for POSTs, in the manner of Stripe's: a retry replays or runs, never twice.

A POST with `Idempotency-Key` first claims the key (scoped to the caller) in a small transaction
of its own. The claim is a primary key, so of concurrent retries exactly one proceeds; the others
get 409 while it runs, and the stored answer once it has finished. The same key with another
body is 422.

The answer is stored by the same COMMIT as the write. The claimed request's session joins a
transaction this module holds open on the request's connection: the service's
`session.commit()` flushes its work and runs the before-commit hooks (change events, webhook
outbox), but the COMMIT waits until the answer is made. `finish` then writes the answer onto the
key's row in that transaction and commits both. Whatever fails, COMMIT included, the database
holds either the write and its answer (a retry replays the answer, `Idempotent-Replayed: true`)
or neither (the claim is released and a retry runs for the first time). It never holds the write
alone.

- A 2xx or 3xx answer commits the work the service committed, with the answer.
- A 4xx answer leaves no work behind. The answer is stored alone and replayed.
- A 5xx or 429 answer leaves no work behind and is not stored, so a retry runs again.
- If the database fails at or before the COMMIT, the answer is 503 and the claim is released.
  This happens at once, or, when the database is away, first thing in this process once it is
  back (a claim whose own COMMIT failed included). Other processes take over a claim left
  without an answer after `IDEMPOTENCY_CLAIM_SECONDS`.

A claim is known by its key and the moment it was made. An answer is written, and a claim
released, only while the row is still that claim without an answer. A claim is taken over only
while it is still stale. So a request whose claim was taken over while it ran commits nothing
and hears 409. The held work is the service's one transaction (one commit per use case): a
rollback after its commit would undo it. The read cache hears of the write at the real COMMIT.
Keys are kept `IDEMPOTENCY_TTL_HOURS` (24 by default).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, current_app, g, request
from sqlalchemy import ColumnElement, Connection, delete, event, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from api.api_keys.auth import authenticate, required_role
from api.changes.service import PUBLIC_WRITE
from api.db import get_engine, utcnow
from api.errors import (
    Conflict,
    InvalidInput,
    ServiceUnavailable,
    handle_domain_error,
    handle_integrity_error,
)
from api.idempotency.models import IdempotencyRecord

HEADER = "Idempotency-Key"
log = logging.getLogger(__name__)
KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,255}$")
REPLAYED_HEADERS = ("Content-Type", "ETag", "Location", "Last-Modified")
RECORD_COLUMNS = tuple(IdempotencyRecord.__table__.c)


class IdempotencyKeyInUse(Conflict):
    slug, title = "idempotency-key-in-use", "Request in progress"


@dataclass(frozen=True)
class Claim:
    scope: str
    key: str
    made_at: dt.datetime

    def unanswered(self) -> ColumnElement[bool]:
        """This claim's row, while it has no answer."""
        return (
            (IdempotencyRecord.scope == self.scope)
            & (IdempotencyRecord.key == self.key)
            & (IdempotencyRecord.created_at == self.made_at)
            & IdempotencyRecord.response_status.is_(None)
        )


@dataclass
class Pending:
    """A claimed request: its work held in one transaction on `connection` until it is answered."""

    claim: Claim
    connection: Connection
    session: Session
    committed: bool = False  # the service committed its work (not yet the database)
    answered: bool = False


def _scope() -> str:
    """Keys belong to the caller: the bearer credential's hash, else the client address."""
    auth = request.headers.get("Authorization")
    if auth:
        return "auth:" + hashlib.sha256(auth.encode()).hexdigest()[:40]
    return "addr:" + (request.remote_addr or "unknown")


def _fingerprint() -> str:
    digest = hashlib.sha256()
    for part in (request.method, request.path, request.query_string.decode(), request.content_type or ""):
        digest.update(part.encode() + b"\0")
    digest.update(request.get_data())
    return digest.hexdigest()


def begin() -> Response | None:
    """Claim the key and hold the request's work open, or answer from the first request."""
    key = request.headers.get(HEADER)
    if request.method != "POST" or key is None:
        return None
    # A request its route refuses (401, 403) is refused before its key is claimed, so that a
    # retry with the same key still hears why, not that the key was used.
    role = required_role(request.endpoint, request.method)
    if role is not None:
        g.actor = authenticate(role)
    _release_unreleased()
    if not KEY_PATTERN.match(key):
        raise InvalidInput(
            "Idempotency-Key must be 1 to 255 visible ASCII characters.",
            [{"location": "headers", "field": HEADER, "message": "Invalid idempotency key."}],
        )
    _close_request_session()  # authentication's reads: the work starts on the held connection
    connection = get_engine().connect()
    try:
        claimed = _claim(connection, _scope(), key, _fingerprint())
        if isinstance(claimed, Response):
            connection.close()
            return claimed
        _hold(connection, claimed)
    except BaseException:
        with suppress(SQLAlchemyError):
            connection.close()
        raise
    return None


def _claim(connection: Connection, scope: str, key: str, fingerprint: str) -> Claim | Response:
    ttl = dt.timedelta(hours=current_app.config["IDEMPOTENCY_TTL_HOURS"])
    claim_ttl = dt.timedelta(seconds=current_app.config["IDEMPOTENCY_CLAIM_SECONDS"])
    this_key = (IdempotencyRecord.scope == scope) & (IdempotencyRecord.key == key)
    for _attempt in range(2):
        claim = Claim(scope, key, utcnow())
        try:
            connection.execute(insert(IdempotencyRecord).values(
                scope=scope, key=key, method=request.method, path=request.path, request_hash=fingerprint,
                created_at=claim.made_at,
            ))  # fmt: skip
            connection.commit()
            return claim
        except IntegrityError:
            connection.rollback()
        except SQLAlchemyError:
            _unreleased.add(claim)  # its COMMIT may have reached the database: release it later
            raise
        record = connection.execute(select(*RECORD_COLUMNS).where(this_key)).first()
        if record is None:
            connection.rollback()
            continue  # released between our insert and our read: try again
        now = utcnow()
        abandoned = record.response_status is None and record.created_at < now - claim_ttl
        if record.created_at < now - ttl or abandoned:
            # Still stale when deleted: not a claim made since, nor one answered meanwhile.
            made = IdempotencyRecord.created_at
            left = IdempotencyRecord.response_status.is_(None) & (made < now - claim_ttl)
            connection.execute(delete(IdempotencyRecord).where(this_key & ((made < now - ttl) | left)))
            connection.commit()
            continue
        connection.rollback()
        return _answer_existing(record, fingerprint)
    raise IdempotencyKeyInUse("This idempotency key is in use; retry shortly.", headers={"Retry-After": "1"})


def _answer_existing(record: Any, fingerprint: str) -> Response:
    if record.request_hash != fingerprint or record.path != request.path:
        raise InvalidInput(
            "This idempotency key was used with a different request.",
            [{"location": "headers", "field": HEADER, "message": "Key reused with another body."}],
        )
    if record.response_status is None:
        raise IdempotencyKeyInUse(
            "A request with this idempotency key is still in progress; retry shortly.",
            headers={"Retry-After": "1"},
        )
    response = Response(record.response_body or b"", status=record.response_status)
    for name, value in (record.response_headers or {}).items():
        response.headers[name] = value
    response.headers["Idempotent-Replayed"] = "true"
    return response


def _hold(connection: Connection, claim: Claim) -> None:
    """Open the transaction the request's work joins: its session commits nothing itself."""
    connection.begin()
    session = Session(bind=connection, expire_on_commit=False, join_transaction_mode="rollback_only")
    pending = Pending(claim, connection, session)

    @event.listens_for(session, "after_commit")
    def _committed(_session: Session) -> None:
        pending.committed = True

    @event.listens_for(session, "after_rollback")
    def _rolled_back(_session: Session) -> None:
        # The held transaction is gone, and the work in it: later work joins a new one. A
        # connection that failed is closed, so the session cannot commit on a new one by itself.
        pending.committed = False
        session.info.pop(PUBLIC_WRITE, None)
        if connection.invalidated:
            connection.close()
        elif not connection.closed and not connection.in_transaction():
            connection.begin()

    g.db_session = session  # what `api.db.get_session()` gives the route and its service
    g.idempotency = pending


def finish(response: Response) -> Response:
    """Commit the work with its answer; or discard the work, and store or release the key."""
    pending: Pending | None = g.get("idempotency")
    if pending is None or pending.answered:
        return response
    pending.answered = True
    status = response.status_code
    if status >= 500 or status == 429:
        _discard(pending)
        return response
    connection = pending.connection
    try:
        if status >= 400 or not pending.committed:  # the service committed nothing to keep
            connection.rollback()
            pending.session.info.pop(PUBLIC_WRITE, None)
        headers = {h: response.headers[h] for h in REPLAYED_HEADERS if h in response.headers}
        answer = {"response_status": status, "response_body": response.get_data(as_text=True),
                  "response_headers": headers}  # fmt: skip
        onto_claim = update(IdempotencyRecord).where(pending.claim.unanswered())
        stored = connection.execute(onto_claim.values(answer))
        if stored.rowcount != 1:
            connection.rollback()  # the claim was taken over: that request does the work
            pending.session.info.pop(PUBLIC_WRITE, None)
            return handle_domain_error(IdempotencyKeyInUse(
                "This request outlived its claim on the idempotency key; another request took it over.",
                headers={"Retry-After": "1"},
            ))  # fmt: skip
        connection.commit()
    except SQLAlchemyError as error:
        _discard(pending)
        if status >= 400:
            return response  # nothing was written: the answer stands, and a retry runs again
        if isinstance(error, IntegrityError):
            return handle_integrity_error(error)
        log.error("could not commit an idempotent write: %s", getattr(error, "orig", None) or error)
        return handle_domain_error(ServiceUnavailable("The database cannot be reached; try again shortly."))
    if pending.session.info.pop(PUBLIC_WRITE, False):
        # What `api.db.after_commit` does for the factory's sessions, at the real COMMIT.
        current_app.extensions["readcache"].coherence.wrote()
    return response


def _discard(pending: Pending) -> None:
    """Roll the work back and release the claim: a retry runs for the first time."""
    pending.session.info.pop(PUBLIC_WRITE, None)
    with suppress(SQLAlchemyError):
        pending.connection.rollback()
    _release(pending.claim)


def _close_request_session() -> None:
    session = g.pop("db_session", None)
    if session is not None:
        try:
            session.close()
        except SQLAlchemyError:
            session.invalidate()


def purge_expired(session: Session, now: dt.datetime | None = None) -> int:
    """Delete keys older than the retention period; returns how many."""
    cutoff = (now or utcnow()) - dt.timedelta(hours=current_app.config["IDEMPOTENCY_TTL_HOURS"])
    result = session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.created_at < cutoff))
    session.commit()
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def init_app(app: Flask) -> None:
    app.before_request(begin)
    app.after_request(finish)

    @app.teardown_request
    def _end_held_transaction(_exc: BaseException | None) -> None:
        pending: Pending | None = g.pop("idempotency", None)
        if pending is None:
            return
        if not pending.answered:  # the request died before an answer: let a retry run
            _discard(pending)
        _close_request_session()
        with suppress(SQLAlchemyError):
            pending.connection.close()


# Claims this process could not release because the database was gone; released first thing
# once it is back (other processes' retries wait for IDEMPOTENCY_CLAIM_SECONDS instead).
_unreleased: set[Claim] = set()


def _release(claim: Claim) -> None:
    """Delete the claim if it is still without an answer (on a connection of its own: the
    request's may be the one that failed)."""
    try:
        with get_engine().begin() as conn:
            conn.execute(delete(IdempotencyRecord).where(claim.unanswered()))
        _unreleased.discard(claim)
    except SQLAlchemyError:
        log.warning("could not release an idempotency claim yet", exc_info=True)
        _unreleased.add(claim)


def _release_unreleased() -> None:
    for claim in list(_unreleased):
        _release(claim)
        if claim in _unreleased:
            return  # the database is still away: the rest wait for the next request
