"""Booking checks for booking systems"""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from api.booking import service
from api.booking.schemas import BookingAnswerSchema, BookingCheckSchema
from api.cache import cache_version, read_cache
from api.db import get_session
from api.http import json_response
from api.smorest import Blueprint

blp = Blueprint(
    "booking", __name__, url_prefix="/v1/booking-checks",
    description="Can these treatments be booked? Unknown or not approved means no.",
)  # fmt: skip


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
        answer = service.check_booking(get_session(), read_cache(), cache_version(), data["treatments"])
        return json_response(answer)
