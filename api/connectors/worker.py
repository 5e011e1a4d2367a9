"""The connector worker: `flask --app api connectors run`, one per deployment (several are safe:
each pass takes its connector's lease, so they never run one connector's passes at once).

It follows our own change feed: every `WORKER_POLL_SECONDS` (0.5 s) it reads the events committed
since the last look, and a `treatment.bookability_changed` (or a treatment created or updated: its
mapping may have changed) sets off a pass over just those treatments, on every active connector.
So a decision reaches the booking system within about a second, not at the next timed pass.
A full pass (reconciliation: drift, mappings) runs at start, every `CONNECTORS_RECONCILE_SECONDS`
(5 minutes) and when an admin asks (`POST /v1/connectors/{id}/sync`).

Each connector has a thread of its own (`Runner`), so one that is slow, refusing or down never
delays another; its passes run one at a time, so its writes to the booking system are serialised.
A failed pass is retried with exponential backoff (or after the system's `Retry-After`), keeping
the treatments it still owes.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from api.changes.models import ChangeEvent
from api.connectors import service
from api.connectors.base import HttpSettings, backoff
from api.connectors.vault import Vault
from api.db import utcnow

WATCHED_EVENTS = ("treatment.bookability_changed", "treatment.created", "treatment.updated")
EVENTS_PER_LOOK = 1000


@dataclass(frozen=True)
class WorkerSettings:
    poll_seconds: float = 0.5
    reconcile_seconds: float = 300.0
    backoff_base_seconds: float = 2.0
    backoff_cap_seconds: float = 300.0

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> WorkerSettings:
        return cls(
            poll_seconds=float(config["CONNECTORS_POLL_SECONDS"]),
            reconcile_seconds=float(config["CONNECTORS_RECONCILE_SECONDS"]),
            backoff_base_seconds=float(config["CONNECTORS_PASS_BACKOFF_BASE_SECONDS"]),
            backoff_cap_seconds=float(config["CONNECTORS_PASS_BACKOFF_CAP_SECONDS"]),
        )


class Passes:
    """Runs one connector's pass under its lease and records the outcome (what a Runner calls)."""

    def __init__(
        self, app: Flask, say: Callable[[str], None], owner: str | None = None, findings: bool = True
    ):
        self.sessions: Callable[[], Session] = app.extensions["db_sessionmaker"]
        self.vault: Vault = app.extensions["connector_vault"]
        self.http = HttpSettings.from_config(app.config)
        self.say = say
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}"
        self.findings = (
            findings  # also say what a pass left alone (the worker does not: the status counts it)
        )

    def run(
        self, connector_id: int, slugs: Iterable[str] | None, dry_run: bool = False
    ) -> service.Report | None:
        """The pass's report; None when another worker holds the connector's lease."""
        with self.sessions() as session:
            if not service.claim(session, connector_id, self.owner, utcnow()):
                return None
        try:
            report = service.run_pass(self.sessions, connector_id, self.vault, self.http, slugs, dry_run)
            with self.sessions() as session:
                service.record_report(session, report)
        finally:
            with self.sessions() as session:
                service.release(session, connector_id, self.owner)
        for line in report.lines(self.findings):
            self.say(line)
        return report


class Runner(threading.Thread):
    """One connector's passes, one at a time, in a thread of its own."""

    def __init__(self, connector_id: int, passes: Passes, settings: WorkerSettings):
        super().__init__(name=f"connector-{connector_id}", daemon=True)
        self.connector_id, self.passes, self.settings = connector_id, passes, settings
        self.ready = threading.Condition()
        self.full, self.slugs, self.stopping = False, set[str](), False
        self.not_before, self.failures = 0.0, 0

    def want(self, slugs: Iterable[str] | None = None) -> None:
        """Ask for a pass over `slugs`, or a full one (None)."""
        with self.ready:
            if slugs is None:
                self.full = True
            else:
                self.slugs.update(slugs)
            self.ready.notify()

    def stop(self) -> None:
        with self.ready:
            self.stopping = True
            self.ready.notify()

    def run(self) -> None:
        while True:
            with self.ready:
                while not self.stopping and not (self.full or self.slugs):
                    self.ready.wait()
                if self.stopping:
                    return
                delay = self.not_before - time.monotonic()
                if delay > 0:
                    self.ready.wait(delay)
                    continue
                full, slugs = self.full, self.slugs
                self.full, self.slugs = False, set()
            self._one(full, slugs)

    def _one(self, full: bool, slugs: set[str]) -> None:
        retry_after: float | None = None
        try:
            report = self.passes.run(self.connector_id, None if full else slugs)
            failed = report is None or report.error is not None
            retry_after = report.retry_after if report is not None else 1.0  # leased: look again soon
        except Exception as error:  # our database, or a bug: this thread must live on, or nothing is hidden
            self.passes.say(f"connector {self.connector_id}: pass failed: {type(error).__name__}: {error}")
            if not isinstance(error, SQLAlchemyError | OSError):
                traceback.print_exc()
            failed = True
        if not failed:
            self.failures = 0
            return
        self.failures += 1
        wait = retry_after or backoff(self.failures, self.settings.backoff_base_seconds,
                                      self.settings.backoff_cap_seconds)  # fmt: skip
        with self.ready:  # owed still: try again after the wait
            self.not_before = time.monotonic() + max(wait, 0.2)
            self.full = self.full or full
            if not full:
                self.slugs.update(slugs)


class Worker:
    def __init__(self, app: Flask, say: Callable[[str], None]):
        self.passes = Passes(app, say, findings=False)
        self.settings = WorkerSettings.from_config(app.config)
        self.sessions: Callable[[], Session] = app.extensions["db_sessionmaker"]
        self.say = say
        self.runners: dict[int, Runner] = {}

    def run(self, stop: threading.Event) -> None:
        cursor = self._latest_event()
        next_full = time.monotonic()  # a full pass at start
        try:
            while not stop.is_set():
                try:
                    cursor, next_full = self._look(cursor, next_full)
                except SQLAlchemyError as error:  # the database is down: look again next time
                    self.say(f"{utcnow():%Y-%m-%d %H:%M:%S} connectors: cannot read the database: {error}")
                stop.wait(self.settings.poll_seconds)
        finally:
            for runner in self.runners.values():
                runner.stop()
            for runner in self.runners.values():
                runner.join(timeout=30)

    def _look(self, cursor: int, next_full: float) -> tuple[int, float]:
        with self.sessions() as session:
            active = service.active_connector_ids(session)
            requested = service.due_for_sync(session)
            # Every event since the cursor, in id (= commit) order, so the cursor never skips one.
            events = session.execute(
                select(ChangeEvent.id, ChangeEvent.event_type, ChangeEvent.treatment_slug)
                .where(ChangeEvent.id > cursor)
                .order_by(ChangeEvent.id)
                .limit(EVENTS_PER_LOOK)
            ).all()
        self._keep_runners(active)
        if time.monotonic() >= next_full:
            next_full = time.monotonic() + self.settings.reconcile_seconds
            requested = list(self.runners)
        for connector_id in requested:
            if connector_id in self.runners:
                self.runners[connector_id].want(None)
        slugs = {slug for _, event_type, slug in events if event_type in WATCHED_EVENTS}
        if slugs:
            for runner in self.runners.values():
                runner.want(slugs)
        return (events[-1].id if events else cursor), next_full

    def _keep_runners(self, active: list[int]) -> None:
        for connector_id in set(self.runners) - set(active):
            self.runners.pop(connector_id).stop()
        for connector_id in active:
            if connector_id not in self.runners:
                runner = self.runners[connector_id] = Runner(connector_id, self.passes, self.settings)
                runner.start()
                runner.want(None)  # a new (or reactivated) connector starts with a full pass

    def _latest_event(self) -> int:
        with self.sessions() as session:
            return session.scalar(select(func.max(ChangeEvent.id))) or 0
