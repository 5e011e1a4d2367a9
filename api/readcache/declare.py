"""Which GETs the read cache serves, declared on the route itself.

    @blp.route("/<slug:slug>")
    class TreatmentBySlug(MethodView):
        @cacheable
        @blp.response(200, TreatmentSchema)
        def get(self, slug): ...

A cacheable GET must depend only on the database's public state and on the request's path,
query string and `Accept` (its answer is the same for every client). Every other GET says why
not with `@uncacheable("...")`; `tests/api/test_caching.py` fails on a GET that says neither.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask

View = TypeVar("View", bound=Callable[..., Any])
ATTRIBUTE = "read_cache"


def cacheable(view: View) -> View:
    """Serve this GET from the read cache, with ETag, Last-Modified and 304s (outermost decorator)."""
    setattr(view, ATTRIBUTE, True)
    return view


def uncacheable(reason: str) -> Callable[[View], View]:
    """Never serve this GET from the read cache, for the reason given."""

    def mark(view: View) -> View:
        setattr(view, ATTRIBUTE, False)
        view.read_cache_reason = reason  # type: ignore[attr-defined]
        return view

    return mark


def declaration(view_function: Callable[..., Any]) -> bool | None:
    """True, False, or None when the GET behind this endpoint declared nothing."""
    view_class = getattr(view_function, "view_class", None)
    target = getattr(view_class, "get", None) if view_class is not None else view_function
    return getattr(target, ATTRIBUTE, None)


def cacheable_endpoints(app: Flask) -> frozenset[str]:
    return frozenset(name for name, view in app.view_functions.items() if declaration(view) is True)
