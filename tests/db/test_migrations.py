"""Migrations are the only schema path: a blank database reaches head with no drift."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

import tcai.db.models  # noqa: F401
from tcai.db.migrate import downgrade, get_status, upgrade


def _drift(engine: sa.Engine) -> list[object]:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, SQLModel.metadata))


def test_blank_database_upgrades_to_head_without_drift(database) -> None:
    engine = database.engine()
    try:
        assert get_status(engine).current is None
        upgrade(engine)
        status = get_status(engine)
        assert status.up_to_date and status.current == status.head
        assert _drift(engine) == []
        tables = set(sa.inspect(engine).get_table_names())
        expected = set(SQLModel.metadata.tables)
        assert expected <= tables
        for name in (
            "workspace",
            "app_user",
            "membership",
            "bot_template",
            "bot",
            "conversation",
            "message",
            "lead",
            "booking_event",
            "appointment_request",
            "usage",
            "audit_log",
            "system_log",
            "outbox",
            "login_attempt",
            "lockout",
            "user_session",
        ):
            assert name in tables
    finally:
        engine.dispose()


def test_downgrade_to_base_and_back(database) -> None:
    engine = database.engine()
    try:
        upgrade(engine)
        downgrade(engine, "base")
        assert get_status(engine).current is None
        assert "bot" not in sa.inspect(engine).get_table_names()
        upgrade(engine)
        assert _drift(engine) == []
    finally:
        engine.dispose()


def test_constraints_follow_the_naming_convention(migrated) -> None:
    engine = migrated.engine()
    try:
        inspector = sa.inspect(engine)
        uniques = {u["name"] for u in inspector.get_unique_constraints("workspace")}
        assert "uq_workspace_slug" in uniques
        checks = {c["name"] for c in inspector.get_check_constraints("workspace")}
        assert {"ck_workspace_plan", "ck_workspace_status"} <= checks
    finally:
        engine.dispose()


def test_the_revision_chain_read_from_the_files_is_alembics(database) -> None:
    """`get_status` reads the chain from the version files without loading alembic;
    it must be alembic's own chain, and agree with alembic on a live database."""
    from alembic.script import ScriptDirectory

    from tcai.db.migrate import alembic_config, revisions

    script = ScriptDirectory.from_config(alembic_config())
    ordered = [rev.revision for rev in reversed(list(script.walk_revisions()))]
    assert revisions() == ordered
    engine = database.engine()
    try:
        blank = get_status(engine)
        assert (blank.current, blank.pending) == (None, tuple(ordered))
        upgrade(engine, ordered[0])
        with engine.connect() as conn:
            assert MigrationContext.configure(conn).get_current_revision() == ordered[0]
        partway = get_status(engine)
        assert (partway.current, partway.pending) == (ordered[0], tuple(ordered[1:]))
        upgrade(engine)
        assert get_status(engine).up_to_date
    finally:
        engine.dispose()
