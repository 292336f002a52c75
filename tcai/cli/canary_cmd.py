"""`tcai canary run | list`: a bot's scripted canary conversations (docs/canaries.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from tcai.cli import complete, output
from tcai.cli.context import state
from tcai.cli.options import JsonOpt
from tcai.errors import UsageError

if TYPE_CHECKING:
    from tcai.quality.canary import CanaryReport

app = typer.Typer(
    help="Canary conversations: scripted questions that catch a bot answering wrongly.",
    no_args_is_help=True,
)
MARKS = {"pass": "✓", "fail": "✗", "paused": "-"}


@app.command("run")
def run(
    ctx: typer.Context,
    bot_id: Annotated[
        str | None, typer.Argument(help="The bot to run.", autocompletion=complete.bot_ids)
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Run every bot's canaries.")] = False,
    json_: JsonOpt = False,
) -> None:
    """Ask the bot its canary questions now, through the real pipeline (nothing of the
    business's is written); record the results; exit 1 if any bot fails."""
    import asyncio

    from tcai.chat.llm import make_llm_client
    from tcai.chat.pipeline import ChatEngine
    from tcai.quality.canary import run_canaries

    if (bot_id is None) == (not all_):
        raise UsageError("name one bot, or give --all (not both)")
    cli = state(ctx)
    chat = ChatEngine(cli.settings, cli.migrated_engine(), make_llm_client(cli.settings))

    async def go() -> CanaryReport:
        try:
            return await run_canaries(chat, bot_id)
        finally:
            if chat.llm is not None:
                await chat.llm.close()
            chat.close()

    report = asyncio.run(go())
    if json_:
        output.emit_json(report.as_dict())
    else:
        _render(report)
    if not report.ok:
        raise typer.Exit(1)


def _render(report: CanaryReport) -> None:
    if not report.runs:
        output.info("no bots yet; create one with `tcai clients create`")
        return
    rows: list[tuple[Any, ...]] = []
    for bot in report.runs:
        head = f"{MARKS[bot.status]} {bot.bot_id}"
        if not bot.checks:
            rows.append((head, bot.status, "", bot.note or "", ""))
        for index, check in enumerate(bot.checks):
            name = head if index == 0 else ""
            status = bot.status if index == 0 else ""
            if check.ok:
                result = "✓ " + ", ".join(check.expect)
            else:
                lacking = ", ".join(check.missing) or check.error or ""
                result = f"✗ missing {lacking}: “{check.reply[:120]}”"
            rows.append((name, status, check.kind, check.question, result))
        if bot.alert:
            sent = (
                f"{bot.queued} delivery(ies) queued"
                if bot.queued
                else "recorded only: CANARY_ALERTS is not set"
            )
            rows.append(("", "", "alert", bot.alert, sent))
    output.table(["bot", "status", "check", "question", "result"], rows)
    total, paused = len(report.runs), report.count("paused")
    skipped = f"; {paused} paused (skipped)" if paused else ""
    if report.ok and paused:
        output.result(f"✓ NONE FAILING: {report.count('pass')} passed{skipped}")
    elif report.ok:
        output.result(f"✓ {report.count('pass')} OF {total} BOT(S) PASS")
    else:
        output.result(f"✗ {report.count('fail')} OF {total} BOT(S) FAILING{skipped}")


@app.command("list")
def list_(
    ctx: typer.Context,
    failing: Annotated[bool, typer.Option("--failing", help="Only bots failing now.")] = False,
    json_: JsonOpt = False,
) -> None:
    """Every bot's latest canary run, and what a failing one got wrong."""
    from tcai.quality.canary import latest_runs

    items = latest_runs(state(ctx).migrated_engine())
    if failing:
        items = [item for item in items if item["status"] == "fail"]
    output.listing(
        items,
        [
            ("bot_id", "bot_id"),
            ("client_id", "client_id"),
            ("status", lambda row: row["status"] or "never run"),
            ("version", "run_config_version"),
            ("failed", lambda row: f"{row['failed']}/{row['total']}" if row["status"] else ""),
            ("when", lambda row: _minute(row["finished_at"])),
            ("failing since", lambda row: _minute(row["failing_since"])),
            ("what went wrong", _problems),
        ],
        json_=json_,
        empty="no bot is failing its canaries" if failing else "no bots yet",
    )


def _minute(iso: str | None) -> str:
    """An ISO time to the minute ("2026-12-06 08:19", UTC); --json keeps it whole."""
    return iso[:16].replace("T", " ") if iso else ""


def _problems(row: dict[str, Any]) -> str:
    if row["status"] == "paused":
        return f"skipped: {row['note']}"
    lines = [
        f"{check['question']} → missing {', '.join(check['missing']) or check.get('error')}"
        for check in row["failures"]
    ]
    return "; ".join(lines)
