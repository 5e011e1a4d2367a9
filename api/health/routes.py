"""Liveness and readiness for load balancers and orchestrators"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from api.db import get_session
from api.errors import ServiceUnavailable
from api.readcache import read_path, uncacheable
from api.smorest import Blueprint, ResponseSchema

blp = Blueprint("health", __name__, url_prefix="/health", description="Liveness and readiness.")
LIVE = "health is answered live, never remembered"


class CacheStateSchema(ResponseSchema):
    # Only the PostgreSQL listener has these.
    OPTIONAL = frozenset({"listener", "confirmed_seconds_ago", "reconnections", "last_error"})

    coherence = ma.fields.String(
        metadata={
            "enum": ["listen", "sqlite-data-version", "database"],
            "description": "How this worker hears of writes: `listen`, `sqlite-data-version` or `database`",
        }
    )
    trusted = ma.fields.Boolean(
        metadata={"description": "Whether it answers from memory now; if not, every read asks the database"}
    )
    listener = ma.fields.String(
        metadata={"enum": ["confirmed", "reconnecting"], "description": "PostgreSQL only"}
    )
    confirmed_seconds_ago = ma.fields.Float(allow_none=True)
    reconnections = ma.fields.Integer()
    last_error = ma.fields.String(allow_none=True)


class HealthSchema(ResponseSchema):
    status = ma.fields.String(metadata={"enum": ["ok"]})


class ReadySchema(HealthSchema):
    cache = ma.fields.Nested(CacheStateSchema, metadata={"description": "This worker's read cache"})


@blp.route("/live")
class Live(MethodView):
    @uncacheable(LIVE)
    @blp.response(200, HealthSchema)
    def get(self) -> Any:
        """Say the process is up (never touches the database)"""
        return {"status": "ok"}


@blp.route("/ready")
class Ready(MethodView):
    @uncacheable(LIVE)
    @blp.response(200, ReadySchema)
    @blp.alt_response(503, response="SERVICE_UNAVAILABLE")
    def get(self) -> Any:
        """Say whether the database can be reached, and how this worker's caches hear of writes

        While the cache listener reconnects the worker still answers, from the database.
        """
        try:
            get_session().execute(text("SELECT 1"))
        except SQLAlchemyError as error:
            raise ServiceUnavailable("The database cannot be reached.") from error
        return {"status": "ok", "cache": read_path().coherence.state()}
