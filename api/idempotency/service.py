"""Idempotency keys for POSTs, in the manner of Stripe's.

A POST with `Idempotency-Key` first claims the key (scoped to the caller) in its own small
transaction. The claim is a primary key, so of concurrent retries exactly one proceeds; the
others get 409 while it runs, and the stored first response once it has finished. The same key
with a different body is 422. Responses of 5xx and 429 are not kept, so those can be retried.
Keys are kept `IDEMPOTENCY_TTL_HOURS` (24 by default). A claim whose outcome was never recorded
(the process or the database died mid-request) is released after `IDEMPOTENCY_CLAIM_SECONDS`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
from dataclasses import dataclass

from flask import Flask, Response, current_app, g, request
from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from api.api_keys.auth import authenticate, required_role
from api.db import get_engine, utcnow
from api.errors import Conflict, InvalidInput
from api.idempotency.models import IdempotencyRecord

HEADER = "Idempotency-Key"
log = logging.getLogger(__name__)
KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,255}$")
REPLAYED_HEADERS = ("Content-Type", "ETag", "Location", "Last-Modified")


class IdempotencyKeyInUse(Conflict):
    slug, title = "idempotency-key-in-use", "Request in progress"


@dataclass(frozen=True)
class Claim:
    scope: str
    key: str


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
    """Claim the key, or answer from the first request that used it."""
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
    scope, fingerprint = _scope(), _fingerprint()
    ttl = dt.timedelta(hours=current_app.config["IDEMPOTENCY_TTL_HOURS"])
    claim_ttl = dt.timedelta(seconds=current_app.config["IDEMPOTENCY_CLAIM_SECONDS"])
    with Session(get_engine()) as session:
        for _attempt in range(2):
            session.add(IdempotencyRecord(scope=scope, key=key, method=request.method, path=request.path,
                                          request_hash=fingerprint))  # fmt: skip
            try:
                session.commit()
                g.idempotency_claim = Claim(scope, key)
                return None
            except IntegrityError:
                session.rollback()
            record = session.get(IdempotencyRecord, (scope, key))
            if record is None:
                continue  # released between our insert and our read: try again
            abandoned = record.response_status is None and record.created_at < utcnow() - claim_ttl
            if record.created_at < utcnow() - ttl or abandoned:
                session.delete(record)
                session.commit()
                continue
            return _answer_existing(record, fingerprint)
    raise IdempotencyKeyInUse("This idempotency key is in use; retry shortly.", headers={"Retry-After": "1"})


def _answer_existing(record: IdempotencyRecord, fingerprint: str) -> Response:
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


def finish(response: Response) -> Response:
    """Keep the first response for replays; release the key if the outcome may change."""
    claim: Claim | None = g.pop("idempotency_claim", None)
    if claim is None:
        return response
    if response.status_code >= 500 or response.status_code == 429:
        _release(claim)
        return response
    where = (IdempotencyRecord.scope == claim.scope) & (IdempotencyRecord.key == claim.key)
    headers = {h: response.headers[h] for h in REPLAYED_HEADERS if h in response.headers}
    stored = {"response_status": response.status_code, "response_body": response.get_data(as_text=True),
              "response_headers": headers}  # fmt: skip
    try:
        with get_engine().begin() as conn:
            conn.execute(update(IdempotencyRecord).where(where).values(**stored))
    except SQLAlchemyError:
        # The database went away after the answer was made: the answer stands; the claim is
        # released after IDEMPOTENCY_CLAIM_SECONDS.
        log.warning("could not record the idempotent response", exc_info=True)
    return response


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
    def _release_if_unanswered(_exc: BaseException | None) -> None:
        claim = g.pop("idempotency_claim", None)
        if claim is not None:  # the request died before a response: let a retry run
            _release(claim)


# Claims this process could not release because the database was gone; released first thing
# once it is back (other processes' retries wait for IDEMPOTENCY_CLAIM_SECONDS instead).
_unreleased: set[Claim] = set()


def _release(claim: Claim) -> None:
    try:
        with get_engine().begin() as conn:
            conn.execute(
                delete(IdempotencyRecord).where(
                    (IdempotencyRecord.scope == claim.scope) & (IdempotencyRecord.key == claim.key)
                )
            )
        _unreleased.discard(claim)
    except SQLAlchemyError:
        log.warning("could not release an idempotency claim yet", exc_info=True)
        _unreleased.add(claim)


def _release_unreleased() -> None:
    for claim in list(_unreleased):
        _release(claim)
