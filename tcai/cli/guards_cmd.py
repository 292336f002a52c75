"""`tcai scan secrets`, `tcai guard payments`, `tcai check`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tcai.cli import output
from tcai.cli.context import state
from tcai.cli.options import JsonOpt
from tcai.errors import UsageError

if TYPE_CHECKING:
    from tcai.guards.common import GuardReport

scan_app = typer.Typer(help="Scanners.", no_args_is_help=True)
guard_app = typer.Typer(help="Guards.", no_args_is_help=True)

PathsArg = Annotated[list[Path] | None, typer.Argument(help="Files or folders (default: .).")]
SarifOpt = Annotated[bool, typer.Option("--sarif", help="Print SARIF 2.1.0 instead.")]


def _render(
    report: GuardReport, *, json_: bool, sarif: bool, tool: str, rules: dict[str, str], what: str
) -> None:
    if json_ and sarif:
        raise UsageError("choose one of --json and --sarif")
    if sarif:
        from tcai.guards.common import to_sarif

        output.emit_json(to_sarif(report, tool=tool, rules=rules))
    elif json_:
        output.emit_json(report.as_dict())
    else:
        for finding in report.findings:
            output.result(f"{finding.file}:{finding.line}: {finding.rule}: {finding.message}")
        for note in report.notes:
            output.info(f"note: {note}")
        rate = report.files_scanned / report.seconds if report.seconds > 0 else 0.0
        count, files = len(report.findings), report.files_scanned
        summary = f"{count} {what} in {files} files ({report.seconds:.2f} s, {rate:,.0f} files/s)"
        (output.fail if report.findings else output.info)(summary)
    if report.findings:
        raise typer.Exit(1)


@scan_app.command("secrets")
def scan_secrets(
    paths: PathsArg = None,
    json_: JsonOpt = False,
    sarif: SarifOpt = False,
    baseline: Annotated[
        Path | None, typer.Option("--baseline", help="Known findings to ignore (JSON of hashes).")
    ] = None,
    update_baseline: Annotated[
        bool, typer.Option("--update-baseline", help="Write the current findings to --baseline.")
    ] = False,
    history: Annotated[
        bool, typer.Option("--history", help="Scan the lines added by every commit.")
    ] = False,
) -> None:
    """Find hard-coded credentials; exit 1 on findings. Secrets are always masked."""
    from tcai.guards.secrets import (
        load_baseline,
        rule_descriptions,
        scan_history,
        scan_paths,
        write_baseline,
    )

    if update_baseline and baseline is None:
        raise UsageError("--update-baseline needs --baseline FILE")
    targets = paths or [Path(".")]
    known = (
        load_baseline(baseline)
        if baseline is not None and baseline.exists() and not update_baseline
        else None
    )
    if history:
        if len(targets) != 1:
            raise UsageError("--history takes one repository path")
        report = scan_history(targets[0], baseline=known)
    else:
        report = scan_paths(targets, root=Path.cwd(), baseline=known)
    if update_baseline and baseline is not None:
        write_baseline(baseline, report)
        output.info(f"baseline written: {len(report.findings)} finding(s) in {baseline}")
        raise typer.Exit(0)
    _render(
        report,
        json_=json_,
        sarif=sarif,
        tool="tcai scan secrets",
        rules=rule_descriptions(),
        what="secret(s)",
    )


@guard_app.command("payments")
def guard_payments(paths: PathsArg = None, json_: JsonOpt = False, sarif: SarifOpt = False) -> None:
    """Fail when payment-processing code or dependencies appear; exit 1 on findings."""
    from tcai.guards.payments import guard_paths, rule_descriptions

    report = guard_paths(paths or [Path(".")], root=Path.cwd())
    _render(
        report,
        json_=json_,
        sarif=sarif,
        tool="tcai guard payments",
        rules=rule_descriptions(),
        what="payment finding(s)",
    )


def check_command(
    ctx: typer.Context,
    path: Annotated[Path, typer.Option("--path", help="The tree the scanners check.")] = Path("."),
    json_: JsonOpt = False,
) -> None:
    """The pre-deployment checklist: configuration, migrations, templates, live bots'
    go-live, secrets, payments."""
    from tcai.quality.checklist import run_checklist

    if not path.exists():
        raise UsageError(f"--path: {path} does not exist")
    checklist = run_checklist(state(ctx).env_file, path)
    if json_:
        output.emit_json(checklist.as_dict())
    else:
        output.table(
            ["gate", "status", "time", "details", "see"],
            [
                (g.name, g.status, f"{g.seconds:.2f}s", g.message, g.command)
                for g in checklist.gates
            ],
        )
        warnings = checklist.count("WARN")
        if not checklist.ok:
            output.result(f"✗ NOT READY: fix the {checklist.count('FAIL')} FAIL row(s)")
        elif warnings:
            output.result(f"✓ READY TO DEPLOY with {warnings} warning(s): see the WARN rows")
        else:
            output.result("✓ READY TO DEPLOY")
    if not checklist.ok:
        raise typer.Exit(1)
