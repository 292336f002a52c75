"""`tcai audit`: the append-only audit trail."""

from __future__ import annotations

from typing import Annotated

import typer

from tcai.cli import complete, output
from tcai.cli.context import state
from tcai.cli.options import JsonOpt, SinceOpt

audit_app = typer.Typer(help="The audit trail.", no_args_is_help=True)


@audit_app.command("list")
def audit_list_command(
    ctx: typer.Context,
    workspace: Annotated[
        str | None, typer.Option("--workspace", "-w", autocompletion=complete.client_ids)
    ] = None,
    actor: Annotated[str | None, typer.Option("--actor")] = None,
    action: Annotated[
        str | None, typer.Option("--action", help="Exact action or prefix, e.g. bot.")
    ] = None,
    since: SinceOpt = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000)] = 200,
    json_: JsonOpt = False,
) -> None:
    """Audit entries, newest first."""
    from tcai.audit import list_audit
    from tcai.db.engine import session_scope
    from tcai.records.leads import get_workspace, parse_since

    with session_scope(state(ctx).migrated_engine()) as session:
        workspace_id = get_workspace(session, workspace).id if workspace else None
        rows = list_audit(
            session,
            workspace_id=workspace_id,
            actor=actor,
            action=action,
            since=parse_since(since),
            limit=limit,
        )
    output.listing(
        rows,
        [
            ("at", lambda r: r["at"][:19]),
            ("actor", "actor"),
            ("action", "action"),
            ("target", "target"),
            ("reason", "reason"),
        ],
        json_=json_,
        empty="no audit entries",
    )
