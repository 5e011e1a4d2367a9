"""Signing in and out, and the dashboard"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user

from api.console.blueprint import STAFF_ONLY, blp, staff
from api.console.dashboard import attention
from api.console.forms import errors_by_field, staff_settings
from api.context import current_rules
from api.db import get_session
from api.errors import InvalidInput
from api.readcache import uncacheable
from api.staff import attempts
from api.staff import service as accounts


@blp.route("/")
@uncacheable(STAFF_ONLY)
@staff("editor")
def dashboard() -> str:
    return render_template("console/dashboard.html", data=attention(get_session(), current_rules()))


@blp.route("/sign-in", methods=["GET", "POST"])
@uncacheable(STAFF_ONLY)
def sign_in() -> Any:
    if request.method == "GET":
        if current_user.is_authenticated:
            return redirect(url_for("console.dashboard"))
        return render_template("console/sign_in.html", email="", next=_safe_next(request.args.get("next")))
    email = request.form.get("email", "")[:200]
    password = request.form.get("password", "")[:1000]
    target = _safe_next(request.form.get("next"))
    wait = attempts.wait_seconds(email, request.remote_addr)
    if wait:
        minutes = -(-wait // 60)
        return render_template(
            "console/sign_in.html",
            email=email,
            next=target,
            error=f"Too many failed sign-ins for this account from here. Try again in {minutes} "
            f"minute{'s' if minutes != 1 else ''}, or ask an admin to reset your account.",
        ), 429
    user = accounts.authenticate(get_session(), email, password)
    if user is None:
        attempts.note_failure(email, request.remote_addr)
        return render_template(
            "console/sign_in.html", email=email, next=target, error="The email or password is not right."
        ), 401
    _start_session(user)
    return redirect(target or url_for("console.dashboard"))


@blp.route("/sign-in/link/<token>", methods=["GET", "POST"])
@uncacheable(STAFF_ONLY)
def sign_in_link(token: str) -> Any:
    """A one-time link: shows the person who it is for and lets them set a password. Only
    sending the form spends it (a mail scanner that opens the link does not)."""
    db = get_session()
    user = accounts.link_user(db, token)  # an expired or used link is an error page
    if request.method == "GET":
        return render_template("console/set_password.html", user=user, errors={})
    try:
        user = accounts.use_link(
            db, token, request.form.get("password", ""), request.form.get("confirm", ""), staff_settings()
        )
    except InvalidInput as error:
        return render_template("console/set_password.html", user=user, errors=errors_by_field(error)), 422
    _start_session(user)
    flash("Your password is set; you are signed in.")
    return redirect(url_for("console.dashboard"))


@blp.route("/sign-out", methods=["POST"])
@uncacheable(STAFF_ONLY)
def sign_out() -> Any:
    logout_user()
    session.clear()
    return render_template("console/signed_out.html", everywhere=False)


@blp.route("/sign-out-everywhere", methods=["POST"])
@uncacheable(STAFF_ONLY)
@staff("editor")
def sign_out_everywhere() -> Any:
    accounts.sign_out_everywhere(get_session(), current_user.id)
    logout_user()
    session.clear()
    return render_template("console/signed_out.html", everywhere=True)


def _start_session(user: Any) -> None:
    session.regenerate()  # type: ignore[attr-defined]  # a new token at sign-in: no fixation
    login_user(user)


def _safe_next(target: str | None) -> str | None:
    """Only a path inside the console: never an open redirect."""
    if target and target.startswith("/console/") and not target.startswith("//") and "\\" not in target:
        return target
    return None


@blp.app_template_filter("plural")
def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"
