"""`tcai chat BOT`: talk to a bot through the real pipeline, from a terminal."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from tcai.cli import complete, output
from tcai.cli.context import state
from tcai.cli.options import JsonOpt
from tcai.errors import InvalidMessage, UsageError

if TYPE_CHECKING:
    from tcai.chat.pipeline import ChatEngine, ChatReply


def _render(reply: ChatReply) -> None:
    output.result(f"[{reply.source}] {reply.reply}")
    for action in reply.actions:
        if action["type"] == "booking_redirect":
            output.result(
                f"  → booking link: {action['url']} ({action.get('provider') or 'booking page'})"
            )
        else:
            output.result(f"  → booking request recorded ({action['appointment_type']})")
    if reply.lead_captured:
        output.result("  → lead captured")


async def _run(
    engine: ChatEngine,
    client_id: str,
    bot_id: str,
    message: str | None,
    session_id: str | None,
    json_: bool,
) -> int:
    from tcai.chat.pipeline import ChatRequest

    try:
        if message is not None:
            reply = await engine.handle(ChatRequest(client_id, bot_id, message, session_id, "cli"))
            output.emit_json(reply.as_dict()) if json_ else _render(reply)
            return 0 if reply.http_status < 400 else 1
        output.info(
            f"chatting with {bot_id} ({'LLM' if engine.llm else 'facts mode, no API key'}); "
            "an empty line or Ctrl-D ends"
        )
        while True:
            sys.stderr.write("you> ")
            sys.stderr.flush()
            line = sys.stdin.readline()
            if not line.strip():
                return 0
            try:
                reply = await engine.handle(ChatRequest(client_id, bot_id, line, session_id, "cli"))
            except InvalidMessage as exc:
                output.warn(exc.message)
                continue
            session_id = reply.session_id
            _render(reply)
    finally:
        if engine.llm is not None:
            await engine.llm.close()
        engine.close()


def chat_command(
    ctx: typer.Context,
    bot_id: Annotated[
        str, typer.Argument(help="The bot to talk to.", autocompletion=complete.bot_ids)
    ],
    message: Annotated[
        str | None, typer.Option("--message", "-m", help="Send one message and exit.")
    ] = None,
    session: Annotated[
        str | None, typer.Option("--session", help="Continue this conversation.")
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Talk to a bot (interactive without --message). Works offline in facts mode."""
    import asyncio

    from tcai.bots.service import get_bot
    from tcai.chat.llm import make_llm_client
    from tcai.chat.pipeline import ChatEngine
    from tcai.db.engine import session_scope

    if json_ and message is None:
        raise UsageError("--json needs --message (one message, one JSON document)")
    cli = state(ctx)
    db = cli.migrated_engine()
    with session_scope(db) as s:
        bot, workspace = get_bot(s, bot_id)
        client_id = workspace.slug
    engine = ChatEngine(cli.settings, db, make_llm_client(cli.settings))
    code = asyncio.run(_run(engine, client_id, bot.bot_id, message, session, json_))
    raise typer.Exit(code)
