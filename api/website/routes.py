"""The website kit's routes: pages, widget script, feed, sitemap and robots.txt (outside /v1).

Thin: each view asks `pages` for what to show and renders a template. Every GET that reads the
database is `@cacheable` (the read path's ETag, 304, Cache-Control and coherence, exactly as the
API's public reads), so a page reflects a decision as soon as booking checks do; the widget's
script and robots.txt depend on configuration only and carry the same headers without it. Pages
run under a CSP of their own: no script at all (the JSON-LD block is data), styles from the app
and the clinic's one stylesheet.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import orjson
from flask import Blueprint, Response, current_app, render_template, request, send_from_directory
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from api import errors
from api.context import current_rules
from api.db import get_session
from api.readcache import cacheable, uncacheable
from api.website import pages, wording
from api.website.urls import PublicUrls, public_urls

blp = Blueprint("website", __name__, template_folder="templates")
STATIC = Path(__file__).resolve().parent / "static"
HTML = "text/html"
PAGE_CSP = "website_page_csp"


def page_policy(urls: PublicUrls, stylesheet: str | None) -> str:
    """The pages' Content-Security-Policy: no script runs; styles and images from this app (and
    its public origin, when a proxy serves it elsewhere) and the clinic's stylesheet."""
    own = ["'self'"] + ([urls.origin] if urls.origin else [])
    return "; ".join([
        "default-src 'none'",
        "style-src " + " ".join(own + ([stylesheet] if stylesheet else [])),
        "img-src " + " ".join([*own, "data:"]),
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ])  # fmt: skip


@blp.record_once
def _policy(state: Any) -> None:
    config = state.app.config
    if config["PUBLIC_BASE_URL"]:
        state.app.extensions[PAGE_CSP] = page_policy(
            PublicUrls(config["PUBLIC_BASE_URL"]), config["PUBLIC_STYLESHEET_URL"]
        )


def _page(template: str, **context: Any) -> Response:
    config = current_app.config
    body = render_template(
        f"website/{template}", urls=public_urls(), clinic=config["CLINIC_NAME"],
        stylesheet=config["PUBLIC_STYLESHEET_URL"], words=wording, **context,
    )  # fmt: skip
    response = Response(body, mimetype=HTML)
    response.headers["Content-Security-Policy"] = current_app.extensions[PAGE_CSP]
    return response


@blp.route("/")
@cacheable
def index() -> Response:
    """Every treatment, grouped by the clinic's position, each with its one-line reason."""
    page = pages.index_page(get_session(), current_rules(), public_urls(), current_app.config["CLINIC_NAME"])
    return _page("index.html", page=page)


@blp.route("/treatments/<slug:slug>")
@cacheable
def treatment(slug: str) -> Response:
    """One treatment's position in plain words: reason, evidence, regulators, history."""
    config = current_app.config
    page = pages.treatment_page(get_session(), slug, current_rules(), public_urls(), config["CLINIC_NAME"])
    return _page("treatment.html", page=page)


@blp.route("/feed.atom")
@cacheable
def feed() -> Response:
    """The clinic's decisions as an Atom 1.0 feed, newest first."""
    entries = pages.feed_entries(get_session(), public_urls())
    newest = pages.newest_decision_at(entries) or dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    body = render_template(
        "website/feed.xml", urls=public_urls(), clinic=current_app.config["CLINIC_NAME"],
        entries=entries, updated=newest,
    )  # fmt: skip
    return Response(body, mimetype="application/atom+xml")


@blp.route("/sitemap.xml")
@cacheable
def sitemap() -> Response:
    """Every public page, with the time of its last decision or review as `lastmod`."""
    body = render_template("website/sitemap.xml", entries=pages.sitemap_entries(get_session(), public_urls()))
    return Response(body, mimetype="application/xml")


CONFIGURATION_ONLY = "made from configuration alone: answered (with its ETag) even while the database is away"


def _configured(body: str, mimetype: str) -> Response:
    """An answer that depends on configuration only, cached like the public reads (ETag, 304,
    the same Cache-Control) without asking the database for a version: the widget's script
    still loads during an outage, so the widget can show its fallback."""
    response = Response(body, mimetype=mimetype)
    response.headers["Cache-Control"] = current_app.extensions["readcache"].cache_control
    response.add_etag()
    return response.make_conditional(request)


@blp.route("/robots.txt")
@uncacheable(CONFIGURATION_ONLY)
def robots() -> Response:
    """Crawl the pages (not the API), and find them all in the sitemap."""
    body = f"User-agent: *\nAllow: /\nDisallow: /v1/\nSitemap: {public_urls().sitemap()}\n"
    return _configured(body, "text/plain")


@blp.route("/widget.js")
@uncacheable(CONFIGURATION_ONLY)
def widget() -> Response:
    """The <treatment-status> custom element: one script, no framework, for any website."""
    body = render_template(
        "website/widget.js", base=public_urls().base, positions=wording.widget_positions(),
        timeout=current_app.config["WIDGET_TIMEOUT_MS"],
        text={"loading": wording.WIDGET_LOADING, "fallback": wording.WIDGET_FALLBACK,
              "fallbackLink": wording.WIDGET_FALLBACK_LINK, "link": wording.WIDGET_LINK},
    )  # fmt: skip
    return _configured(body, "text/javascript")


@blp.route("/website/static/<path:filename>")
@uncacheable("files on disk: browsers keep them by max-age")
def static(filename: str) -> Response:
    return send_from_directory(STATIC, filename, max_age=3600)


def _error_page(problem: Response) -> Response:
    """The API's problem for this error (one mapping, `api.errors`), shown to a person as a page."""
    details = orjson.loads(problem.get_data())
    response = _page("error.html", problem=details)
    response.status_code = problem.status_code
    if "Retry-After" in problem.headers:
        response.headers["Retry-After"] = problem.headers["Retry-After"]
    return response


@blp.errorhandler(errors.DomainError)
def _domain_error(error: errors.DomainError) -> Response:
    return _error_page(errors.handle_domain_error(error))


@blp.errorhandler(OperationalError)
@blp.errorhandler(InterfaceError)
@blp.errorhandler(PoolTimeout)
def _unavailable(error: OperationalError | InterfaceError | PoolTimeout) -> Response:
    return _error_page(errors.handle_operational_error(error))
