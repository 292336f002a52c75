"""Options shared by many commands, and `alias_of` for a command's old spelling."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Annotated, ParamSpec, TypeVar

import typer

from tcai.cli import output
from tcai.cli.complete import client_ids

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
DryRunOpt = Annotated[
    bool, typer.Option("--dry-run", help="Show what would change; write nothing.")
]
WorkspaceOpt = Annotated[
    str,
    typer.Option(
        "--workspace", "-w", help="The client id (workspace slug).", autocompletion=client_ids
    ),
]
SinceOpt = Annotated[
    str | None, typer.Option("--since", help="2026-11-01, or an age such as 7d or 12h.")
]
StatusOpt = Annotated[
    str | None, typer.Option("--status", help="new, contacted, qualified, converted, lost.")
]

P = ParamSpec("P")
R = TypeVar("R")


def alias_of(command: Callable[P, R], old: str, new: str) -> Callable[P, R]:
    """`command` under its old spelling `old`: the same parameters, output and exit code,
    after one line on stderr naming `new` (docs/cli.md, "Aliases"). Register it
    `hidden=True` (or in a hidden group) so help pages show only the new spelling."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        output.info(f"note: `{old}` is deprecated and goes in a later release; use `{new}`")
        return command(*args, **kwargs)

    return run
