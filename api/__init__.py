"""Treatment Policy API: the clinic's single source of truth for which treatments it offers"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

from api import cache, cli, db, errors
from api.config import Config, env_overrides
from api.rules import Rules
from api.smorest import Api

# Public GETs served through api.cache (consistent with every committed write).
CACHEABLE_ENDPOINTS = {
    "treatments.Treatments",
    "treatments.TreatmentBySlug",
    "treatments.TreatmentDecisions",
    "treatments.TreatmentStudies",
    "treatments.TreatmentStudyById",
    "treatments.TreatmentRegulatory",
    "treatments.TreatmentRegulatoryById",
    "changes.Changes",
}


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app: config → database → API and blueprints → CLI.

    `config` overrides the defaults and the environment (tests pass their database here).
    """
    app = Flask(__name__)
    app.config.from_object(Config)
    app.config.update(env_overrides())
    app.config.update(config or {})
    if not app.config["DATABASE_URL"]:
        Path(app.instance_path).mkdir(parents=True, exist_ok=True)
        app.config["DATABASE_URL"] = f"sqlite:///{Path(app.instance_path) / 'treatments.db'}"
    app.json.sort_keys = False  # type: ignore[attr-defined]

    db.init_app(app)
    app.extensions["rules"] = Rules.from_config(app.config)

    api = Api(app)
    api.spec.components.security_scheme(
        "bearerAuth",
        {"type": "http", "scheme": "bearer", "description": "An API key: `Bearer tpa_...`"},
    )
    from api import docs
    from api.booking import routes as booking
    from api.changes import routes as changes
    from api.health import routes as health
    from api.treatments import routes as treatments

    for blueprint in (
        treatments.blp,
        booking.blp,
        changes.blp,
        health.blp,
    ):
        api.register_blueprint(blueprint)
    app.register_blueprint(docs.blp)
    cache.init_app(app, CACHEABLE_ENDPOINTS)
    errors.register(app)
    cli.init_app(app)
    return app
