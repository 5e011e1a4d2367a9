"""`flask --app api connectors ...`: the worker, a pass on demand, keys"""

from __future__ import annotations

import signal
import sys
import threading
import time
from types import FrameType

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from api.connectors import service
from api.connectors.vault import new_key
from api.connectors.worker import Passes, Worker
from api.db import get_session, utcnow

connectors_cli = AppGroup(
    "connectors", help="Booking-system connectors: run the worker beside the web server."
)
CLAIM_WAIT_SECONDS = 30.0  # how long `sync` waits for a worker's pass on the same connector to end


@connectors_cli.command("run")
def run_command() -> None:
    """The connector worker: follows the change feed until SIGTERM or SIGINT."""
    stop = threading.Event()

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    click.echo("Connector worker started: following bookability changes; stop it with SIGTERM or Ctrl-C.")
    try:
        Worker(current_app._get_current_object(), _say).run(stop)  # type: ignore[attr-defined]
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    click.echo("Connector worker stopped.")


@connectors_cli.command("sync")
@click.option("--dry-run", is_flag=True, help="Print what would change; change nothing.")
def sync_command(dry_run: bool) -> None:
    """One full pass over every active connector: prints what it changed (exit 1 if one failed)."""
    passes = Passes(current_app._get_current_object(), click.echo)  # type: ignore[attr-defined]
    ids = service.active_connector_ids(get_session())
    if not ids:
        click.echo("No active connector.")
    failed = False
    for connector_id in ids:
        deadline = time.monotonic() + CLAIM_WAIT_SECONDS
        report = passes.run(connector_id, None, dry_run)
        while report is None and time.monotonic() < deadline:  # a worker's pass is running
            time.sleep(0.5)
            report = passes.run(connector_id, None, dry_run)
        if report is None:
            click.echo(f"connector {connector_id}: busy (a worker holds its lease); try again", err=True)
            failed = True
        elif report.error:
            failed = True
        elif not report.lines():
            click.echo(f"connector {connector_id}: in step, nothing to change")
    sys.exit(1 if failed else 0)


@connectors_cli.command("rotate-keys")
def rotate_keys_command() -> None:
    """Re-encrypt every connector's credentials with the newest key in TPA_SECRET_KEYS."""
    count = service.rotate_keys(get_session(), current_app.extensions["connector_vault"])
    click.echo(f"Re-encrypted the credentials of {count} connector(s) with the newest key.")


@connectors_cli.command("new-key")
def new_key_command() -> None:
    """Print a new key for TPA_SECRET_KEYS (put it first; keep the old ones until rotate-keys ran)."""
    click.echo(new_key())


def _say(line: str) -> None:
    click.echo(f"{utcnow():%Y-%m-%d %H:%M:%S} {line}")


def init_app(app: Flask) -> None:
    app.cli.add_command(connectors_cli)
