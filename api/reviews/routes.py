"""Review resources: record and list a treatment's reviews; the reviews due"""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from api.api_keys.auth import current_actor
from api.context import current_rules
from api.db import get_session
from api.readcache import cacheable, uncacheable
from api.reviews import service
from api.reviews.schemas import (
    DueReviewsSchema,
    ReviewCreateSchema,
    ReviewSchema,
    ReviewsDueQueryArgsSchema,
)
from api.smorest import Blueprint

blp = Blueprint(
    "reviews",
    __name__,
    url_prefix="/v1",
    description="Review monitoring: scheduled reviews that confirm a decision, and what is due.",
)


@blp.route("/treatments/<slug:slug>/reviews")
class TreatmentReviews(MethodView):
    @cacheable
    @blp.response(200, ReviewSchema(many=True))
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, slug: str) -> Any:
        """List a treatment's reviews, oldest first

        Public: the clinic's visible diligence. Each review found no reason to change the decision.
        """
        return service.list_reviews(get_session(), slug)

    @blp.requires_role("reviewer")
    @blp.arguments(ReviewCreateSchema)
    @blp.response(201, ReviewSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(412, response="PRECONDITION_FAILED", description="A concurrent write won")
    def post(self, data: dict[str, Any], slug: str) -> Any:
        """Record a review that confirms the current decision

        Sets `last_reviewed_on` to today and `next_review_due` by the interval for the current
        status. To change the status, record a decision instead. The note is public.
        """
        return service.record_review(get_session(), slug, data["note"], current_actor(), current_rules())


@blp.route("/reviews/due")
class ReviewsDue(MethodView):
    @uncacheable("editors only, and it depends on today's date")
    @blp.requires_role("editor")
    @blp.arguments(ReviewsDueQueryArgsSchema, location="query")
    @blp.response(200, DueReviewsSchema)
    def get(self, args: dict[str, Any]) -> Any:
        """List overdue and soon-due reviews

        First, approved treatments whose current facts no longer meet the policy gate
        (`gate_not_met`, with the unmet criteria), whenever their review is due. Then treatments
        whose next review is due on or before today + `within` days (default 30), or was never
        scheduled; overdue first. `flask --app api reviews due` prints the same.
        """
        return service.reviews_due(get_session(), args["within"], current_rules())
