"""API keys and roles: who may write what, and the `keys` command line"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from api.api_keys.service import revoke_key
from api.db import get_session
from tests.conftest import execute
from tests.helpers import FDA_APPROVAL, STRONG_RCT, create_treatment

PROBLEM = "application/problem+json"
UNKNOWN_KEY = "tpa_" + "A" * 43  # well-formed, never issued

# --- the role matrix -------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A treatment with one study and one regulatory entry, made by an admin for the test."""

    slug: str
    etag: str
    study_id: int
    study_etag: str
    entry_id: int
    entry_etag: str


@pytest.fixture
def target(client, auth) -> Target:
    admin = auth("admin", name="matrix-setup")
    slug = create_treatment(client, admin)["slug"]
    study = client.post(f"/v1/treatments/{slug}/studies", json=STRONG_RCT, headers=admin)
    entry = client.post(f"/v1/treatments/{slug}/regulatory", json=FDA_APPROVAL, headers=admin)
    assert study.status_code == entry.status_code == 201
    etag = client.get(f"/v1/treatments/{slug}").headers["ETag"]
    return Target(slug, etag, study.get_json()["id"], study.headers["ETag"], entry.get_json()["id"],
                  entry.headers["ETag"])  # fmt: skip


# (method, path, body, If-Match, role needed, status on success); paths and ETags are filled in
# from the target, so success is reachable whenever the credentials allow it.
OPERATIONS = {
    "create treatment": (
        "POST",
        "/v1/treatments",
        {"slug": "matrix-new", "name": "New", "category": "laser", "summary": "A new one."},
        None,
        "editor",
        201,
    ),  # fmt: skip
    "update treatment": ("PATCH", "/v1/treatments/{slug}", {"summary": "Changed."}, "etag", "editor", 200),
    "add study": ("POST", "/v1/treatments/{slug}/studies", STRONG_RCT, None, "editor", 201),
    "update study": (
        "PATCH",
        "/v1/treatments/{slug}/studies/{study_id}",
        {"participants": 300},
        "study_etag",
        "editor",
        200,
    ),  # fmt: skip
    "delete study": ("DELETE", "/v1/treatments/{slug}/studies/{study_id}", None, None, "editor", 204),
    "add regulatory entry": (
        "POST",
        "/v1/treatments/{slug}/regulatory",
        FDA_APPROVAL | {"regulator": "EMA"},
        None,
        "editor",
        201,
    ),  # fmt: skip
    "update regulatory entry": (
        "PATCH",
        "/v1/treatments/{slug}/regulatory/{entry_id}",
        {"reference": "P000001"},
        "entry_etag",
        "editor",
        200,
    ),  # fmt: skip
    "delete regulatory entry": (
        "DELETE",
        "/v1/treatments/{slug}/regulatory/{entry_id}",
        None,
        None,
        "editor",
        204,
    ),  # fmt: skip
    "record decision": (
        "POST",
        "/v1/treatments/{slug}/decisions",
        {"status": "not_approved", "reason": "Not for us."},
        None,
        "reviewer",
        201,
    ),  # fmt: skip
    "read audit trail": ("GET", "/v1/treatments/{slug}/audit", None, None, "editor", 200),
}
RANK = {"editor": 0, "reviewer": 1, "admin": 2}
CREDENTIALS = ["none", "malformed", "unknown", "revoked", "editor", "reviewer", "admin"]


def credentials(kind: str, auth: Any, app: Any) -> dict[str, str]:
    if kind == "none":
        return {}
    if kind == "malformed":
        return {"Authorization": "Token x"}
    if kind == "unknown":
        return {"Authorization": f"Bearer {UNKNOWN_KEY}"}
    if kind == "revoked":
        headers = auth("admin", name="revoked-admin")
        with app.app_context():
            revoke_key(get_session(), "revoked-admin")
        return headers
    return auth(kind)


def audit_count(app: Any) -> int:
    return execute(app, "SELECT COUNT(*) FROM audit_records")[0][0]


@pytest.mark.parametrize("kind", CREDENTIALS)
@pytest.mark.parametrize("operation", list(OPERATIONS))
def test_role_matrix(client, app, auth, target, operation, kind):
    method, path, body, etag_from, needed, success = OPERATIONS[operation]
    url = path.format(slug=target.slug, study_id=target.study_id, entry_id=target.entry_id)
    headers = credentials(kind, auth, app)
    if etag_from:
        headers["If-Match"] = getattr(target, etag_from)
    audited = audit_count(app)

    response = client.open(url, method=method, json=body, headers=headers)

    if kind in ("none", "malformed", "unknown", "revoked"):
        assert response.status_code == 401, response.get_json()
        assert response.headers["WWW-Authenticate"].lower().startswith("bearer")
        assert response.mimetype == PROBLEM
        assert response.get_json()["status"] == 401
    elif RANK[kind] < RANK[needed]:
        assert response.status_code == 403, response.get_json()
        assert response.mimetype == PROBLEM
        assert response.get_json()["status"] == 403
        assert "WWW-Authenticate" not in response.headers
    else:
        assert response.status_code == success, response.get_json()
        if method != "GET":
            assert audit_count(app) == audited + (2 if operation == "create treatment" else 1)
        return
    # Refused requests change nothing.
    assert audit_count(app) == audited


def test_public_reads_need_no_key(client, auth, target):
    for path in ("", "/decisions", "/studies", "/regulatory"):
        assert client.get(f"/v1/treatments/{target.slug}{path}").status_code == 200
    assert client.get(f"/v1/treatments/{target.slug}/audit").status_code == 401


@pytest.mark.parametrize(
    "header",
    ["Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "bearer tpa_short", f"Bearer {UNKNOWN_KEY}x",
     f"Bearer  {UNKNOWN_KEY}"],
)  # fmt: skip
def test_malformed_or_unknown_authorization_headers_are_401(client, target, header):
    response = client.patch(f"/v1/treatments/{target.slug}", json={"summary": "x"},
                            headers={"Authorization": header, "If-Match": target.etag})  # fmt: skip
    assert response.status_code == 401
    assert response.mimetype == PROBLEM
    assert "WWW-Authenticate" in response.headers


def test_the_bearer_scheme_is_case_insensitive(client, auth, target):
    key = auth("editor")["Authorization"].split(" ", 1)[1]
    response = client.patch(f"/v1/treatments/{target.slug}", json={"summary": "Changed."},
                            headers={"Authorization": f"bearer {key}", "If-Match": target.etag})  # fmt: skip
    assert response.status_code == 200


def test_audit_names_the_key_and_role_that_wrote(client, auth, target):
    headers = auth("reviewer", name="dr-murphy")
    response = client.post(f"/v1/treatments/{target.slug}/decisions",
                           json={"status": "not_approved", "reason": "No."}, headers=headers)  # fmt: skip
    assert response.status_code == 201
    latest = client.get(f"/v1/treatments/{target.slug}/audit", headers=headers).get_json()[-1]
    assert (latest["actor_name"], latest["actor_role"]) == ("dr-murphy", "reviewer")


# --- the keys command line -------------------------------------------------------------------


def create_key_cli(runner, name: str, role: str) -> str:
    result = runner.invoke(args=["keys", "create", "--name", name, "--role", role])
    assert result.exit_code == 0, result.output
    return result.output.strip().splitlines()[-1]


def test_keys_create_prints_the_key_alone_on_the_last_line(runner):
    result = runner.invoke(args=["keys", "create", "--name", "website-editor", "--role", "editor"])
    assert result.exit_code == 0, result.output
    last = result.output.rstrip("\n").splitlines()[-1]
    assert last == last.strip()
    assert last.startswith("tpa_")
    assert len(last) >= 40
    assert " " not in last


def test_keys_are_random(runner):
    assert create_key_cli(runner, "one", "editor") != create_key_cli(runner, "two", "editor")


@pytest.mark.parametrize("role", ["editor", "reviewer", "admin"])
def test_a_created_key_works_as_a_bearer_key_with_its_role(client, runner, role):
    key = create_key_cli(runner, f"cli-{role}", role)
    headers = {"Authorization": f"Bearer {key}"}
    slug = create_treatment(client, headers)["slug"]
    decision = client.post(f"/v1/treatments/{slug}/decisions",
                           json={"status": "not_approved", "reason": "No."}, headers=headers)  # fmt: skip
    assert decision.status_code == (403 if role == "editor" else 201)
    audit = client.get(f"/v1/treatments/{slug}/audit", headers=headers).get_json()
    assert {(r["actor_name"], r["actor_role"]) for r in audit} == {(f"cli-{role}", role)}


def test_keys_create_refuses_an_unknown_role(runner):
    result = runner.invoke(args=["keys", "create", "--name", "x", "--role", "superuser"])
    assert result.exit_code != 0
    assert "tpa_" not in result.output


def test_keys_list_shows_names_and_roles_but_never_the_key(runner, client):
    editor = create_key_cli(runner, "website-editor", "editor")
    admin = create_key_cli(runner, "head-of-governance", "admin")
    result = runner.invoke(args=["keys", "list"])
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line.split() for line in result.output.splitlines()[1:] if line.strip()}
    assert lines["website-editor"][1] == "editor"
    assert lines["head-of-governance"][1] == "admin"
    assert editor not in result.output and admin not in result.output
    # Not even a long fragment of a key.
    assert editor[4:20] not in result.output and admin[4:20] not in result.output


def test_keys_list_shows_last_use_and_revocation(runner, client):
    key = create_key_cli(runner, "used", "editor")
    create_key_cli(runner, "unused", "editor")
    create_treatment(client, {"Authorization": f"Bearer {key}"})
    assert runner.invoke(args=["keys", "revoke", "unused"]).exit_code == 0
    rows = {line.split()[0]: line for line in runner.invoke(args=["keys", "list"]).output.splitlines()[1:]}
    assert rows["used"].rstrip().endswith("-")  # used, not revoked
    assert rows["used"].count("-") > 1  # a last-used date
    assert not rows["unused"].rstrip().endswith("-")  # revoked: a date


def test_the_database_stores_only_a_hash_of_each_key(app, runner):
    key = create_key_cli(runner, "stored", "admin")
    (stored_hash,) = execute(app, "SELECT key_hash FROM api_keys WHERE name = 'stored'")[0]
    assert key not in stored_hash and key[4:] not in stored_hash
    assert len(stored_hash) >= 64
    for row in execute(app, "SELECT * FROM api_keys"):
        for value in row:
            assert key not in str(value)
            assert key[4:] not in str(value)


def test_keys_revoke_makes_the_key_401_at_once(client, runner):
    key = create_key_cli(runner, "leaving", "admin")
    headers = {"Authorization": f"Bearer {key}"}
    slug = create_treatment(client, headers)["slug"]
    assert client.get(f"/v1/treatments/{slug}/audit", headers=headers).status_code == 200

    result = runner.invoke(args=["keys", "revoke", "leaving"])
    assert result.exit_code == 0, result.output

    response = client.get(f"/v1/treatments/{slug}/audit", headers=headers)
    assert response.status_code == 401
    assert "WWW-Authenticate" in response.headers
    body = {"slug": "after-revoke", "name": "x", "category": "laser", "summary": "x"}
    assert client.post("/v1/treatments", json=body, headers=headers).status_code == 401


def test_keys_revoke_of_an_unknown_name_fails(runner):
    result = runner.invoke(args=["keys", "revoke", "nobody"])
    assert result.exit_code != 0


def test_keys_create_with_a_duplicate_name_fails_and_keeps_the_first_key(client, runner):
    first = create_key_cli(runner, "twin", "editor")
    result = runner.invoke(args=["keys", "create", "--name", "twin", "--role", "admin"])
    assert result.exit_code != 0
    assert "tpa_" not in result.output
    # The first key still works, still as an editor.
    headers = {"Authorization": f"Bearer {first}"}
    slug = create_treatment(client, headers)["slug"]
    decision = client.post(f"/v1/treatments/{slug}/decisions",
                           json={"status": "not_approved", "reason": "No."}, headers=headers)  # fmt: skip
    assert decision.status_code == 403
