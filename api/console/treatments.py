"""Treatments in the console"""

from __future__ import annotations

from api.console.blueprint import STAFF_ONLY, blp, staff
from api.readcache import uncacheable


@blp.route("/treatments")
@uncacheable(STAFF_ONLY)
@staff("editor")
def treatments() -> str:
    return "todo"


@blp.route("/treatments/<slug>")
@uncacheable(STAFF_ONLY)
@staff("editor")
def treatment(slug: str) -> str:
    return "todo"
