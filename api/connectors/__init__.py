"""Booking-system connectors: the booking system obeys the clinic's positions.

- `models`: configuration, bookkeeping, what a connector hid, its calls;
- `vault`: credentials encrypted at rest (TPA_SECRET_KEYS);
- `base`: what a booking system's module provides, and the HTTP they speak through (retries);
- `square` (one module per system, listed in `registry`);
- `plan`: the rules, pure: hide what is not bookable, restore only what we hid;
- `service`: the database side, and one pass; `worker`: event-driven passes; `routes`, `cli`.
"""

from __future__ import annotations

from flask import Flask

from api.connectors.vault import Vault


def init_app(app: Flask) -> None:
    from api.connectors import cli

    app.extensions["connector_vault"] = Vault(app.config["SECRET_KEYS"])
    cli.init_app(app)
