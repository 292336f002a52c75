"""The people of one workspace: who has a membership, with which role.

Read-only; accounts are made and changed by `tcai.access.users`, and whether the person
asking may see this list is `tcai.access.permissions`' decision (action `manage_users`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import col, select

from tcai.db.engine import session_scope
from tcai.db.models import Membership, User


def workspace_members(engine: Engine, workspace_id: int) -> list[dict[str, Any]]:
    """Every member of the workspace, by e-mail: role, disabled, last login."""
    with session_scope(engine) as session:
        rows = session.exec(
            select(User, Membership.role)
            .join(Membership, col(Membership.user_id) == col(User.id))
            .where(col(Membership.workspace_id) == workspace_id)
            .order_by(col(User.email))
        ).all()
        return [
            {
                "email": user.email,
                "role": role,
                "disabled": user.disabled,
                "last_login_at": user.last_login_at.isoformat() if user.last_login_at else None,
                "member_since": user.created_at.isoformat(),
            }
            for user, role in rows
        ]
