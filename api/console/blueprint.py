"""The console's blueprint: CSRF on every form, no-store on every answer, errors as pages"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, render_template, request, send_from_directory, session
from flask_login import current_user, login_required
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from api.api_keys.models import Role
from api.audit.service import Actor
from api.errors import DomainError, ServiceUnavailable
from api.readcache import uncacheable
from api.staff.service import actor_for

log = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parent / "static"
STAFF_ONLY = "staff only: each page is one signed-in person's"

blp = Blueprint("console", __name__, url_prefix="/console", template_folder="templates")


@blp.before_request
def _check_csrf() -> None:
    """Every form the console accepts carries the CSRF token of the session that showed it (and
    without the database, which holds the session, nothing is answered but a 503)."""
    if getattr(session, "unavailable", False):
        raise ServiceUnavailable("The database cannot be reached; try again shortly.")
    current_app.extensions["csrf"].protect()


@blp.after_request
def _no_store(response: Response) -> Response:
    if not request.path.startswith("/console/static/"):
        response.headers["Cache-Control"] = "no-store"
    return response


@blp.errorhandler(CSRFError)
def _csrf_refused(error: CSRFError) -> tuple[str, int]:
    return render_template(
        "console/error.html",
        title="Form expired",
        status=400,
        detail="This form was not sent from a page of this console session (it may have expired, or you "
        "signed out meanwhile). Go back, reload the page and send it again.",
    ), 400


@blp.errorhandler(DomainError)
def _domain_error(error: DomainError) -> tuple[str, int, dict[str, str]]:
    page = render_template("console/error.html", title=error.title, status=error.status, detail=error.detail)
    return page, error.status, error.headers


@blp.errorhandler(OperationalError)
@blp.errorhandler(InterfaceError)
@blp.errorhandler(PoolTimeout)
def _database_unavailable(error: Exception) -> tuple[str, int, dict[str, str]]:
    # Unreachable, cut mid-way or timed out, as api.errors answers the API's clients: retry later.
    log.error("database unavailable: %s", getattr(error, "orig", None) or error)
    return _domain_error(ServiceUnavailable("The database cannot be reached; try again shortly."))


@blp.route("/static/<path:filename>")
@uncacheable("files on disk: browsers keep them by max-age")
def static(filename: str) -> Response:
    return send_from_directory(STATIC, filename, max_age=300)


def staff(role: str = "editor") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Signed in (else to the sign-in page), with at least `role` (else a 403 page)."""
    needed = Role(role)

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        @login_required
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            role = Role(current_user.role)
            if not role.includes(needed):
                detail = f"This needs the {needed.value} role; your account is {role.value}."
                return render_template(
                    "console/error.html", title="Not allowed", status=403, detail=detail
                ), 403
            return view(*args, **kwargs)

        return wrapper

    return decorator


def current_actor() -> Actor:
    """The signed-in person, as the services record actors."""
    return actor_for(current_user._get_current_object())


def can(role: str) -> bool:
    return bool(current_user.is_authenticated and Role(current_user.role).includes(Role(role)))


@blp.context_processor
def _helpers() -> dict[str, Any]:
    return {"can": can}
