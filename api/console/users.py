"""People: an admin invites, changes roles, resets, deactivates and signs out staff accounts"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for

from api.api_keys.models import Role
from api.console.blueprint import STAFF_ONLY, blp, staff
from api.console.forms import errors_by_field, staff_settings
from api.db import get_session
from api.errors import DomainError
from api.readcache import uncacheable
from api.staff import service as accounts


def _link(token: str) -> str:
    return url_for("console.sign_in_link", token=token, _external=True)


@blp.route("/people", methods=["GET", "POST"])
@uncacheable(STAFF_ONLY)
@staff("admin")
def users() -> Any:
    """The accounts, and the invitation form. An invitation shows its one-time link once: there
    is no mail, so the admin passes it on."""
    db, form, errors, link, status = get_session(), {}, {}, None, 200
    if request.method == "POST":
        form = {name: request.form.get(name, "") for name in ("email", "name", "role")}
        try:
            role = Role(form["role"])
            user, token = accounts.create_user(db, form["email"], form["name"], role, staff_settings())
        except ValueError:
            errors, status = {"role": ["Choose a role."]}, 422
        except DomainError as error:
            errors, status = errors_by_field(error), error.status
        else:
            link, form = {"email": user.email, "url": _link(token), "why": "invited"}, {}
    return render_template(
        "console/users.html",
        people=accounts.list_users(db),
        form=form,
        errors=errors,
        link=link,
        roles=list(Role),
    ), status


@blp.route("/people/<int(max=2147483647):user_id>/reset", methods=["POST"])
@uncacheable(STAFF_ONLY)
@staff("admin")
def reset_user(user_id: int) -> Any:
    db = get_session()
    user = _user(user_id)
    token = accounts.reset_user(db, user.email, staff_settings())
    link = {"email": user.email, "url": _link(token), "why": "reset"}
    return render_template(
        "console/users.html", people=accounts.list_users(db), form={}, errors={}, link=link, roles=list(Role)
    )


@blp.route("/people/<int(max=2147483647):user_id>/active", methods=["POST"])
@uncacheable(STAFF_ONLY)
@staff("admin")
def set_active(user_id: int) -> Any:
    db = get_session()
    user = _user(user_id)
    accounts.set_active(db, user.email, request.form.get("active") == "true")
    return render_template(
        "console/users.html", people=accounts.list_users(db), form={}, errors={}, link=None, roles=list(Role)
    )


@blp.route("/people/<int(max=2147483647):user_id>/role", methods=["POST"])
@uncacheable(STAFF_ONLY)
@staff("admin")
def set_role(user_id: int) -> Any:
    db = get_session()
    user = _user(user_id)
    try:
        role = Role(request.form.get("role", ""))
    except ValueError:
        return _people(422, {"": ["Choose a role."]})
    try:
        accounts.set_role(db, user.email, role)
    except DomainError as error:
        db.rollback()
        return _people(error.status, errors_by_field(error))
    flash(f"{user.email} is now {role.value}.")
    return redirect(url_for("console.users"))


@blp.route("/people/<int(max=2147483647):user_id>/sign-out", methods=["POST"])
@uncacheable(STAFF_ONLY)
@staff("admin")
def sign_out_user(user_id: int) -> Any:
    user = _user(user_id)
    ended = accounts.sign_out_everywhere(get_session(), user.id)
    flash(f"{user.email} is signed out everywhere ({ended} session{'' if ended == 1 else 's'} ended).")
    return redirect(url_for("console.users"))


def _people(status: int, errors: dict[str, list[str]]) -> Any:
    return render_template(
        "console/users.html", people=accounts.list_users(get_session()), form={}, errors=errors, link=None,
        roles=list(Role),
    ), status  # fmt: skip


def _user(user_id: int) -> Any:
    from api.errors import NotFound
    from api.staff.models import StaffUser

    user = get_session().get(StaffUser, user_id)
    if user is None:
        raise NotFound(f"No account has the id {user_id}.")
    return user
