"""Treatment Policy API: the clinic's single source of truth for which treatments it offers"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click
from flask import Flask
from flask_cors import CORS
from werkzeug.middleware.proxy_fix import ProxyFix

from api import cli, context, db, errors, observability, ratelimit, readcache
from api import connectors as connectors_module
from api.config import Config, env_overrides, public_base_url, public_stylesheet_url, secret_key
from api.http import BoundedBody, Request
from api.idempotency import service as idempotency
from api.smorest import Api


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app: config → database → API and blueprints → CLI.

    `config` overrides the defaults and the environment (tests pass their database here).
    """
    app = Flask(__name__)
    app.request_class = Request  # closes every uploaded file, even half-parsed ones
    app.config.from_object(Config)
    app.config.update(env_overrides())
    app.config.update(config or {})
    if not app.config["DATABASE_URL"]:
        Path(app.instance_path).mkdir(parents=True, exist_ok=True)
        app.config["DATABASE_URL"] = f"sqlite:///{Path(app.instance_path) / 'treatments.db'}"
    app.json.sort_keys = False  # type: ignore[attr-defined]
    # A server needs the public base URL and the SECRET_KEY its workers share; `flask` commands and
    # tests publish no URL and serve no console form (they make a key of their own).
    serving = not (app.testing or click.get_current_context(silent=True))
    app.config["PUBLIC_BASE_URL"] = public_base_url(app.config, required=serving)
    app.config["PUBLIC_STYLESHEET_URL"] = public_stylesheet_url(app.config)
    app.config["SECRET_KEY"] = secret_key(app.config, required=serving) or secrets.token_hex(32)

    db.init_app(app)
    context.init_app(app)  # the rule settings
    observability.init_app(app)  # first: the request id exists before anything can fail
    ratelimit.init_app(app)
    idempotency.init_app(app)
    readcache.create(app)

    api = Api(app)
    api.spec.components.security_scheme(
        "bearerAuth",
        {"type": "http", "scheme": "bearer", "description": "An API key: `Bearer tpa_...`"},
    )
    from api import docs
    from api.booking import routes as booking
    from api.changes import routes as changes
    from api.connectors import routes as connectors
    from api.health import routes as health
    from api.literature import routes as literature
    from api.reviews import cli as reviews_cli
    from api.reviews import routes as reviews
    from api.treatments import routes as treatments
    from api.webhooks import cli as webhooks_cli
    from api.webhooks import routes as webhooks
    from api.website import routes as website

    for blueprint in (
        treatments.blp,
        reviews.blp,
        literature.blp,
        literature.screening_blp,
        booking.blp,
        changes.blp,
        webhooks.blp,
        connectors.blp,
        health.blp,
    ):
        api.register_blueprint(blueprint)
    app.register_blueprint(docs.blp)
    app.register_blueprint(website.blp)
    from api import console

    console.init_app(app)
    booking.init_app(app)
    readcache.init_app(app)  # after every route: it serves those declared @cacheable
    _enable_cors(app)
    errors.register(app)
    cli.init_app(app)
    reviews_cli.init_app(app)
    webhooks_cli.init_app(app)
    connectors_module.init_app(app)
    from api.staff import cli as staff_cli

    staff_cli.init_app(app)
    app.wsgi_app = BoundedBody(app.wsgi_app, app.config["MAX_CONTENT_LENGTH"])  # type: ignore[method-assign]
    if app.config["TRUSTED_PROXY_HOPS"]:
        hops = app.config["TRUSTED_PROXY_HOPS"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]
    return app


def _enable_cors(app: Flask) -> None:
    """Open public reads and booking checks to the configured website origins, nothing else.

    `Authorization` is not an allowed header, so no browser on another origin can send a write.
    """
    origins = list(app.config["CORS_ORIGINS"])
    if not origins:
        return
    public = {"origins": origins, "methods": ["GET", "HEAD", "OPTIONS"],
              "allow_headers": ["If-None-Match", "If-Modified-Since", "Accept"]}  # fmt: skip
    booking = public | {"methods": ["POST", "OPTIONS"], "allow_headers": ["Content-Type"]}
    CORS(
        app,
        resources={r"/v1/booking-checks": booking, r"/v1/treatments.*": public, r"/v1/changes": public},
        expose_headers=["ETag", "Last-Modified"],
        max_age=600,
    )
