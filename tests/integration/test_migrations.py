"""The schema exists only through migrations, and they agree with the models"""

from alembic import command
from sqlalchemy import create_engine, inspect

from api.db import alembic_config
from api.models import Base
from tests.databases import fresh_database


def table_names(url):
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_migrations_build_the_schema_agree_with_the_models_and_downgrade_to_empty():
    with fresh_database(migrate=False) as url:
        config = alembic_config(url)
        assert table_names(url) == set()

        command.upgrade(config, "head")
        assert table_names(url) == set(Base.metadata.tables)
        command.check(config)  # raises if autogenerate would write anything

        command.downgrade(config, "base")
        assert table_names(url) == set()
