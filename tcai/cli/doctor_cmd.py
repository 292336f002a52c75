"""`tcai doctor`: the run book's troubleshooting in one command (docs/cli.md, "tcai doctor").

The findings are `tcai.quality.doctor`'s. This door supplies what the core may not import:
the daemon's own origin rule and the headers it derives from it (`tcai.daemon.origins`),
and the HTTP GETs to the running daemon (urllib, a short timeout, never raising).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated

import typer

from tcai.cli import complete, output
from tcai.cli.context import state
from tcai.cli.options import JsonOpt
from tcai.errors import UsageError

if TYPE_CHECKING:
    from tcai.config import Settings
    from tcai.quality.doctor import DoctorReport, HttpAnswer, WidgetRule

HTTP_TIMEOUT_S = 3.0
MAX_BODY = 1024 * 1024
MARKS = {"ok": "✓", "warn": "⚠", "fail": "✗"}


def http_get(url: str, headers: Mapping[str, str]) -> HttpAnswer:
    """One GET with a short timeout; what came back, or why nothing did."""
    import urllib.error
    import urllib.request

    from tcai import __version__
    from tcai.quality.doctor import HttpAnswer

    request = urllib.request.Request(
        url, headers={"User-Agent": f"tcai-doctor/{__version__}", **headers}
    )
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:
            return HttpAnswer(response.status, dict(response.headers), response.read(MAX_BODY))
    except urllib.error.HTTPError as exc:
        return HttpAnswer(exc.code, dict(exc.headers or {}), exc.read(MAX_BODY))
    except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return HttpAnswer(None, error=str(reason) or type(exc).__name__)


def daemon_rule(settings: Settings, base: str) -> WidgetRule:
    """The daemon's origin rule as it applies to a page loading the widget from `base`:
    its own origin is PUBLIC_URL, else (outside production) the address it is reached at
    (tcai/daemon/origins.py, `self_origin`)."""
    from urllib.parse import urlsplit

    from tcai.daemon.origins import frame_ancestors, is_allowed
    from tcai.quality.doctor import OriginVerdict

    parts = urlsplit(base)
    own = settings.public_url or (
        "" if settings.is_production else f"{parts.scheme}://{parts.netloc}".lower()
    )

    def rule(origin: str, bot_origins: tuple[str, ...]) -> OriginVerdict:
        allowed = is_allowed(origin, bot_origins, settings, own)
        return OriginVerdict(
            allowed=allowed,
            cors=origin if allowed and origin != own else None,
            frame_ancestors=frame_ancestors(bot_origins, settings),
        )

    return rule


def _print(report: DoctorReport) -> None:
    for finding in report.findings:
        output.result(f"{MARKS[finding.status]} {finding.check}: {finding.message}")
        if finding.fix:
            output.result(f"    fix: {finding.fix}")
    counts = report.as_dict()["counts"]
    summary = f"{counts['ok']} ok, {counts['warn']} warning(s), {counts['fail']} failed"
    if report.ok:
        output.info(f"doctor: {summary}")
    else:
        output.fail(f"doctor: {summary}")


def doctor_command(
    ctx: typer.Context,
    bot_id: Annotated[
        str | None,
        typer.Argument(
            metavar="[BOT]",
            help="The bot to examine.",
            show_default=False,
            autocompletion=complete.bot_ids,
        ),
    ] = None,
    origin: Annotated[
        str | None,
        typer.Option(
            "--origin",
            help="The website to test the widget from (default: the bot's first allowed origin).",
        ),
    ] = None,
    user: Annotated[
        str | None, typer.Option("--user", help="Also examine this account's login.")
    ] = None,
    url: Annotated[
        str | None,
        typer.Option("--url", help="The running daemon (default http://HOST:PORT)."),
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """The run book's troubleshooting in one command; each finding with its fix; exit 1
    when any fails. Without BOT or --user: the daemon, the LLM and the outbox."""
    from tcai.config import parse_origin
    from tcai.quality.doctor import run_doctor

    if origin is not None:
        if bot_id is None:
            raise UsageError("--origin needs a BOT: tcai doctor BOT --origin https://…")
        try:
            origin = parse_origin(origin)
        except ValueError as exc:
            raise UsageError(f"--origin: {exc}") from None
    cli = state(ctx)
    base = cli.public_url(url)
    report = run_doctor(
        cli.migrated_engine(),
        cli.settings,
        bot_id=bot_id,
        origin=origin,
        email=user,
        base=base,
        get=http_get,
        rule=daemon_rule(cli.settings, base),
    )
    if json_:
        output.emit_json(report.as_dict())
    else:
        _print(report)
    if not report.ok:
        raise typer.Exit(1)
