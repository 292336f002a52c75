"""`tcai logs system`: the system_log table read back, filtered, newest first."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

from sqlmodel import Session

from tcai.db.models import SystemLog
from tcai.db.types import utcnow
from tcai.logs import remove_handlers, setup_logging


def _write_rows(database, tmp_path) -> None:
    """An error and a critical through the real logging path, plus a warning (as the
    outbox writes one for a dead letter) and an old error, written directly."""
    engine = database.engine()
    handlers = setup_logging(tmp_path / "logs", "info", engine)
    try:
        log = logging.getLogger("tcai.test.logs_cmd")
        log.error("webhook signing failed for bot fade-factory_main")
        log.critical("database write failed twice; spooling")
        for handler in handlers:
            handler.flush()
    finally:
        remove_handlers(handlers)
    with Session(engine) as session:
        session.add(SystemLog(level="warning", source="outbox", message="dead letter 7"))
        session.add(
            SystemLog(
                level="error",
                source="tcai.old",
                message="an error from last week",
                at=utcnow() - timedelta(days=7),
            )
        )
        session.commit()
    engine.dispose()


def test_logs_system_lists_filters_and_limits(cli, migrated, tmp_path) -> None:
    _write_rows(migrated, tmp_path)
    everything = cli("logs", "system", "--json")
    assert everything.exit_code == 0, everything.output
    rows = json.loads(everything.stdout)
    assert [r["message"] for r in rows][-1] == "an error from last week"  # newest first
    assert {r["level"] for r in rows} == {"warning", "error", "critical"}
    assert len(rows) == 4
    assert {"id", "at", "level", "source", "message", "details", "workspace_id"} <= set(rows[0])

    errors = json.loads(cli("logs", "system", "--level", "error", "--json").stdout)
    assert sorted(r["level"] for r in errors) == ["critical", "error", "error"]
    critical = json.loads(cli("logs", "system", "--level", "CRITICAL", "--json").stdout)
    assert [r["message"] for r in critical] == ["database write failed twice; spooling"]

    recent = json.loads(cli("logs", "system", "--since", "24h", "--json").stdout)
    assert "an error from last week" not in [r["message"] for r in recent]
    assert len(recent) == 3

    one = json.loads(cli("logs", "system", "--limit", "1", "--json").stdout)
    assert len(one) == 1

    table = cli("logs", "system", "--level", "warning")
    assert table.exit_code == 0
    assert "dead letter 7" in table.stdout and "outbox" in table.stdout


def test_logs_system_bad_input_and_empty(cli, migrated) -> None:
    bad = cli("logs", "system", "--level", "loud")
    assert bad.exit_code == 2
    assert bad.stderr.startswith("error: --level") and "warning" in bad.stderr
    assert "Traceback" not in bad.output
    since = cli("logs", "system", "--since", "yesterday-ish")
    assert since.exit_code == 1 and "--since" in since.stderr
    empty = cli("logs", "system", "--json")
    assert empty.exit_code == 0 and json.loads(empty.stdout) == []
    quiet = cli("logs", "system")
    assert quiet.exit_code == 0 and quiet.stdout == ""
    assert "no system log entries" in quiet.stderr
    unknown = cli("logs", "system", "--workspace", "no-such-shop")
    assert unknown.exit_code == 1 and "no-such-shop" in unknown.stderr


def test_logs_system_on_an_unmigrated_database_says_what_to_run(cli, database) -> None:
    database.engine().connect().close()
    result = cli("logs", "system")
    assert result.exit_code == 1
    assert "tcai db upgrade" in result.stderr
