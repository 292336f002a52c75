"""`tcai bots list | show | set | pause | resume | check`, and `tcai bot disable|enable`,
the kill switch's old spelling (hidden aliases of pause and resume; docs/cli.md)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperCommand

from tcai.cli import complete, output
from tcai.cli.context import state
from tcai.cli.options import JsonOpt, alias_of
from tcai.errors import UsageError

if TYPE_CHECKING:
    from typer import _click

    from tcai.quality.golive import GoLiveReport

app = typer.Typer(
    help="Bots: list, show, change settings, pause and resume, check go-live readiness.",
    no_args_is_help=True,
)
bot_app = typer.Typer(
    help="Deprecated: the kill switch is `tcai bots pause` / `tcai bots resume`.",
    no_args_is_help=True,
)
MAX_PATCH_BYTES = 256 * 1024


@app.command("list")
def list_(
    ctx: typer.Context,
    client: Annotated[
        str | None,
        typer.Option(
            "--client", help="Only this client's bots.", autocompletion=complete.client_ids
        ),
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """List bots."""
    from tcai.bots.service import list_bots
    from tcai.db.engine import session_scope

    with session_scope(state(ctx).migrated_engine()) as session:
        items = list_bots(session, client)
    output.listing(
        items,
        [
            ("bot_id", "bot_id"),
            ("client_id", "client_id"),
            ("name", "name"),
            ("status", "status"),
            ("template_id", "template_id"),
            ("version", "config_version"),
        ],
        json_=json_,
        empty="no bots yet; create one with `tcai clients create`",
    )


@app.command("show")
def show(
    ctx: typer.Context,
    bot_id: Annotated[str, typer.Argument(autocompletion=complete.bot_ids)],
    json_: JsonOpt = False,
) -> None:
    """Show a bot, its status and its configuration (secrets masked)."""
    from tcai.bots.config import BotConfig
    from tcai.bots.service import bot_summary, get_bot
    from tcai.db.engine import session_scope

    with session_scope(state(ctx).migrated_engine()) as session:
        bot, workspace = get_bot(session, bot_id)
        document = {
            **bot_summary(bot, workspace),
            "config": BotConfig.model_validate(bot.config).public_dict(),
        }
    if json_:
        output.emit_json(document)
        return
    config = document.pop("config")
    for key, value in document.items():
        output.result(f"{key}: {'' if value is None else value}")
    output.result(f"business: {json.dumps(config['business'], ensure_ascii=False)}")
    output.result(f"booking: {json.dumps(config['booking'], ensure_ascii=False)}")
    output.result(f"template booking mode: {config['template']['booking']['mode']}")


def _load_patch(path: Path) -> dict[str, Any]:
    import yaml

    if not path.is_file():
        raise UsageError(f"--file: {path} does not exist")
    if path.stat().st_size > MAX_PATCH_BYTES:
        raise UsageError(f"--file: {path} is larger than {MAX_PATCH_BYTES // 1024} KiB")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise UsageError(
            f"--file: {path} is not YAML or JSON ({str(exc).splitlines()[0]})"
        ) from None
    if not isinstance(data, dict):
        raise UsageError(f"--file: {path} must hold a mapping of settings")
    return data


class SetCommand(TyperCommand):
    """`bots set`'s help ends with every settable key and its rule. They come from the
    core's table of setters when that page is shown (`tcai bots --help` stays light)."""

    def format_help(self, ctx: _click.Context, formatter: _click.HelpFormatter) -> None:
        super().format_help(ctx, formatter)
        from rich.console import Console
        from rich.panel import Panel
        from rich.table import Table

        from tcai.bots.service import setting_rules

        keys = Table.grid(padding=(0, 2))
        keys.add_column(style="bold cyan", no_wrap=True)
        keys.add_column()
        for key, rule in setting_rules().items():
            keys.add_row(key, rule)
        title = "Keys (KEY=VALUE; an empty value clears an optional one)"
        Console(file=sys.stdout, highlight=False).print(
            Panel(keys, title=title, title_align="left", border_style="dim")
        )


@app.command("set", cls=SetCommand)
def set_(
    ctx: typer.Context,
    bot_id: Annotated[str, typer.Argument(autocompletion=complete.bot_ids)],
    assignments: Annotated[list[str] | None, typer.Argument(help="key=value pairs.")] = None,
    file: Annotated[
        Path | None, typer.Option("--file", help="YAML/JSON with settings to merge.")
    ] = None,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why (kept in the audit log).")
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Change a bot's settings: validated, versioned, audited.

    Give KEY=VALUE pairs, a --file, or both; the keys and their rules are listed below."""
    from tcai.bots.service import change_bot, settable_keys

    if not assignments and file is None:
        raise UsageError(
            f"nothing to change; give key=value pairs ({', '.join(settable_keys())}) or --file"
        )
    patch = _load_patch(file) if file else None
    cli = state(ctx)
    change = change_bot(
        cli.migrated_engine(),
        bot_id,
        assignments=assignments or [],
        patch=patch,
        reason=reason,
        actor=cli.actor,
    )
    document = {
        "bot_id": change.bot_id,
        "config_version": change.config_version,
        "changed": list(change.changed),
    }
    if json_:
        output.emit_json(document)
    elif change.changed:
        changed = ", ".join(change.changed)
        output.result(f"✓ {change.bot_id} at config version {change.config_version}: {changed}")
    else:
        output.result(f"no change; {change.bot_id} stays at config version {change.config_version}")


@app.command("pause")
def pause(
    ctx: typer.Context,
    bot_id: Annotated[str, typer.Argument(autocompletion=complete.bot_ids)],
    reason: Annotated[str, typer.Option("--reason", help="Why: shown to operators, audited.")],
    json_: JsonOpt = False,
) -> None:
    """The kill switch: pause a bot in every daemon within 2 seconds.

    Its visitors get a polite note with the business's phone until `tcai bots resume`."""
    from tcai.bots.service import set_bot_status

    cli = state(ctx)
    summary = set_bot_status(
        cli.migrated_engine(), bot_id, enabled=False, reason=reason, actor=cli.actor
    )
    if json_:
        output.emit_json(summary)
    else:
        output.result(f"✓ {bot_id} paused: {summary['paused_reason']}")


@app.command("resume")
def resume(
    ctx: typer.Context,
    bot_id: Annotated[str, typer.Argument(autocompletion=complete.bot_ids)],
    json_: JsonOpt = False,
) -> None:
    """Resume a paused bot in every daemon within 2 seconds."""
    from tcai.bots.service import set_bot_status

    cli = state(ctx)
    summary = set_bot_status(
        cli.migrated_engine(), bot_id, enabled=True, reason=None, actor=cli.actor
    )
    if json_:
        output.emit_json(summary)
    else:
        output.result(f"✓ {bot_id} is active again")


bot_app.command("disable", help="Deprecated: use `tcai bots pause BOT --reason ...`.")(
    alias_of(pause, "tcai bot disable", "tcai bots pause")
)
bot_app.command("enable", help="Deprecated: use `tcai bots resume BOT`.")(
    alias_of(resume, "tcai bot enable", "tcai bots resume")
)


@app.command("check")
def check(
    ctx: typer.Context,
    bot_id: Annotated[
        str | None, typer.Argument(help="The bot to check.", autocompletion=complete.bot_ids)
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Check every bot.")] = False,
    json_: JsonOpt = False,
) -> None:
    """Go-live readiness: blockers and warnings per bot; exit 1 on a blocker.

    Each finding comes with its fix."""
    from tcai.quality.golive import run_golive

    if (bot_id is None) == (not all_):
        raise UsageError("name one bot, or give --all (not both)")
    cli = state(ctx)
    report = run_golive(cli.migrated_engine(), cli.settings, bot_id)
    if json_:
        output.emit_json(report.as_dict())
    else:
        _render_readiness(report)
    if not report.ok:
        raise typer.Exit(1)


def _render_readiness(report: GoLiveReport) -> None:
    if not report.bots:
        output.info("no bots yet; create one with `tcai clients create`")
        return
    rows = []
    for bot in report.bots:
        findings = [("BLOCKER", f) for f in bot.blockers] + [("warn", f) for f in bot.warnings]
        if not findings:
            rows.append((bot.record.bot_id, "ready", "", "ready to go live", ""))
        for index, (level, finding) in enumerate(findings):
            name = bot.record.bot_id if index == 0 else ""
            rows.append((name, level, finding.code, finding.message, finding.fix))
    output.table(["bot", "level", "code", "problem", "fix"], rows, to_stderr=True)
    blocked, total = report.count("fail"), len(report.bots)
    blockers = sum(len(bot.blockers) for bot in report.bots)
    warnings = sum(len(bot.warnings) for bot in report.bots)
    if blocked:
        output.result(
            f"✗ {blocked} OF {total} BOT(S) NOT READY: {blockers} blocker(s), {warnings} warning(s)"
        )
    elif warnings:
        output.result(f"✓ ALL {total} BOT(S) READY TO GO LIVE with {warnings} warning(s)")
    else:
        output.result(f"✓ ALL {total} BOT(S) READY TO GO LIVE")
