"""`tcai check`: the pre-deployment checklist, every gate run, none short-circuiting.

Gates: configuration, migrations current, templates valid, every live bot's go-live
check (`tcai.quality.golive`), secrets scan clean, payment guard clean. Each row says PASS, FAIL
or WARN, how long it took, what it found and the command that shows the details. A WARN
never counts as passed: the counts are passed / warnings / failed. A broken gate (an
exception) is a FAIL row, never an abort: the operator always sees the whole table.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from tcai.config import Settings, load_settings
from tcai.db.engine import make_engine, prepare_sqlite_file, session_scope

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
from tcai.db.migrate import get_status
from tcai.errors import TcaiError

Status = Literal["PASS", "FAIL", "WARN"]


@dataclass(frozen=True)
class Gate:
    name: str
    status: Status
    message: str
    seconds: float
    command: str


@dataclass
class Checklist:
    gates: list[Gate]

    @property
    def ok(self) -> bool:
        return all(g.status != "FAIL" for g in self.gates)

    def count(self, status: Status) -> int:
        return sum(1 for g in self.gates if g.status == status)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "total": len(self.gates),
            "passed": self.count("PASS"),
            "warnings": self.count("WARN"),
            "failed": self.count("FAIL"),
            "items": [
                {
                    "name": g.name,
                    "status": g.status.lower(),
                    "message": g.message,
                    "seconds": round(g.seconds, 3),
                    "command": g.command,
                }
                for g in self.gates
            ],
        }


GateFn = Callable[[], tuple[Status, str]]


def _run(name: str, command: str, gate: GateFn) -> Gate:
    started = time.monotonic()
    try:
        status, message = gate()
    except TcaiError as exc:
        status, message = (
            "FAIL",
            exc.message + ("; " + "; ".join(exc.details[:3]) if exc.details else ""),
        )
    except Exception as exc:  # a broken gate is a failed gate, never a crash
        status, message = "FAIL", f"{type(exc).__name__}: {exc}"
    return Gate(name, status, message, time.monotonic() - started, command)


def run_checklist(env_file: Path, scan_root: Path) -> Checklist:
    settings_box: list[Settings] = []
    schema_current: list[bool] = []

    def configuration() -> tuple[Status, str]:
        settings = load_settings(env_file)
        settings_box.append(settings)
        if not settings.is_production:
            return (
                "WARN",
                f"valid, but TCAI_ENV is {settings.tcai_env}: production rules are not enforced",
            )
        return "PASS", "valid for production"

    def migrations() -> tuple[Status, str]:
        if not settings_box:
            return "FAIL", "skipped: the configuration is invalid"
        engine = _existing_engine(settings_box[0].database_url or "")
        try:
            status = get_status(engine)
        finally:
            engine.dispose()
        if status.up_to_date:
            schema_current.append(True)
            return "PASS", f"at {status.head}"
        return (
            "FAIL",
            f"{len(status.pending)} migration(s) pending (at {status.current or 'empty'})",
        )

    def templates() -> tuple[Status, str]:
        from tcai.templates.store import as_stored, stored_templates
        from tcai.templates.validation import validate_stored

        if not settings_box:
            return "FAIL", "skipped: the configuration is invalid"
        engine = _existing_engine(settings_box[0].database_url or "")
        try:
            with session_scope(engine) as session:
                rows = [as_stored(r) for r in stored_templates(session)]
        finally:
            engine.dispose()
        report = validate_stored(rows)
        total = len(report.checked)
        if not report.ok:
            return (
                "FAIL",
                f"{len(report.failed_ids())} of {total} templates fail: {report.errors[0].line()}",
            )
        if report.warnings:
            count = len(report.warnings)
            return (
                "WARN",
                f"{total}/{total} valid; {count} placeholder booking URL(s) for each bot to "
                "replace (see go-live)",
            )
        return "PASS", f"{total}/{total} valid"

    def golive() -> tuple[Status, str]:
        from tcai.quality.golive import run_golive

        if not settings_box:
            return "FAIL", "skipped: the configuration is invalid"
        if not schema_current:
            return "FAIL", "skipped: the database schema is not current"
        engine = _existing_engine(settings_box[0].database_url or "")
        try:
            report = run_golive(engine, settings_box[0], live_only=True)
        finally:
            engine.dispose()
        total = len(report.bots)
        if not total:
            return "PASS", "no live bots to check"
        blocked = [bot for bot in report.bots if not bot.ok]
        if blocked:
            first = blocked[0]
            finding = first.blockers[0]
            return (
                "FAIL",
                f"{len(blocked)} of {total} live bot(s) blocked; {first.record.bot_id}: "
                f"{finding.code}: {finding.message}",
            )
        warnings = sum(len(bot.warnings) for bot in report.bots)
        if warnings:
            return "WARN", f"{total}/{total} live bot(s) ready; {warnings} warning(s)"
        return "PASS", f"{total}/{total} live bot(s) ready"

    def clean(report: Any) -> tuple[Status, str]:
        if report.findings:
            first = report.findings[0]
            return (
                "FAIL",
                f"{len(report.findings)} finding(s), first {first.file}:{first.line} {first.rule}",
            )
        return "PASS", f"{report.files_scanned} files clean"

    def secrets() -> tuple[Status, str]:
        from tcai.guards.secrets import scan_paths

        return clean(scan_paths([scan_root], root=scan_root))

    def payments() -> tuple[Status, str]:
        from tcai.guards.payments import guard_paths

        return clean(guard_paths([scan_root], root=scan_root))

    return Checklist(
        [
            _run("configuration", "tcai config show", configuration),
            _run("migrations", "tcai db status", migrations),
            _run("templates", "tcai templates validate", templates),
            _run("go-live", "tcai bots check --all", golive),
            _run("secrets scan", f"tcai scan secrets {scan_root}", secrets),
            _run("payment guard", f"tcai guard payments {scan_root}", payments),
        ]
    )


def _existing_engine(url: str) -> Engine:
    """The configured database, never a new empty SQLite file made by looking."""
    prepare_sqlite_file(url, create=False)
    return make_engine(url)
