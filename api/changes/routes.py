"""The public change feed"""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from api.changes import service
from api.changes.schemas import ChangePageSchema, ChangeQueryArgsSchema
from api.db import get_session
from api.readcache import cacheable
from api.smorest import Blueprint

blp = Blueprint(
    "changes", __name__, url_prefix="/v1/changes",
    description="An append-only feed of change events, in commit order.",
)  # fmt: skip


@blp.route("")
class Changes(MethodView):
    @cacheable
    @blp.arguments(ChangeQueryArgsSchema, location="query")
    @blp.response(200, ChangePageSchema)
    def get(self, args: dict[str, Any]) -> Any:
        """Read the change feed

        Follow `next_after` page by page; an empty page means you are up to date.
        """
        events = service.list_changes(get_session(), args["after"], args["limit"])
        return {"events": events, "next_after": events[-1].id if events else args["after"]}
