"""Booking checks for booking systems"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import orjson
from flask import Flask
from flask.views import MethodView
from marshmallow import ValidationError

from api.booking import service
from api.booking.facts import create_store, facts_store
from api.booking.schemas import BookingAnswerSchema, BookingCheckSchema
from api.db import get_session
from api.http import json_response
from api.readcache import cache_version
from api.smorest import Blueprint

PATH = "/v1/booking-checks"
blp = Blueprint(
    "booking", __name__, url_prefix=PATH,
    description="Can these treatments be booked? Unknown or not approved means no.",
)  # fmt: skip
CHECK = BookingCheckSchema()  # the one definition of a valid check, for Flask and before it


@blp.route("")
class BookingChecks(MethodView):
    @blp.arguments(BookingCheckSchema)
    @blp.response(200, BookingAnswerSchema)
    def post(self, data: dict[str, Any]) -> Any:
        """Check whether treatments can be booked

        Up to 100 treatments, by slug or by a booking system's own id. Results come back in
        request order; unknown treatments are answered `bookable: false`.
        """
        # The service's answer already has the documented shape: sent as it is, not re-dumped.
        answer = service.check_booking(get_session(), facts_store(), cache_version(), data["treatments"])
        return json_response(answer)


def init_app(app: Flask) -> None:
    """The booking facts store, emptied with the read cache, and checks answered before Flask
    from it when every treatment named is remembered."""
    read_path = app.extensions["readcache"]
    store = read_path.add_store(create_store(app))

    def answer_from_memory(body: bytes, version: Hashable) -> dict[str, Any] | None:
        try:
            data = CHECK.load(orjson.loads(body))
        except (orjson.JSONDecodeError, ValidationError):
            return None  # Flask answers, with the 422 that says why
        return service.remembered_answer(store, version, data["treatments"])

    read_path.answer_before_flask(PATH, "booking.BookingChecks", "booking", answer_from_memory)
