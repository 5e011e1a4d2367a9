"""Connectors in the database: configuration for admins, and each pass of the worker.

A pass (`run_pass`) for one connector: read what should be (every mapped treatment's bookability,
by the one rule in `api.booking.rules`) and what the connector remembers hiding, in one short
transaction; ask the booking system what is offered now; plan (`api.connectors.plan`); carry out
each step and record it in its own short transaction (a hidden service, an audit record, and for
a corrected drift a `connector.drift_corrected` event). No transaction is open while the booking
system is asked anything.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from api import outbound
from api.audit.service import Actor, record_audit
from api.booking.rules import is_bookable
from api.changes.service import record_change
from api.connectors.base import Call, ConnectorError, HttpSettings, Unavailable
from api.connectors.models import Connector, ConnectorCall, ConnectorState, HiddenService
from api.connectors.plan import SWITCH_TO, Move, Plan, Step, Wanted, plan
from api.connectors.registry import SYSTEMS, open_system
from api.connectors.vault import Vault, VaultError
from api.db import utcnow
from api.errors import Conflict, InvalidInput, NotFound, ServiceUnavailable
from api.preconditions import check_if_match
from api.treatments.models import ExternalId, Treatment

KEEP_CALLS = 200  # the newest calls kept per connector
LEASE = dt.timedelta(minutes=2)
FULL_PASS_COUNTS = ("in_step", "hidden", "unmapped", "missing", "orphaned")


class ConnectorNotFound(NotFound):
    def __init__(self, connector_id: int):
        super().__init__(f"No connector has the id {connector_id}.")


class SecretsNotConfigured(ServiceUnavailable):
    slug, title = "connectors-not-configured", "Connectors not configured"

    def __init__(self, detail: str):
        super().__init__(detail, retry_after=3600)  # until an operator sets TPA_SECRET_KEYS


# --- configuration ---------------------------------------------------------------------------


def connector_etag(connector: Connector) -> str:
    return f'"c{connector.id}-v{connector.version}"'


def list_connectors(session: Session) -> list[tuple[Connector, ConnectorState]]:
    query = select(Connector, ConnectorState).join(ConnectorState).order_by(Connector.id)
    return [(c, s) for c, s in session.execute(query)]


def find_connector(session: Session, connector_id: int, *, for_update: bool = False) -> Connector:
    connector = session.get(Connector, connector_id, with_for_update=for_update, populate_existing=for_update)
    if connector is None:
        raise ConnectorNotFound(connector_id)
    return connector


def state_of(session: Session, connector_id: int) -> ConnectorState:
    state = session.get(ConnectorState, connector_id)
    if state is None:
        raise ConnectorNotFound(connector_id)
    return state


def create_connector(
    session: Session, data: dict[str, Any], vault: Vault, allow_loopback_http: bool
) -> Connector:
    system = SYSTEMS[data["system"]]
    credentials = _credentials(system.credential_fields, data["credentials"])
    try:
        base_url = data.get("base_url") or system.default_base_url(credentials)
    except ValueError as error:
        raise InvalidInput(
            "The booking system's URL cannot be told.",
            [{"location": "json", "field": "base_url", "message": str(error)}],
        ) from None
    _check_url(base_url, allow_loopback_http)
    connector = Connector(
        system=system.system, name=data["name"], base_url=base_url, active=data.get("active", True),
        credentials=_seal(vault, credentials),
    )  # fmt: skip
    _set_guard(connector, data.get("guard"), vault)
    session.add(connector)
    session.flush()
    session.add(ConnectorState(connector_id=connector.id, counts={}, sync_requested_at=utcnow()))
    session.commit()
    return connector


def update_connector(
    session: Session, connector_id: int, data: dict[str, Any], if_match: str | None, vault: Vault,
    allow_loopback_http: bool,
) -> Connector:  # fmt: skip
    connector = find_connector(session, connector_id, for_update=True)
    check_if_match(if_match, connector_etag(connector))
    if "name" in data:
        connector.name = data["name"]
    if "base_url" in data:
        _check_url(data["base_url"], allow_loopback_http)
        connector.base_url = data["base_url"]
    if "active" in data:
        connector.active = data["active"]
    try:  # a body fine in itself that does not fit the stored connector's system: 409, not 422
        if "credentials" in data:
            fields = SYSTEMS[connector.system].credential_fields
            connector.credentials = _seal(vault, _credentials(fields, data["credentials"]))
        if "guard" in data:
            _set_guard(connector, data["guard"], vault)
    except InvalidInput as error:
        detail = f"{error.detail} (this is a {connector.system} connector)"
        raise Conflict(detail, errors=error.extra["errors"]) from None
    session.execute(
        update(ConnectorState)
        .where(ConnectorState.connector_id == connector_id)
        .values(sync_requested_at=utcnow())
    )
    session.commit()
    return connector


def delete_connector(session: Session, connector_id: int, if_match: str | None) -> None:
    """Delete a connector and its bookkeeping. What it hid stays hidden (fail closed): staff switch
    those services on in the booking system, if they want them back."""
    connector = find_connector(session, connector_id, for_update=True)
    if if_match is not None:
        check_if_match(if_match, connector_etag(connector))
    session.delete(connector)
    session.commit()


def request_sync(session: Session, connector_id: int) -> tuple[Connector, ConnectorState]:
    """Ask the worker for a full pass; the connector and its state, as an admin then sees them."""
    connector = find_connector(session, connector_id)
    state = state_of(session, connector_id)
    state.sync_requested_at = utcnow()
    session.commit()
    return connector, state


def list_calls(session: Session, connector_id: int, limit: int) -> list[ConnectorCall]:
    find_connector(session, connector_id)
    query = select(ConnectorCall).where(ConnectorCall.connector_id == connector_id)
    return list(session.scalars(query.order_by(ConnectorCall.id.desc()).limit(limit)))


def hidden_services(session: Session, connector_id: int) -> list[HiddenService]:
    query = select(HiddenService).where(HiddenService.connector_id == connector_id)
    return list(session.scalars(query.order_by(HiddenService.treatment_slug)))


def rotate_keys(session: Session, vault: Vault) -> int:
    """Re-encrypt every connector's credentials with the newest key; how many were rewritten."""
    rows = session.execute(select(Connector.id, Connector.credentials, Connector.guard_secret)).all()
    for connector_id, token, guard_token in rows:
        # A Core update: the same configuration, so the row version (the ETag) stays as it is.
        resealed = {"credentials": vault.reseal(token)} | (
            {"guard_secret": vault.reseal(guard_token)} if guard_token else {}
        )
        session.execute(update(Connector).where(Connector.id == connector_id).values(**resealed))
    session.commit()
    return len(rows)


def _credentials(fields: tuple[str, ...], given: dict[str, Any]) -> dict[str, str]:
    """The system's credential fields from `given`; InvalidInput names what is missing or unknown."""
    errors = [
        {"location": "json", "field": f"credentials.{name}", "message": "Missing data for required field."}
        for name in fields
        if not isinstance(given.get(name), str) or not given[name]
    ]
    errors += [
        {"location": "json", "field": f"credentials.{name}", "message": "Unknown field."}
        for name in given
        if name not in fields
    ]
    if errors:
        raise InvalidInput("The credentials do not fit the booking system.", errors)
    return {name: given[name] for name in fields}


def _set_guard(connector: Connector, guard: dict[str, Any] | None, vault: Vault) -> None:
    """Guard mode on (its signature key sealed like the credentials) or, with None, off."""
    if guard is None:
        connector.guard = connector.guard_secret = None
        return
    if not getattr(SYSTEMS[connector.system], "guards_bookings", False):
        raise InvalidInput(
            "This booking system cannot be guarded.",
            [{"location": "json", "field": "guard", "message": "Guard mode is available for Square only."}],
        )
    connector.guard = {"notification_url": guard["notification_url"], "action": guard["action"]}
    connector.guard_secret = _seal(vault, {"signature_key": guard["signature_key"]})


def _seal(vault: Vault, credentials: dict[str, str]) -> str:
    try:
        return vault.seal(credentials)
    except VaultError as error:
        raise SecretsNotConfigured(str(error)) from None


def _check_url(url: str, allow_loopback_http: bool) -> None:
    problem = outbound.url_problem(url, allow_loopback_http, "TPA_CONNECTORS_ALLOW_LOOPBACK_HTTP")
    if problem:
        raise InvalidInput(
            "The booking system's URL is not allowed.",
            [{"location": "json", "field": "base_url", "message": problem}],
        )


# --- a pass --------------------------------------------------------------------------------------


@dataclass
class Report:
    """What one pass found and did."""

    connector_id: int
    full: bool
    dry_run: bool
    plan: Plan = field(default_factory=Plan)
    done: list[Step] = field(default_factory=list)
    error: str | None = None
    retry_after: float | None = None  # the booking system asked to wait this long
    calls: list[Call] = field(default_factory=list)

    def lines(self, findings: bool = True) -> list[str]:
        """What the pass changed (or would), its error, and with `findings` what it left alone."""
        verb = "would " if self.dry_run else ""
        steps = self.plan.steps if self.dry_run else self.done
        out = [f"{verb}{_WORDS[s.move]} {s.slug} ({s.external_id})" for s in steps]
        out += [f"failed: {self.error}"] if self.error else []
        if findings:
            out += [f"{slug} has no mapping (left alone)" for slug in self.plan.unmapped]
            out += [
                f"{slug} maps to {sid}, which names no service (left alone)"
                for slug, sid in self.plan.missing
            ]
            out += [
                f"{sid} was hidden for {slug}, whose mapping was removed (left off)"
                for slug, sid in self.plan.orphaned
            ]
        return [f"connector {self.connector_id}: {line}" for line in out]


_AUDIT_ACTIONS = {Move.HIDE: "hidden", Move.CORRECT_DRIFT: "drift_corrected", Move.RESTORE: "restored"}
_WORDS = {
    Move.HIDE: "switch off",
    Move.CORRECT_DRIFT: "switch off again (drift)",
    Move.RESTORE: "switch back on",
    Move.FORGET: "forget (already on again)",
}


def run_pass(
    sessions: Callable[[], Session], connector_id: int, vault: Vault, settings: HttpSettings,
    slugs: Iterable[str] | None = None, dry_run: bool = False,
) -> Report:  # fmt: skip
    """One pass for one connector: over every treatment, or only `slugs`. Raises nothing for the
    booking system's failures: they end up in the report's `error` (and the connector's status)."""
    scope = None if slugs is None else sorted(set(slugs))
    report = Report(connector_id, full=scope is None, dry_run=dry_run)
    with sessions() as session:
        connector = find_connector(session, connector_id)
        wanted = _wanted(session, connector.system, scope)
        hidden = {h.external_id: h.treatment_slug for h in _hidden(session, connector_id, scope)}
        try:
            credentials = vault.open(connector.credentials)
        except VaultError as error:
            report.error = str(error)
            return report
        system, base_url = connector.system, connector.base_url
    client = open_system(system, base_url, credentials, settings)
    report.calls = client.http.calls
    try:
        ids = [w.external_id for w in wanted if w.external_id] + list(hidden)
        report.plan = plan(wanted, client.read(ids) if ids else {}, hidden)
        if dry_run:
            return report
        for step in report.plan.steps:
            if step.move in SWITCH_TO:
                client.switch(step.external_id, SWITCH_TO[step.move])
            with sessions() as session:
                _record_step(session, connector_id, step)
            report.done.append(step)
    except ConnectorError as error:
        report.error = str(error)
        report.retry_after = error.retry_after if isinstance(error, Unavailable) else None
    return report


def _wanted(session: Session, system: str, scope: list[str] | None) -> list[Wanted]:
    mapping = ExternalId.__table__.alias("mapping")
    query = select(Treatment.slug, Treatment.status, Treatment.suspended_at, mapping.c.external_id).outerjoin(
        mapping, (mapping.c.treatment_id == Treatment.id) & (mapping.c.system == system)
    )
    if scope is not None:
        query = query.where(Treatment.slug.in_(scope))
    return [
        Wanted(row.slug, row.external_id, is_bookable(row.status, row.suspended_at is not None))
        for row in session.execute(query.order_by(Treatment.slug))
    ]


def _hidden(session: Session, connector_id: int, scope: list[str] | None) -> list[HiddenService]:
    query = select(HiddenService).where(HiddenService.connector_id == connector_id)
    if scope is not None:
        query = query.where(HiddenService.treatment_slug.in_(scope))
    return list(session.scalars(query))


def _record_step(session: Session, connector_id: int, step: Step) -> None:
    """Remember the step, audit it against the treatment, and announce a corrected drift."""
    connector = find_connector(session, connector_id)
    actor = Actor(name=f"connector:{connector.name}"[:100], role="system")
    if step.move == Move.HIDE:
        session.add(
            HiddenService(connector_id=connector_id, external_id=step.external_id, treatment_slug=step.slug)
        )
    elif step.move in (Move.RESTORE, Move.FORGET):
        session.execute(
            delete(HiddenService).where(
                HiddenService.connector_id == connector_id, HiddenService.external_id == step.external_id
            )
        )
    treatment_id = session.scalar(select(Treatment.id).where(Treatment.slug == step.slug))
    if treatment_id is not None and step.move in SWITCH_TO:
        online = SWITCH_TO[step.move]
        record_audit(
            session, treatment_id=treatment_id, entity="connector", entity_id=connector_id,
            action=_AUDIT_ACTIONS[step.move],
            actor=actor,
            changes={"online_booking": {"from": not online, "to": online}, "system": connector.system,
                     "external_id": step.external_id},
        )  # fmt: skip
    if step.move == Move.CORRECT_DRIFT:
        record_change(
            session, "connector.drift_corrected", step.slug,
            {"slug": step.slug, "connector_id": connector_id, "system": connector.system,
             "external_id": step.external_id, "online_booking": False},
        )  # fmt: skip
    session.commit()


# --- bookkeeping -----------------------------------------------------------------------------


def record_report(session: Session, report: Report) -> None:
    """The pass's outcome on the connector's status, and its calls in the log (the newest kept)."""
    state = session.get(ConnectorState, report.connector_id, with_for_update=True)
    if state is None:  # deleted meanwhile
        return
    now = utcnow()
    state.last_pass_at = now
    if report.error:
        state.last_error, state.last_error_at = report.error, now
    else:
        state.last_success_at = now
        state.last_error = None
    counts = dict(state.counts or {})
    if report.full and not report.error and not report.dry_run:
        counts |= {
            "in_step": len(report.plan.in_step),
            "unmapped": len(report.plan.unmapped),
            "missing": len(report.plan.missing),
            "orphaned": len(report.plan.orphaned),
        }
    drift = sum(1 for s in report.done if s.move == Move.CORRECT_DRIFT)
    counts["drift_corrected"] = counts.get("drift_corrected", 0) + drift
    counts["hidden"] = len(_hidden(session, report.connector_id, None))
    state.counts = counts
    session.add_all(
        ConnectorCall(connector_id=report.connector_id, at=c.at, method=c.method, path=c.path[:500],
                      status=c.status, duration_ms=c.duration_ms, error=c.error)
        for c in report.calls
    )  # fmt: skip
    session.flush()
    oldest_kept = session.scalar(
        select(ConnectorCall.id)
        .where(ConnectorCall.connector_id == report.connector_id)
        .order_by(ConnectorCall.id.desc())
        .offset(KEEP_CALLS - 1)
        .limit(1)
    )
    if oldest_kept is not None:
        session.execute(
            delete(ConnectorCall).where(
                ConnectorCall.connector_id == report.connector_id, ConnectorCall.id < oldest_kept
            )
        )
    session.commit()


# --- the worker's lease ----------------------------------------------------------------------


def claim(session: Session, connector_id: int, owner: str, now: dt.datetime) -> bool:
    """Take the connector's lease (one pass at a time per connector, whichever worker); False if
    another worker holds it. Conditional, so two workers cannot both win it."""
    taken = session.execute(
        update(ConnectorState)
        .where(
            ConnectorState.connector_id == connector_id,
            or_(ConnectorState.lease_until.is_(None), ConnectorState.lease_until < now,
                ConnectorState.lease_owner == owner),
        )
        .values(lease_owner=owner, lease_until=now + LEASE)
    ).rowcount  # fmt: skip
    session.commit()
    return bool(taken)


def release(session: Session, connector_id: int, owner: str) -> None:
    session.execute(
        update(ConnectorState)
        .where(ConnectorState.connector_id == connector_id, ConnectorState.lease_owner == owner)
        .values(lease_owner=None, lease_until=None)
    )
    session.commit()


def due_for_sync(session: Session) -> list[int]:
    """Connectors an admin asked to sync (or just created or changed); the request is taken."""
    ids = list(
        session.scalars(
            select(ConnectorState.connector_id)
            .join(Connector)
            .where(ConnectorState.sync_requested_at.is_not(None), Connector.active.is_(True))
        )
    )
    if ids:
        session.execute(
            update(ConnectorState).where(ConnectorState.connector_id.in_(ids)).values(sync_requested_at=None)
        )
    session.commit()
    return ids


def active_connector_ids(session: Session) -> list[int]:
    ids = list(session.scalars(select(Connector.id).where(Connector.active.is_(True)).order_by(Connector.id)))
    session.commit()
    return ids
