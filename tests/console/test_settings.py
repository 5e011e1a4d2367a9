"""SECRET_KEY: a server refuses to start without it; commands and tests make one of their own"""

import os
import subprocess
import sys

import pytest

from api import create_app
from api.config import ConfigError


def test_a_server_refuses_to_start_without_a_secret_key(app, monkeypatch):
    monkeypatch.delenv("TPA_SECRET_KEY")
    with pytest.raises(ConfigError, match="TPA_SECRET_KEY is required"):
        create_app({"DATABASE_URL": app.config["DATABASE_URL"]})


def test_a_server_refuses_a_short_secret_key(app):
    with pytest.raises(ConfigError, match="too short"):
        create_app({"DATABASE_URL": app.config["DATABASE_URL"], "SECRET_KEY": "short"})


def test_a_server_uses_the_configured_key(app, monkeypatch):
    monkeypatch.setenv("TPA_SECRET_KEY", "k" * 40)
    made = create_app({"DATABASE_URL": app.config["DATABASE_URL"]})
    assert made.config["SECRET_KEY"] == "k" * 40
    made.extensions["db_engine"].dispose()


def test_tests_and_commands_make_a_key_of_their_own(app, monkeypatch):
    monkeypatch.delenv("TPA_SECRET_KEY")
    made = create_app({"DATABASE_URL": app.config["DATABASE_URL"], "TESTING": True})
    assert len(made.config["SECRET_KEY"]) == 64
    made.extensions["db_engine"].dispose()
    env = {k: v for k, v in os.environ.items() if k != "TPA_SECRET_KEY"} | {
        "DATABASE_URL": app.config["DATABASE_URL"]
    }
    command = subprocess.run([sys.executable, "-m", "flask", "--app", "api", "users", "list"], env=env,
                             capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert command.returncode == 0, command.stderr
