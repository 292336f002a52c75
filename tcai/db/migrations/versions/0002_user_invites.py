"""user invites: one-time links that let an invited user choose a password

Only the link token's SHA-256 is stored (`token_hash`); a new table, so no batch rebuild
of an existing one is needed on SQLite.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06 03:28:04.122763
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import tcai.db.types

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "user_invite",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("role", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("invited_by", sqlmodel.sql.sqltypes.AutoString(length=254), nullable=False),
        sa.Column("created_at", tcai.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", tcai.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("accepted_at", tcai.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", tcai.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "role IN ('owner', 'manager', 'staff', 'agent', 'viewer')",
            name=op.f("ck_user_invite_role"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["app_user.id"],
            name=op.f("fk_user_invite_user_id_app_user"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspace.id"],
            name=op.f("fk_user_invite_workspace_id_workspace"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_invite")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_user_invite_token_hash")),
    )
    with op.batch_alter_table("user_invite", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_user_invite_user_id"), ["user_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_user_invite_workspace_id"), ["workspace_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("user_invite", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_user_invite_workspace_id"))
        batch_op.drop_index(batch_op.f("ix_user_invite_user_id"))

    op.drop_table("user_invite")
