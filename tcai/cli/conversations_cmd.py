"""`tcai conversations`: list and show transcripts."""

from __future__ import annotations

from typing import Annotated

import typer

from tcai.cli import complete, output
from tcai.cli.context import state
from tcai.cli.options import JsonOpt, SinceOpt, WorkspaceOpt

conversations_app = typer.Typer(help="Conversations and transcripts.", no_args_is_help=True)


@conversations_app.command("list")
def conversations_list(
    ctx: typer.Context,
    workspace: WorkspaceOpt,
    bot: Annotated[str | None, typer.Option("--bot", autocompletion=complete.bot_ids)] = None,
    flagged: Annotated[
        bool, typer.Option("--flagged", help="Only those flagged for review.")
    ] = False,
    since: SinceOpt = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000)] = 100,
    json_: JsonOpt = False,
) -> None:
    """A workspace's conversations, most recent first."""
    from tcai.records.conversations import list_conversations
    from tcai.records.leads import parse_since

    rows = list_conversations(
        state(ctx).migrated_engine(),
        workspace,
        bot_id=bot,
        flagged=flagged,
        since=parse_since(since),
        limit=limit,
    )
    output.listing(
        rows,
        [
            ("id", "conversation_id"),
            ("bot", "bot_id"),
            ("session", "session_id"),
            ("last activity", lambda r: r["last_activity_at"][:16]),
            ("messages", "messages"),
            ("flags", lambda r: ",".join(r["flags"])),
            ("lead", "lead_id"),
        ],
        json_=json_,
        empty="no conversations",
    )


@conversations_app.command("show")
def conversations_show(
    ctx: typer.Context,
    conversation: Annotated[str, typer.Argument(help="Conversation id or session id.")],
    workspace: Annotated[
        str | None, typer.Option("--workspace", "-w", autocompletion=complete.client_ids)
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """A transcript, with the source of each answer."""
    from tcai.records.conversations import show_conversation

    document = show_conversation(state(ctx).migrated_engine(), conversation, workspace)
    if json_:
        output.emit_json(document)
        return
    flags = f" [{', '.join(document['flags'])}]" if document["flags"] else ""
    output.result(f"conversation {document['conversation_id']} on {document['bot_id']}{flags}")
    for message in document["transcript"]:
        who = "visitor" if message["role"] == "user" else f"bot ({message['source']})"
        output.result(f"{message['at'][:19]}  {who}: {message['text']}")
