"""The root `tcai` app and its one error boundary.

`TcaiGroup.invoke` turns every `TcaiError` into one actionable stderr line (plus detail
lines) and its exit code: 1 for a failed check or a domain error, 2 for usage and
configuration. Anything unexpected is reported in one line too; `TCAI_DEBUG=1` shows
the traceback.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from tcai import __version__
from tcai.cli import output
from tcai.cli.audit_cmd import audit_app
from tcai.cli.bots_cmd import app as bots_app
from tcai.cli.chat_cmd import chat_command
from tcai.cli.clients_cmd import app as clients_app
from tcai.cli.config_cmd import app as config_app
from tcai.cli.context import state
from tcai.cli.conversations_cmd import conversations_app
from tcai.cli.daemon_cmd import (
    bot_app,
    cache_app,
    demo_command,
    embed_command,
    health_command,
    preview_link_command,
    serve_command,
)
from tcai.cli.db_cmd import app as db_app
from tcai.cli.db_cmd import init_command
from tcai.cli.guards_cmd import check_command, guard_app, scan_app
from tcai.cli.leads_cmd import leads_app
from tcai.cli.llm_cmd import app as llm_app
from tcai.cli.outbox_cmd import app as outbox_app
from tcai.cli.privacy_cmd import app as privacy_app
from tcai.cli.retention_cmd import app as retention_app
from tcai.cli.secrets_cmd import app as secrets_app
from tcai.cli.templates_cmd import app as templates_app
from tcai.cli.users_cmd import users_app
from tcai.errors import TcaiError


class TcaiGroup(TyperGroup):
    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except TcaiError as exc:
            output.error(exc)
            raise typer.Exit(exc.exit_code) from None
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise
        except KeyboardInterrupt:
            output.info("interrupted")
            raise typer.Exit(130) from None
        except Exception as exc:
            if os.environ.get("TCAI_DEBUG") == "1":
                raise
            first = (str(exc).strip().splitlines() or [""])[0][:300]
            output.info(
                f"internal error: {type(exc).__name__}: {first} "
                "(this is a bug; rerun with TCAI_DEBUG=1 for the traceback)"
            )
            raise typer.Exit(1) from None


app = typer.Typer(
    cls=TcaiGroup,
    name="tcai",
    help="Run AI chat assistants for local businesses: templates, clients, bots, the daemon.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        output.result(f"tcai {__version__}")
        raise typer.Exit(0)


@app.callback()
def root(
    ctx: typer.Context,
    env_file: Annotated[
        Path, typer.Option("--env-file", help="Read configuration from this file too.")
    ] = Path(".env"),
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    state(ctx).env_file = env_file


app.command("init", help="Create or upgrade the database; write a .env with fresh secrets.")(
    init_command
)
app.command("demo", help="The one-command tour: init, seed, demo businesses, serve.")(demo_command)
app.command("serve", help="Run the daemon.")(serve_command)
app.command("health", help="Query a running daemon's health.")(health_command)
app.command("embed", help="Print a bot's embed snippet.")(embed_command)
app.command("preview-link", help="A signed, expiring preview URL for a bot.")(preview_link_command)
app.add_typer(bot_app, name="bot")
app.add_typer(cache_app, name="cache")
app.command("chat", help="Talk to a bot from the terminal (offline in facts mode).")(chat_command)
app.add_typer(clients_app, name="clients")
app.add_typer(bots_app, name="bots")
app.add_typer(config_app, name="config")
app.add_typer(db_app, name="db")
app.add_typer(templates_app, name="templates")
app.add_typer(secrets_app, name="secrets")
app.add_typer(leads_app, name="leads")
app.add_typer(conversations_app, name="conversations")
app.add_typer(audit_app, name="audit")
app.add_typer(users_app, name="users")
app.add_typer(outbox_app, name="outbox")
app.add_typer(privacy_app, name="privacy")
app.add_typer(retention_app, name="retention")
app.add_typer(scan_app, name="scan")
app.add_typer(guard_app, name="guard")
app.add_typer(llm_app, name="llm")
app.command("check", help="The pre-deployment checklist; exit 1 if any gate fails.")(check_command)


def main() -> None:
    """Console-script entry point."""
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="replace")
        sys.stderr.reconfigure(errors="replace")  # type: ignore[union-attr]
    app()
