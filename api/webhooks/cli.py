"""`flask --app api webhooks deliver [--forever] [--interval SECONDS]`: the delivery worker"""

from __future__ import annotations

import signal
import threading
import traceback
from types import FrameType

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy.exc import SQLAlchemyError

from api.db import get_session, utcnow
from api.webhooks.delivery import DeliverySettings, deliver_due

webhooks_cli = AppGroup("webhooks", help="Webhook delivery: run it beside the web server.")


@webhooks_cli.command("deliver")
@click.option("--forever", is_flag=True, help="Keep delivering, pass after pass, until SIGTERM or SIGINT.")
@click.option(
    "--interval", type=click.FloatRange(min=0.05), default=None,
    help="Seconds between passes with --forever (default: WEBHOOKS_POLL_INTERVAL_SECONDS).",
)  # fmt: skip
def deliver_command(forever: bool, interval: float | None) -> None:
    """Send the webhook deliveries that are due: one pass, or a worker loop with --forever."""
    settings = DeliverySettings.from_config(current_app.config)
    if not forever:
        click.echo(deliver_due(get_session(), utcnow(), settings).summary())
        return
    pause = interval if interval is not None else float(current_app.config["WEBHOOKS_POLL_INTERVAL_SECONDS"])
    stop = threading.Event()
    received: list[str] = []

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        received.append(signal.Signals(signum).name)  # no printing here: it may interrupt a print
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    click.echo(f"Webhook worker started: a pass every {pause:g} s; stop it with SIGTERM or Ctrl-C.")
    try:
        while not stop.is_set():
            _one_pass(settings)
            stop.wait(pause)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    click.echo(f"Webhook worker stopped ({', '.join(received) or 'done'}).")


def _one_pass(settings: DeliverySettings) -> None:
    session = get_session()
    try:
        counts = deliver_due(session, utcnow(), settings)
        if counts:
            click.echo(f"{utcnow():%Y-%m-%d %H:%M:%S} {counts.summary()}")
    except Exception as error:
        # The database is down or busy, or a bug: say so and try again next pass. The outbox keeps
        # everything, and a lease left by an interrupted pass runs out by itself.
        session.rollback()
        click.echo(f"{utcnow():%Y-%m-%d %H:%M:%S} pass failed: {type(error).__name__}: {error}", err=True)
        if not isinstance(error, SQLAlchemyError):
            traceback.print_exc()
    finally:
        session.close()  # return the connection to the pool between passes


def init_app(app: Flask) -> None:
    app.cli.add_command(webhooks_cli)
