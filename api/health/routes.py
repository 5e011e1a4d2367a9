"""Liveness and readiness for load balancers and orchestrators"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from api.db import get_session
from api.errors import ServiceUnavailable
from api.smorest import Blueprint

blp = Blueprint("health", __name__, url_prefix="/health", description="Liveness and readiness.")


class HealthSchema(ma.Schema):
    status = ma.fields.String(metadata={"example": "ok"})


@blp.route("/live")
class Live(MethodView):
    @blp.response(200, HealthSchema)
    def get(self) -> Any:
        """Say the process is up (never touches the database)"""
        return {"status": "ok"}


@blp.route("/ready")
class Ready(MethodView):
    @blp.response(200, HealthSchema)
    @blp.alt_response(503, response="SERVICE_UNAVAILABLE")
    def get(self) -> Any:
        """Say whether the database can be reached"""
        try:
            get_session().execute(text("SELECT 1"))
        except SQLAlchemyError as error:
            raise ServiceUnavailable("The database cannot be reached.") from error
        return {"status": "ok"}
