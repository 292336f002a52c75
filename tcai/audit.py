"""The append-only audit trail. Callers pass what changed; secrets never get in."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from tcai.db.models import AuditLog

SECRET_KEYS = ("secret", "password", "token", "api_key", "authorization")


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: ("********" if any(s in k.lower() for s in SECRET_KEYS) and v else _scrub(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


def record_audit(
    session: Session,
    *,
    actor: str,
    action: str,
    target: str | None = None,
    workspace_id: int | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str | None = None,
    request_id: str | None = None,
    ip: str | None = None,
) -> None:
    """Add one audit row to the caller's transaction (it commits with the change)."""
    session.add(
        AuditLog(
            actor=actor,
            action=action,
            target=target,
            workspace_id=workspace_id,
            before=_scrub(before) if before is not None else None,
            after=_scrub(after) if after is not None else None,
            reason=reason,
            request_id=request_id,
            ip=ip,
        )
    )


def list_audit(
    session: Session,
    *,
    workspace_id: int | None = None,
    actor: str | None = None,
    action: str | None = None,
    since: Any = None,
    limit: int = 200,
) -> list[dict[str, Any]]:
    from sqlmodel import col, select

    query = select(AuditLog).order_by(col(AuditLog.at).desc(), col(AuditLog.id).desc()).limit(limit)
    if workspace_id is not None:
        query = query.where(AuditLog.workspace_id == workspace_id)
    if actor:
        query = query.where(AuditLog.actor == actor)
    if action:
        query = query.where(col(AuditLog.action).startswith(action))
    if since is not None:
        query = query.where(col(AuditLog.at) >= since)
    return [
        {
            "id": row.id,
            "at": row.at.isoformat(),
            "actor": row.actor,
            "action": row.action,
            "target": row.target,
            "workspace_id": row.workspace_id,
            "reason": row.reason,
            "before": row.before,
            "after": row.after,
            "request_id": row.request_id,
        }
        for row in session.exec(query)
    ]
