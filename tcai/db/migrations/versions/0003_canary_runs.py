"""canary runs: the results of each bot's scripted canary conversations

A new table (docs/canaries.md), so no batch rebuild of an existing one is needed on
SQLite; its rows go with their workspace and bot (ON DELETE CASCADE).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-20 10:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import tcai.db.types

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "canary_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("bot_id", sa.Integer(), nullable=False),
        sa.Column("config_version", sa.Integer(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("trigger", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("note", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("checks", sa.JSON(), nullable=False),
        sa.Column("alert", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("started_at", tcai.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", tcai.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('pass', 'fail', 'paused')", name=op.f("ck_canary_run_status")
        ),
        sa.CheckConstraint(
            "trigger IN ('manual', 'schedule', 'config')", name=op.f("ck_canary_run_trigger")
        ),
        sa.ForeignKeyConstraint(
            ["bot_id"], ["bot.id"], name=op.f("fk_canary_run_bot_id_bot"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspace.id"],
            name=op.f("fk_canary_run_workspace_id_workspace"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_canary_run")),
    )
    with op.batch_alter_table("canary_run", schema=None) as batch_op:
        batch_op.create_index("ix_canary_run_bot_id_id", ["bot_id", "id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_canary_run_finished_at"), ["finished_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_canary_run_workspace_id"), ["workspace_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("canary_run", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_canary_run_workspace_id"))
        batch_op.drop_index(batch_op.f("ix_canary_run_finished_at"))
        batch_op.drop_index("ix_canary_run_bot_id_id")

    op.drop_table("canary_run")
