"""The one way commands talk: data on stdout, everything else on stderr.

`--json` makes a command print exactly one JSON document on stdout and nothing else
there; tables, progress, hints, warnings and errors go to stderr (tables of data go to
stdout in human mode, since they are the command's result).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from tcai.errors import TcaiError

if TYPE_CHECKING:
    from rich.console import Console

# Rich loads on the first line printed, not at import: `tcai --version` and `tcai --help`
# never print through here (docs/cli.md, "Start-up: what a command imports").


def _stdout() -> Console:
    from rich.console import Console

    return Console(file=sys.stdout, highlight=False, soft_wrap=True)


def _stderr() -> Console:
    from rich.console import Console

    return Console(file=sys.stderr, highlight=False, soft_wrap=True)


def emit_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n")


def result(line: str) -> None:
    """A human result line on stdout (e.g. the final ✓ line)."""
    _stdout().print(line, markup=False)


def info(line: str) -> None:
    _stderr().print(line, markup=False)


def warn(line: str) -> None:
    _stderr().print(f"⚠ {line}", markup=False, style="yellow")


def fail(line: str) -> None:
    _stderr().print(f"✗ {line}", markup=False, style="red")


def error(exc: TcaiError) -> None:
    console = _stderr()
    console.print(f"error: {exc.message}", markup=False, style="red")
    for detail in exc.details:
        console.print(f"  {detail}", markup=False)


def table(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    title: str | None = None,
    *,
    to_stderr: bool = False,
) -> None:
    """A table of data on stdout; with `to_stderr`, a report for people beside a result
    line (or a JSON document) that stays alone on stdout."""
    from rich.table import Table

    grid = Table(title=title, show_edge=False, header_style="bold")
    for column in columns:
        grid.add_column(column, overflow="fold")
    for row in rows:
        grid.add_row(*("" if v is None else str(v) for v in row))
    (_stderr() if to_stderr else _stdout()).print(grid)


Column = tuple[str, str | Callable[[dict[str, Any]], Any]]
"""A listing's column: its header, and the row's key or a function of the row."""


def listing(
    rows: Sequence[dict[str, Any]], columns: Sequence[Column], *, json_: bool, empty: str
) -> None:
    """Every list command's output: the rows as one JSON array with --json, else a table
    of `columns` on stdout, or `empty` on stderr when there are none."""
    if json_:
        emit_json(list(rows))
    elif not rows:
        info(empty)
    else:
        table(
            [header for header, _ in columns],
            [
                [cell(row) if callable(cell) else row.get(cell) for _, cell in columns]
                for row in rows
            ],
        )


@contextmanager
def progress(total: int, label: str, *, enabled: bool) -> Iterator[Any]:
    """A Rich progress bar on an interactive stderr; a no-op advance() otherwise."""
    if not enabled or not sys.stderr.isatty():
        yield lambda _name="": None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[item]}"),
        console=_stderr(),
        transient=True,
    )
    with bar:
        task = bar.add_task(label, total=total, item="")

        def advance(name: str = "") -> None:
            bar.update(task, advance=1, item=name)

        yield advance
