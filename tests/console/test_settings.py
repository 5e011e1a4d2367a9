"""SECRET_KEY: from the configuration, required in production, kept in the instance folder by make run"""

import pytest

from api import create_app
from api.config import ConfigurationError


def test_production_refuses_to_start_without_a_secret_key(app):
    with pytest.raises(ConfigurationError, match="TPA_SECRET_KEY"):
        create_app({"DATABASE_URL": app.config["DATABASE_URL"], "ENVIRONMENT": "production"})


def test_production_starts_with_one_from_the_configuration(app):
    made = create_app(
        {
            "DATABASE_URL": app.config["DATABASE_URL"],
            "ENVIRONMENT": "production",
            "SECRET_KEY": "from-the-environment",
        }
    )
    assert made.config["SECRET_KEY"] == "from-the-environment"
    made.extensions["db_engine"].dispose()


def test_development_uses_the_key_kept_in_the_instance_folder(app, tmp_path):
    made = create_app({"DATABASE_URL": app.config["DATABASE_URL"], "TESTING": True})
    made.extensions["db_engine"].dispose()
    made.instance_path = str(tmp_path)
    (tmp_path / "secret_key").write_text("kept-by-make-run\n")
    from api import _secret_key

    made.config["SECRET_KEY"] = None
    _secret_key(made)
    assert made.config["SECRET_KEY"] == "kept-by-make-run"


def test_without_any_key_development_makes_one_for_the_process(app):
    made = create_app({"DATABASE_URL": app.config["DATABASE_URL"], "TESTING": True})
    assert made.config["SECRET_KEY"]
    made.extensions["db_engine"].dispose()
