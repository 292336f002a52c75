"""Options shared by many commands."""

from __future__ import annotations

from typing import Annotated

import typer

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
DryRunOpt = Annotated[
    bool, typer.Option("--dry-run", help="Show what would change; write nothing.")
]
WorkspaceOpt = Annotated[
    str, typer.Option("--workspace", "-w", help="The client id (workspace slug).")
]
SinceOpt = Annotated[
    str | None, typer.Option("--since", help="2026-11-01, or an age such as 7d or 12h.")
]
StatusOpt = Annotated[
    str | None, typer.Option("--status", help="new, contacted, qualified, converted, lost.")
]
