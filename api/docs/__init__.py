"""The docs page's assets and the site's favicon, served by the app itself (no CDN)"""

from pathlib import Path

import flask_swagger_ui
from flask import Blueprint, Response, send_from_directory

from api.readcache import uncacheable

SWAGGER_UI_DIST = Path(flask_swagger_ui.__file__).resolve().parent / "dist"
OWN_STATIC = Path(__file__).resolve().parent / "static"

blp = Blueprint("docs_assets", __name__)
STATIC = "files on disk: browsers keep them by max-age"


@blp.route("/docs/assets/<path:filename>")
@uncacheable(STATIC)
def swagger_ui_asset(filename: str) -> Response:
    return send_from_directory(SWAGGER_UI_DIST, filename, max_age=86400)


@blp.route("/docs/static/<path:filename>")
@uncacheable(STATIC)
def docs_static(filename: str) -> Response:
    return send_from_directory(OWN_STATIC, filename, max_age=3600)


@blp.route("/favicon.ico")
@uncacheable(STATIC)
def favicon() -> Response:
    """A small icon of our own (browsers ask for it; a 404 would be a console error on /docs)."""
    return send_from_directory(OWN_STATIC, "favicon.ico", mimetype="image/vnd.microsoft.icon", max_age=86400)
