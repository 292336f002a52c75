"""The root `tcai` app and its one error boundary.

`TcaiGroup.invoke` turns every `TcaiError` into one actionable stderr line (plus detail
lines) and its exit code: 1 for a failed check or a domain error, 2 for usage and
configuration. Anything unexpected is reported in one line too; `TCAI_DEBUG=1` shows
the traceback.

The root imports no command module. `TcaiGroup` knows each top-level command and group
by name and help text (`LAZY`, below) and imports its module only when it runs or shows
its own help, so `tcai --version` and `tcai --help` load typer and little else (docs/cli.md,
"Start-up: what a command imports"; tests/cli/test_startup.py).
"""

from __future__ import annotations

import difflib
import importlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
import typer.main
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from tcai import __version__
from tcai.cli import output
from tcai.cli.context import state
from tcai.errors import TcaiError

if TYPE_CHECKING:
    from typer import _click


@dataclass(frozen=True)
class Lazy:
    """A top-level command or group: where it lives and the help `tcai --help` shows."""

    module: str
    attr: str
    help: str
    group: bool = False
    hidden: bool = False
    """An old spelling kept for a release: it works, `tcai --help` does not list it."""


# In the order `tcai --help` lists them (commands, then groups, as typer orders them).
# A group's help repeats its Typer's `help=`; tests/cli/test_startup.py keeps them equal.
LAZY: dict[str, Lazy] = {
    "init": Lazy(
        "tcai.cli.db_cmd",
        "init_command",
        "Create or upgrade the database; write a .env with fresh secrets.",
    ),
    "demo": Lazy(
        "tcai.cli.daemon_cmd",
        "demo_command",
        "The one-command tour: init, seed, demo businesses, serve.",
    ),
    "serve": Lazy("tcai.cli.daemon_cmd", "serve_command", "Run the daemon."),
    "health": Lazy("tcai.cli.daemon_cmd", "health_command", "Query a running daemon's health."),
    "embed": Lazy("tcai.cli.daemon_cmd", "embed_command", "Print a bot's embed snippet."),
    "preview-link": Lazy(
        "tcai.cli.daemon_cmd",
        "preview_link_command",
        "A signed, expiring preview URL for a bot.",
    ),
    "chat": Lazy(
        "tcai.cli.chat_cmd",
        "chat_command",
        "Talk to a bot from the terminal (offline in facts mode).",
    ),
    "check": Lazy(
        "tcai.cli.guards_cmd",
        "check_command",
        "The pre-deployment checklist; exit 1 if any gate fails.",
    ),
    "doctor": Lazy(
        "tcai.cli.doctor_cmd",
        "doctor_command",
        "Troubleshoot a bot (widget, LLM, outbox, leads) or a user's login; each fix in a line.",
    ),
    "bot": Lazy(
        "tcai.cli.bots_cmd",
        "bot_app",
        "Deprecated: the kill switch is `tcai bots pause` / `tcai bots resume`.",
        group=True,
        hidden=True,
    ),
    "cache": Lazy("tcai.cli.daemon_cmd", "cache_app", "Daemon caches.", group=True),
    "clients": Lazy(
        "tcai.cli.clients_cmd",
        "app",
        "Clients (workspaces): provision, list, show, update, suspend, resume, delete, plan.",
        group=True,
    ),
    "bots": Lazy(
        "tcai.cli.bots_cmd",
        "app",
        "Bots: list, show, change settings, pause and resume, check go-live readiness.",
        group=True,
    ),
    "config": Lazy("tcai.cli.config_cmd", "app", "Inspect the configuration.", group=True),
    "db": Lazy("tcai.cli.db_cmd", "app", "Database migrations.", group=True),
    "templates": Lazy(
        "tcai.cli.templates_cmd",
        "app",
        "Industry templates: seed, validate, browse.",
        group=True,
    ),
    "secrets": Lazy("tcai.cli.secrets_cmd", "app", "Secrets: rotation.", group=True),
    "leads": Lazy(
        "tcai.cli.leads_cmd",
        "leads_app",
        "Leads: list, export, change status, recover the spool.",
        group=True,
    ),
    "conversations": Lazy(
        "tcai.cli.conversations_cmd",
        "conversations_app",
        "Conversations and transcripts.",
        group=True,
    ),
    "audit": Lazy("tcai.cli.audit_cmd", "audit_app", "The audit trail.", group=True),
    "logs": Lazy("tcai.cli.logs_cmd", "app", "Logs: read the system log.", group=True),
    "users": Lazy("tcai.cli.users_cmd", "users_app", "Operator and owner accounts.", group=True),
    "outbox": Lazy(
        "tcai.cli.outbox_cmd",
        "app",
        "Outbox: webhook and owner e-mail deliveries, their log and dead letters.",
        group=True,
    ),
    "privacy": Lazy(
        "tcai.cli.privacy_cmd",
        "app",
        "One person's data: export it, or erase it from every table.",
        group=True,
    ),
    "retention": Lazy(
        "tcai.cli.retention_cmd",
        "app",
        "Retention: purge data past each client's retention days.",
        group=True,
    ),
    "scan": Lazy("tcai.cli.guards_cmd", "scan_app", "Scanners.", group=True),
    "guard": Lazy("tcai.cli.guards_cmd", "guard_app", "Guards.", group=True),
    "llm": Lazy("tcai.cli.llm_cmd", "app", "The LLM endpoint the assistants use.", group=True),
    "canary": Lazy(
        "tcai.cli.canary_cmd",
        "app",
        "Canary conversations: scripted questions that catch a bot answering wrongly.",
        group=True,
    ),
    "knowledge": Lazy(
        "tcai.cli.knowledge_cmd",
        "app",
        "Knowledge: import facts and FAQs from a business's website or a file.",
        group=True,
    ),
}


# Near misses (docs/cli.md, "Near misses"): a word that is no command of the group it was
# typed in gets a pointer. First the commands these words usually mean, if the group has
# them; at the top level, the command of a group the word names; else difflib's close
# matches among the listed commands.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "disable": ("pause", "suspend"),
    "enable": ("resume",),
    "stop": ("pause", "suspend"),
    "kill": ("pause", "suspend"),
    "off": ("pause",),
    "start": ("resume",),
    "unpause": ("resume",),
    "on": ("resume",),
    "remove": ("delete",),
    "rm": ("delete",),
    "del": ("delete",),
    "destroy": ("delete",),
    "ls": ("list",),
    "all": ("list",),
    "info": ("show",),
    "get": ("show",),
    "view": ("show",),
    "describe": ("show",),
    "inspect": ("show",),
    "status": ("show",),
    "edit": ("set", "update"),
    "change": ("set", "update"),
    "config": ("set", "update", "show"),
    "configure": ("set", "update"),
    "new": ("create",),
    "add": ("create", "invite"),
    "make": ("create",),
    "verify": ("check", "validate"),
    "test": ("check", "smoke"),
    "lint": ("validate",),
    "password": ("passwd",),
    "reset-password": ("passwd",),
    "unblock": ("unlock",),
    "dump": ("export",),
    "download": ("export",),
    "migrate": ("upgrade",),
    "rollback": ("downgrade",),
}
ROOT_POINTERS: dict[str, str] = {
    "pause": "bots pause",
    "resume": "bots resume",
    "disable": "bots pause",
    "enable": "bots resume",
    "stop": "bots pause",
    "kill": "bots pause",
    "suspend": "clients suspend",
    "start": "serve",
    "run": "serve",
    "daemon": "serve",
    "status": "health",
    "migrate": "db upgrade",
    "upgrade": "db upgrade",
    "backup": "db backup",
    "restore": "db restore",
    "rotate": "secrets rotate",
    "import": "knowledge import",
    "export": "leads export",
    "seed": "templates seed",
    "validate": "templates validate",
    "purge": "retention purge",
    "erase": "privacy erase",
    "version": "--version",
    "help": "--help",
}


def _listed(group: TyperGroup) -> list[str]:
    return [name for name, command in group.commands.items() if not command.hidden]


def _join(choices: list[str]) -> str:
    quoted = [f"`{choice}`" for choice in choices]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"


def near_miss(group: TyperGroup, ctx: _click.Context, word: str) -> str:
    """'No such command …' and, when something comes close, which command was meant."""
    listed = _listed(group)
    meant = [name for name in SYNONYMS.get(word.lower(), ()) if name in listed]
    if ctx.parent is None and word.lower() in ROOT_POINTERS:
        meant.append(ROOT_POINTERS[word.lower()])
    if not meant:
        meant = difflib.get_close_matches(word.lower(), listed, n=3, cutoff=0.7)
    message = f"No such command {word!r}."
    if meant:
        message += f" Did you mean {_join([f'{ctx.command_path} {name}' for name in meant])}?"
    return message


class PointerGroup(TyperGroup):
    """A group whose unknown command is answered with `near_miss` (exit 2)."""

    def resolve_command(
        self, ctx: _click.Context, args: list[str]
    ) -> tuple[str | None, _click.Command | None, list[str]]:
        word = args[0] if args else ""
        if (
            word
            and not word.startswith("-")
            and not ctx.resilient_parsing
            and self.get_command(ctx, word) is None
        ):
            ctx.fail(near_miss(self, ctx, word))
        return super().resolve_command(ctx, args)


# Help shows a value's type only when it says something (a path, a number, the choices):
# typer labels every option and argument, flags `<bool>` and text `<str>` included,
# which only adds noise beside the option's own help (docs/cli.md, "Help pages").
SAYS_NOTHING = frozenset({"<bool>", "<str>", "<list[str]>"})


def _quiet_type_label(param_class: type[TyperOption] | type[TyperArgument]) -> None:
    shown = param_class.display_type_rich
    if getattr(shown, "quiet", False):
        return

    def display_type_rich(self: Any, ctx: _click.Context) -> str | None:
        label = shown(self, ctx=ctx)
        return None if label is not None and label.removesuffix("...") in SAYS_NOTHING else label

    display_type_rich.quiet = True  # type: ignore[attr-defined]
    param_class.display_type_rich = display_type_rich  # type: ignore[method-assign]


_quiet_type_label(TyperOption)
_quiet_type_label(TyperArgument)


def _no_options() -> None:
    """The callback of the throw-away Typer `TcaiGroup.load` builds a command in."""


class TcaiGroup(PointerGroup):
    """The root group: the error boundary, and the `LAZY` commands.

    Until a command is needed, `commands` holds a stand-in with its name and help, enough
    for `tcai --help` to list it and for a mistyped name to get its suggestion. Resolving
    a name (to run it, or to show its own help) imports its module and builds the real
    command exactly as `app.add_typer` / `app.command` would.
    """

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self._listing = False
        self._pending: set[str] = set()
        for name, entry in LAZY.items():
            if name not in self.commands:
                self.commands[name] = self._stand_in(name, entry)
                self._pending.add(name)

    def _stand_in(self, name: str, entry: Lazy) -> _click.Command:
        if entry.group:
            return TyperGroup(
                name=name,
                help=entry.help,
                no_args_is_help=True,
                rich_markup_mode=self.rich_markup_mode,
                hidden=entry.hidden,
            )
        return TyperCommand(
            name=name,
            help=entry.help,
            rich_markup_mode=self.rich_markup_mode,
            hidden=entry.hidden,
        )

    def load(self, name: str) -> _click.Command:
        """The real command for `name`: its module imported, its click command built."""
        entry = LAZY[name]
        target = getattr(importlib.import_module(entry.module), entry.attr)
        holder = typer.Typer(
            rich_markup_mode=self.rich_markup_mode,
            suggest_commands=self.suggest_commands,
            add_completion=False,
        )
        holder.callback()(_no_options)
        if entry.group:
            holder.add_typer(target, name=name, cls=PointerGroup, hidden=entry.hidden)
        else:
            holder.command(name, help=entry.help, hidden=entry.hidden)(target)
        built = typer.main.get_command(holder)
        assert isinstance(built, TyperGroup)
        return built.commands[name]

    def get_command(self, ctx: _click.Context, cmd_name: str) -> _click.Command | None:
        if cmd_name in self._pending and not self._listing:
            self.commands[cmd_name] = self.load(cmd_name)
            self._pending.discard(cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_help(self, ctx: _click.Context, formatter: _click.HelpFormatter) -> None:
        # Listing the commands needs their names and help, not their modules.
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False

    def shell_complete(self, ctx: _click.Context, incomplete: str) -> list[Any]:
        # So does offering them on Tab (docs/cli.md, "Shell completion").
        self._listing = True
        try:
            return super().shell_complete(ctx, incomplete)
        finally:
            self._listing = False

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
        except BrokenPipeError:
            raise  # `tcai … | head`: click's main quiets the pipe and exits 1
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
    add_completion=True,  # --install-completion, --show-completion (docs/cli.md)
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tcai {__version__}")  # not through Rich: nothing else needs it here
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


def main() -> None:
    """Console-script entry point."""
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="replace")
        sys.stderr.reconfigure(errors="replace")  # type: ignore[union-attr]
    app()
