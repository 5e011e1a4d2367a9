"""Staff accounts: one-time links, passwords, server-side sessions, CSRF, sign-in limits, roles"""

from __future__ import annotations

import datetime as dt
import re

from api.api_keys.models import Role
from api.console.forms import staff_settings
from api.db import get_session
from api.staff import service
from api.staff.models import SignInLink, StaffSession, StaffUser
from tests.conftest import execute
from tests.console.conftest import PASSWORD, Console


def link_token(output: str) -> str:
    match = re.search(r"/console/sign-in/link/([A-Za-z0-9_-]+)\s*$", output)
    assert match, output
    return match.group(1)


def test_the_cli_creates_a_person_and_prints_a_one_time_link_that_sets_the_password(app, runner, console):
    result = runner.invoke(
        args=["users", "create", "--email", "Maria@Clinic.example", "--name", "Maria", "--role", "reviewer"]
    )
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1].startswith("http://127.0.0.1:8000/console/sign-in/link/")
    token = link_token(result.output)

    page = console.get(f"/console/sign-in/link/{token}")
    assert page.status_code == 200
    assert "maria@clinic.example" in page.get_data(as_text=True)
    done = console.post(f"/console/sign-in/link/{token}", {"password": PASSWORD, "confirm": PASSWORD})
    assert done.status_code == 302
    assert "Dashboard" in console.get("/console/").get_data(as_text=True)

    # Once only: the link is spent, and the password now signs in.
    assert Console(app.test_client()).get(f"/console/sign-in/link/{token}").status_code == 404
    assert Console(app.test_client()).sign_in("maria@clinic.example").status_code == 302
    stored = execute(app, "SELECT password_hash FROM staff_users")[0][0]
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


def test_a_link_expires(app, runner, console):
    token = link_token(
        runner.invoke(
            args=["users", "create", "--email", "late@clinic.example", "--name", "Late", "--role", "editor"]
        ).output
    )
    past = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    with app.app_context():
        session = get_session()
        session.query(SignInLink).update({"expires_at": past})
        session.commit()
    response = console.get(f"/console/sign-in/link/{token}")
    assert response.status_code == 404
    assert "expired" in response.get_data(as_text=True)


def test_a_short_or_mismatched_password_is_refused_and_the_link_still_works(app, runner, console):
    token = link_token(
        runner.invoke(
            args=["users", "create", "--email", "new@clinic.example", "--name", "New", "--role", "editor"]
        ).output
    )
    console.get(f"/console/sign-in/link/{token}")
    short = console.post(f"/console/sign-in/link/{token}", {"password": "short", "confirm": "short"})
    assert short.status_code == 422
    assert "at least 12 characters" in short.get_data(as_text=True)
    differ = console.post(f"/console/sign-in/link/{token}", {"password": PASSWORD, "confirm": PASSWORD + "!"})
    assert "differ" in differ.get_data(as_text=True)
    assert (
        console.post(
            f"/console/sign-in/link/{token}", {"password": PASSWORD, "confirm": PASSWORD}
        ).status_code
        == 302
    )


def test_the_console_needs_a_signed_in_person(client):
    response = client.get("/console/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/console/sign-in?next=")


def test_a_wrong_password_or_unknown_email_is_refused_alike(console, make_person):
    email = make_person("editor")
    wrong = console.sign_in(email, "not the password at all")
    unknown = console.sign_in("nobody@clinic.example", "not the password at all")
    assert wrong.status_code == unknown.status_code == 401
    assert "The email or password is not right." in wrong.get_data(as_text=True)
    assert console.client.get("/console/").status_code == 302


def test_sessions_live_in_the_database_and_the_cookie_holds_only_a_token(app, console, make_person):
    email = make_person("editor")
    response = console.sign_in(email)
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("tpa_console=")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie  # plain HTTP here; Secure under HTTPS (below)
    token = cookie.split(";")[0].split("=", 1)[1]
    rows = execute(app, "SELECT id, user_id FROM staff_sessions WHERE user_id IS NOT NULL")
    assert len(rows) == 1 and rows[0][0] != token  # only its hash is stored


def test_the_session_cookie_is_secure_under_https(app, make_person):
    browser = Console(app.test_client())
    email = make_person("editor")
    browser.client.get("/console/sign-in", base_url="https://localhost")
    page = browser.client.get("/console/sign-in", base_url="https://localhost").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    form = {"email": email, "password": PASSWORD, "csrf_token": token}
    response = browser.client.post("/console/sign-in", base_url="https://localhost", data=form)
    assert response.status_code == 302
    assert "Secure" in response.headers["Set-Cookie"]


def test_signing_in_gives_a_new_session_token(console, make_person):
    console.get("/console/sign-in")
    before = console.client.get_cookie("tpa_console", path="/console").value
    console.sign_in(make_person("editor"))
    assert console.client.get_cookie("tpa_console", path="/console").value != before


def test_sign_out_ends_the_session(console, make_person):
    console.sign_in(make_person("editor"))
    assert console.get("/console/").status_code == 200
    assert console.post("/console/sign-out").status_code == 200
    assert console.client.get("/console/").status_code == 302


def test_sign_out_everywhere_ends_every_browser_of_that_person_only(app, make_person):
    email, other = make_person("editor"), make_person("editor")
    first, second, someone = (
        Console(app.test_client()),
        Console(app.test_client()),
        Console(app.test_client()),
    )
    first.sign_in(email), second.sign_in(email), someone.sign_in(other)
    first.get("/console/")
    response = first.post("/console/sign-out-everywhere")
    assert "signed out on every device" in response.get_data(as_text=True)
    assert second.client.get("/console/").status_code == 302
    assert first.client.get("/console/").status_code == 302
    assert someone.client.get("/console/").status_code == 200


def test_an_idle_session_ends(app, console, make_person):
    console.sign_in(make_person("editor"))
    idle = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=app.config["CONSOLE_IDLE_MINUTES"] + 1)
    with app.app_context():
        session = get_session()
        session.query(StaffSession).update({"last_seen_at": idle})
        session.commit()
    assert console.client.get("/console/").status_code == 302


def test_an_active_session_is_kept_alive(app, console, make_person):
    console.sign_in(make_person("editor"))
    almost = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=app.config["CONSOLE_IDLE_MINUTES"] - 1)
    with app.app_context():
        session = get_session()
        session.query(StaffSession).update({"last_seen_at": almost})
        session.commit()
    assert console.client.get("/console/").status_code == 200
    last_seen = execute(app, "SELECT last_seen_at FROM staff_sessions WHERE user_id IS NOT NULL")[0][0]
    assert str(last_seen) > str(almost.replace(tzinfo=None))


def test_an_admin_reset_signs_the_person_out_and_their_old_password_stops_working(
    app, signed_in, make_person
):
    email = make_person("editor")
    victim = Console(app.test_client())
    victim.sign_in(email)
    admin = signed_in("admin")
    user_id = execute(app, "SELECT id FROM staff_users WHERE email = :e", e=email)[0][0]
    response = admin.post(f"/console/people/{user_id}/reset")
    html = response.get_data(as_text=True)
    assert "signed out everywhere" in html and "/console/sign-in/link/" in html
    assert victim.client.get("/console/").status_code == 302
    assert Console(app.test_client()).sign_in(email).status_code == 401


def test_a_deactivated_person_cannot_sign_in(app, runner, make_person):
    email = make_person("editor")
    browser = Console(app.test_client())
    browser.sign_in(email)
    assert runner.invoke(args=["users", "deactivate", "--email", email]).exit_code == 0
    assert browser.client.get("/console/").status_code == 302
    assert Console(app.test_client()).sign_in(email).status_code == 401


def test_a_form_without_its_csrf_token_is_refused(console, make_person):
    console.sign_in(make_person("editor"))
    response = console.client.post("/console/sign-out", data={})
    assert response.status_code == 400
    assert "Form expired" in response.get_data(as_text=True)
    forged = console.client.post("/console/sign-out", data={"csrf_token": "forged"})
    assert forged.status_code == 400
    assert console.client.get("/console/").status_code == 200  # still signed in


def test_a_token_from_another_session_is_refused(app, make_person):
    mine, theirs = Console(app.test_client()), Console(app.test_client())
    mine.sign_in(make_person("editor")), theirs.sign_in(make_person("editor"))
    mine.get("/console/"), theirs.get("/console/")
    response = mine.client.post("/console/sign-out", data={"csrf_token": theirs.token})
    assert response.status_code == 400


def test_the_api_stays_key_authenticated_and_csrf_exempt(client, auth):
    response = client.post(
        "/v1/treatments",
        headers=auth("editor"),
        json={
            "slug": "no-csrf",
            "name": "No CSRF",
            "category": "skin_procedure",
            "summary": "Made through the API.",
        },
    )
    assert response.status_code == 201
    assert "Set-Cookie" not in response.headers


def test_sign_in_attempts_are_limited_per_account_and_address(app, make_person):
    limit = int(app.config["CONSOLE_SIGN_IN_LIMIT"].split("/")[0])
    email, other = make_person("editor"), make_person("editor")
    guesser = Console(app.test_client())
    for _ in range(limit):
        assert guesser.sign_in(email, "wrong password, again").status_code == 401
    locked = guesser.sign_in(email)  # even the right password waits: guessing stops here
    assert locked.status_code == 429
    assert "Too many failed sign-ins" in locked.get_data(as_text=True)
    # Nobody else is locked out: another person from the same address, the same person elsewhere.
    assert Console(app.test_client()).sign_in(other).status_code == 302
    elsewhere = Console(app.test_client())
    elsewhere.client.environ_base["REMOTE_ADDR"] = "198.51.100.7"
    assert elsewhere.sign_in(email).status_code == 302


def test_console_pages_are_no_store(signed_in):
    browser = signed_in("editor")
    assert browser.client.get("/console/").headers["Cache-Control"] == "no-store"
    assert browser.client.get("/console/sign-in").headers["Cache-Control"] == "no-store"


def test_the_console_keeps_the_strict_content_security_policy(client):
    response = client.get("/console/sign-in")
    policy = response.headers["Content-Security-Policy"]
    assert (
        "script-src 'self'" in policy and "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
    )
    assert "<script>" not in response.get_data(as_text=True)
    with client.get("/console/static/console.js") as script:
        assert script.status_code == 200


def test_next_only_leads_inside_the_console(console, make_person):
    email = make_person("editor")
    console.get("/console/sign-in")
    away = console.post(
        "/console/sign-in", {"email": email, "password": PASSWORD, "next": "https://evil.example/"}
    )
    assert away.headers["Location"] == "/console/"


def test_an_editor_cannot_open_the_people_page(signed_in):
    assert signed_in("editor").client.get("/console/people").status_code == 403
    assert signed_in("admin").client.get("/console/people").status_code == 200


def test_an_admin_invites_someone_and_sees_the_link_once(app, signed_in):
    admin = signed_in("admin")
    admin.get("/console/people")
    response = admin.post(
        "/console/people",
        {"email": "new.reviewer@clinic.example", "name": "New Reviewer", "role": "reviewer"},
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "/console/sign-in/link/" in html
    token = re.search(r"/console/sign-in/link/([A-Za-z0-9_-]+)", html).group(1)
    assert Console(app.test_client()).get(f"/console/sign-in/link/{token}").status_code == 200
    assert "/console/sign-in/link/" not in admin.get("/console/people").get_data(as_text=True)
    again = admin.post(
        "/console/people", {"email": "new.reviewer@clinic.example", "name": "X", "role": "editor"}
    )
    assert again.status_code == 409


def test_password_hashes_are_argon2_and_verified(app):
    with app.app_context():
        session = get_session()
        user, token = service.create_user(
            session, "hash@clinic.example", "Hash", Role.EDITOR, staff_settings()
        )
        service.use_link(session, token, PASSWORD, PASSWORD, staff_settings())
        assert service.authenticate(session, "HASH@clinic.example", PASSWORD).id == user.id
        assert service.authenticate(session, "hash@clinic.example", PASSWORD + "x") is None
        assert session.get(StaffUser, user.id).password_hash.startswith("$argon2id$")


def test_the_access_log_never_holds_a_sign_in_links_token(app, runner, capsys):
    import json
    import logging

    from api import create_app
    from api.observability import configure_logging

    logged = create_app({"DATABASE_URL": app.config["DATABASE_URL"], "RATELIMIT_ENABLED": False})
    configure_logging("INFO")
    token = link_token(
        runner.invoke(
            args=[
                "users",
                "create",
                "--email",
                "logged@clinic.example",
                "--name",
                "Logged",
                "--role",
                "editor",
            ]
        ).output
    )
    assert logged.test_client().get(f"/console/sign-in/link/{token}").status_code == 200
    logged.extensions["db_engine"].dispose()
    err = capsys.readouterr().err
    assert token not in err
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert any(line.get("path") == "/console/sign-in/link/…" for line in lines)
    logging.getLogger().handlers.clear()


def test_static_files_and_the_api_never_read_the_session_table(app, console, make_person, count_queries):
    console.sign_in(make_person("editor"))
    count_queries.statements.clear()
    with console.client.get("/console/static/console.css") as response:
        assert response.status_code == 200
    assert not any("staff_sessions" in statement for statement in count_queries.statements)


def test_without_the_database_a_console_page_answers_503_never_a_500(console, make_person, monkeypatch):
    from sqlalchemy.exc import OperationalError

    from api.staff.sessions import ServerSessionInterface

    console.sign_in(make_person("editor"))

    def unreachable(*_args):
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    monkeypatch.setattr(ServerSessionInterface, "_load", unreachable)
    response = console.client.get("/console/")
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"
    assert "try again shortly" in response.get_data(as_text=True)
