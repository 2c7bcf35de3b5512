"""Tables are made by migrations, and the migrations match the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from app.extensions import db


def test_migrations_match_the_models(app):
    with app.app_context(), db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, db.metadata)
    assert differences == []


def test_migrations_create_every_model_table(app):
    with app.app_context(), db.engine.connect() as connection:
        existing = set(inspect(connection).get_table_names())
    assert {table.name for table in db.metadata.sorted_tables} <= existing
