"""The staff console at /console: server-rendered pages over the same services as the API.

`init_app` wires what the pages need: server-side sessions (`api.staff.sessions`), Flask-Login
for who is signed in, Flask-WTF's CSRF tokens on every form. The views (`views`, `treatments`,
`users`) parse a form, call a service, and render or redirect.
"""

from __future__ import annotations

from flask import Flask
from flask_login import LoginManager
from flask_wtf.csrf import CSRFProtect

from api.console.blueprint import blp
from api.db import get_session
from api.staff.models import StaffUser
from api.staff.sessions import ServerSessionInterface

__all__ = ["blp", "init_app"]


def init_app(app: Flask) -> None:
    app.session_interface = ServerSessionInterface()
    login = LoginManager(app)
    login.login_view = "console.sign_in"
    login.login_message = "Sign in to continue."
    login.session_protection = None  # the session is server-side: nothing to re-derive from a cookie

    @login.user_loader
    def _load(user_id: str) -> StaffUser | None:
        user = get_session().get(StaffUser, int(user_id)) if user_id.isdigit() else None
        return user if user is not None and user.active else None

    CSRFProtect(app)  # checked by the console's own forms only (WTF_CSRF_CHECK_DEFAULT is off)
    from api.console import admin, literature, treatments, users, views  # noqa: F401  (routes join `blp`)

    app.register_blueprint(blp)
