"""Who may do what, decided in one place: the role table (`tcai/data/roles.yaml`) and the
workspace look-up every portal request goes through.

A request names an action ("view", "pause_bot", …), never a role. `access` answers with
the workspace and the user's role in it, or refuses: a workspace the user has no
membership in is `NotFound` (exactly like one that does not exist, so a probe learns
nothing), and an action the user's role lacks is `Forbidden`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from sqlalchemy.engine import Engine
from sqlmodel import col, select

from tcai.access.auth import Authenticated
from tcai.data import load_yaml
from tcai.db.engine import session_scope
from tcai.db.models import MEMBERSHIP_ROLES, Membership, Workspace
from tcai.errors import Forbidden, NotFound

SUPER_ADMIN = "super_admin"


@dataclass(frozen=True)
class RoleTable:
    roles: tuple[str, ...]
    actions: dict[str, frozenset[str]]


@cache
def load_roles() -> RoleTable:
    raw = load_yaml("roles.yaml")
    roles = tuple(raw["roles"])
    if set(roles) != set(MEMBERSHIP_ROLES):
        raise ValueError("roles.yaml: roles must be the membership roles of the data model")
    actions = {name: frozenset(allowed) for name, allowed in raw["actions"].items()}
    for name, allowed in actions.items():
        if not allowed <= set(roles):
            raise ValueError(f"roles.yaml: action {name} names an unknown role")
    return RoleTable(roles, actions)


def actions() -> tuple[str, ...]:
    return tuple(load_roles().actions)


def can(role: str, action: str) -> bool:
    """May `role` (a membership role, or super_admin) do `action`?"""
    table = load_roles()
    if action not in table.actions:
        raise ValueError(f"unknown action {action!r}; see tcai/data/roles.yaml")
    return role == SUPER_ADMIN or role in table.actions[action]


@dataclass(frozen=True)
class WorkspaceAccess:
    workspace_id: int
    slug: str
    name: str
    role: str


def workspaces_for(engine: Engine, user: Authenticated) -> list[WorkspaceAccess]:
    """The workspaces `user` may open, by slug (a super_admin: every one)."""
    with session_scope(engine) as session:
        if user.global_role == SUPER_ADMIN:
            rows = session.exec(select(Workspace).order_by(col(Workspace.slug))).all()
            return [WorkspaceAccess(w.id or 0, w.slug, w.name, SUPER_ADMIN) for w in rows]
        joined = session.exec(
            select(Workspace, Membership.role)
            .join(Membership, col(Membership.workspace_id) == col(Workspace.id))
            .where(col(Membership.user_id) == user.user_id)
            .order_by(col(Workspace.slug))
        ).all()
        return [WorkspaceAccess(w.id or 0, w.slug, w.name, role) for w, role in joined]


def access(engine: Engine, user: Authenticated, slug: str, action: str) -> WorkspaceAccess:
    """The workspace `slug` if `user` may do `action` there; `NotFound` when they have no
    membership (or it does not exist), `Forbidden` when their role lacks the action."""
    found = next((w for w in workspaces_for(engine, user) if w.slug == slug), None)
    if found is None:
        raise NotFound("There is nothing at this address.")
    if not can(found.role, action):
        raise Forbidden("Your role in this workspace does not allow this.")
    return found
