"""Alembic environment: runs on the connection the catalog hands over (SQLite or PostgreSQL)."""

from alembic import context

from tasks.platform.catalog import (
    assignment_models,  # noqa: F401 - registers the officer_villages table
    registry_models,  # noqa: F401 - registers the visits and registry tables
)
from tasks.platform.catalog.models import Base

config = context.config
connection = config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER most things in place
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
