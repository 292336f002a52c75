"""Everything one workspace holds, as one JSON document: what `tcai clients delete` writes
before it deletes (docs/cli.md, "Client lifecycle").

The document has the shape of the privacy export (`tcai.records.privacy.export_person`):
`generated_at`, `workspace`, `scope`, `counts`, `total`, `workspaces` and `records` (rows
by table, each row as its columns' JSON values), with `kind: "client"` added. Which tables
and rows belong to the workspace is the registry's answer (`tcai.records.tables`), read
the way `delete_workspace` reads it, so the export holds exactly what a deletion removes.

`lock_workspace` takes the row locks that keep the export and the deletion the same set
of rows on PostgreSQL (SQLite's writer lock already does): a row another transaction
adds for the workspace, its conversations or its outbox rows waits for the deletion and
then fails its foreign key, instead of being deleted unexported. Writing the file is the
caller's job; this module only reads.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, SQLModel, col, select

from tcai.db import models as m
from tcai.db.types import utcnow
from tcai.records.tables import WORKSPACE_TABLES, OwnedTable


def lock_workspace(session: Session, workspace_id: int) -> None:
    """Lock the workspace's row, its conversations and its outbox rows for the rest of the
    transaction (`FOR UPDATE` on PostgreSQL; SQLite ignores it and needs none)."""
    session.exec(select(m.Workspace.id).where(m.Workspace.id == workspace_id).with_for_update())
    session.exec(
        select(m.Conversation.id)
        .where(m.Conversation.workspace_id == workspace_id)
        .with_for_update()
    )
    session.exec(select(m.Outbox.id).where(m.Outbox.workspace_id == workspace_id).with_for_update())


def _record(row: SQLModel) -> dict[str, Any]:
    """A row as JSON-ready values, in the table's column order (as the privacy export)."""
    values = row.model_dump(mode="json")
    columns = row.__table__.columns  # type: ignore[attr-defined]
    return {column.name: values[column.name] for column in columns}


def _owned_rows(session: Session, table: OwnedTable, workspace_id: int) -> list[SQLModel]:
    model: Any = table.model
    if table.owner == "workspace":
        where = col(model.workspace_id) == workspace_id
    elif table.owner == "conversation":
        where = col(model.conversation_id).in_(
            select(m.Conversation.id).where(m.Conversation.workspace_id == workspace_id)
        )
    elif table.owner == "outbox":
        where = col(model.outbox_id).in_(
            select(m.Outbox.id).where(m.Outbox.workspace_id == workspace_id)
        )
    else:
        return []  # a person's rows outlive any one workspace (delete_workspace agrees)
    return list(session.exec(select(model).where(where).order_by(col(model.id))).all())


def export_workspace(session: Session, workspace: m.Workspace) -> dict[str, Any]:
    """Every row the workspace owns, by table, in the privacy export's format."""
    assert workspace.id is not None
    records: dict[str, list[dict[str, Any]]] = {"workspace": [_record(workspace)]}
    for table in WORKSPACE_TABLES:
        if table.owner == "person":
            continue
        records[table.name] = [_record(row) for row in _owned_rows(session, table, workspace.id)]
    counts = {table: len(rows) for table, rows in records.items()}
    return {
        "kind": "client",
        "generated_at": utcnow().isoformat(),
        "workspace": workspace.slug,
        "scope": f"workspace {workspace.slug}",
        "counts": counts,
        "total": sum(counts.values()),
        "workspaces": [
            {
                "id": workspace.id,
                "slug": workspace.slug,
                "name": workspace.name,
                "status": workspace.status,
            }
        ],
        "records": records,
    }
