"""Console fixtures: people with a password, browsers (test clients) signed in as them"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from api.api_keys.models import Role
from api.console.forms import staff_settings
from api.db import get_session
from api.staff import service

PASSWORD = "correct horse battery staple"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_from(html: str) -> str:
    match = CSRF.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1)


class Console:
    """A test client driving the console as a browser would: it reads the CSRF token from each
    page it loads and sends it back with the forms."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client
        self.token: str | None = None

    def get(self, path: str, **kwargs: Any) -> Any:
        response = self.client.get(path, **kwargs)
        match = CSRF.search(response.get_data(as_text=True))
        if match:
            self.token = match.group(1)
        return response

    def post(self, path: str, data: dict[str, Any] | None = None, *, csrf: bool = True, **kwargs: Any) -> Any:
        if csrf and self.token is None:
            self.get("/console/sign-in")
        body = dict(data or {}) | ({"csrf_token": self.token} if csrf else {})
        response = self.client.post(path, data=body, **kwargs)
        match = CSRF.search(response.get_data(as_text=True))
        if match:
            self.token = match.group(1)
        return response

    def sign_in(self, email: str, password: str = PASSWORD) -> Any:
        self.get("/console/sign-in")
        return self.post("/console/sign-in", {"email": email, "password": password})


@pytest.fixture(autouse=True, scope="session")
def _quick_password_hashing() -> Iterator[None]:
    """argon2id at its lowest cost while these tests run: they check the flows, not the hash's
    strength (argon2-cffi's defaults, used in production, are checked once below)."""
    from argon2 import PasswordHasher

    assert service._hasher.time_cost >= 3 and service._hasher.memory_cost >= 65536
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(service, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
        yield


@pytest.fixture
def make_person(app: Flask) -> Callable[..., Any]:
    """`make_person("reviewer")`: an active account with PASSWORD set; returns its email."""

    def make(role: str = "editor", email: str | None = None, password: str | None = PASSWORD) -> str:
        email = email or f"{role}-{uuid.uuid4().hex[:8]}@clinic.example"
        with app.app_context():
            session = get_session()
            _user, token = service.create_user(
                session, email, role.title() + " Person", Role(role), staff_settings()
            )
            if password:
                service.use_link(session, token, password, password, staff_settings())
        return email

    return make


@pytest.fixture
def console(client: FlaskClient) -> Console:
    return Console(client)


@pytest.fixture
def signed_in(app: Flask, make_person: Callable[..., Any]) -> Callable[[str], Console]:
    """`signed_in("reviewer")`: a new console client, signed in as a new person with that role."""

    def make(role: str = "editor") -> Console:
        person = Console(app.test_client())
        response = person.sign_in(make_person(role))
        assert response.status_code == 302, response.get_data(as_text=True)
        person.get("/console/")
        return person

    return make
