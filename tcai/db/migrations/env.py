"""Alembic environment: runs the migrations on the connection tcai hands it.

`tcai.db.migrate` opens the connection (with tcai's SQLite pragmas), takes the migration
lock and passes it in `config.attributes["connection"]`; running `alembic` by hand is not
supported, so there is no URL handling here.
"""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import tcai.db.models  # noqa: F401  (registers every table on SQLModel.metadata)

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `tcai db upgrade`, not the alembic command")

context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
