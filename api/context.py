"""What requests and CLI commands read from the running app: its rule settings, built once at start-up"""

from __future__ import annotations

from flask import Flask, current_app

from api.treatments.settings import RuleSettings


def init_app(app: Flask) -> None:
    """Build the rule settings from `app.config` once; every request and command of the app shares them."""
    app.extensions["rules"] = RuleSettings.from_config(app.config)


def current_rules() -> RuleSettings:
    """The running app's rule settings (inside its app or request context)."""
    rules: RuleSettings = current_app.extensions["rules"]
    return rules
