"""Every migration can be undone: `tcai db downgrade` walks the chain down and back up
on this run's engine with data in the tables that survive (docs/operations.md).

The chain is read from the version files (`revisions()`), never written out here, so a
new migration is walked as soon as it exists, and one without a real `downgrade()`
fails `test_every_migration_defines_a_downgrade`.
"""

from __future__ import annotations

import ast
import json

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

import tcai.db.models  # noqa: F401
from tcai.db.migrate import MIGRATIONS_DIR, get_status, revisions, upgrade
from tests.conftest import provision


def _tables(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names()) - {"alembic_version"}


def _counts(engine: sa.Engine, tables: set[str]) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            name: int(conn.exec_driver_sql(f'SELECT COUNT(*) FROM "{name}"').scalar_one())
            for name in sorted(tables)
        }


def _drift(engine: sa.Engine) -> list[object]:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, SQLModel.metadata))


def _is_empty_body(body: list[ast.stmt]) -> bool:
    real = [
        node
        for node in body
        if not isinstance(node, ast.Pass)
        and not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))
    ]
    return not real


def test_every_migration_defines_a_downgrade() -> None:
    files = sorted((MIGRATIONS_DIR / "versions").glob("*.py"))
    assert len(files) == len(revisions())
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found = [
            node
            for node in tree.body
            if isinstance(node, ast.FunctionDef) and node.name == "downgrade"
        ]
        assert found, f"{path.name} has no downgrade()"
        assert not _is_empty_body(found[0].body), f"{path.name}: downgrade() does nothing"


def test_the_empty_body_check_catches_pass_and_docstrings() -> None:
    for source in ("def downgrade():\n    pass\n", 'def downgrade():\n    """no."""\n    ...\n'):
        function = ast.parse(source).body[0]
        assert isinstance(function, ast.FunctionDef) and _is_empty_body(function.body)
    real = ast.parse('def downgrade():\n    op.drop_table("x")\n').body[0]
    assert isinstance(real, ast.FunctionDef) and not _is_empty_body(real.body)


def test_down_to_each_revision_and_up_again_keeps_the_surviving_data(cli, seeded) -> None:
    chain = revisions()
    engine = seeded.engine()
    try:
        # What each revision's schema holds, built upward from a blank database.
        cli("db", "downgrade", "base", "--yes")
        tables_at: dict[str, set[str]] = {}
        for revision in chain:
            upgrade(engine, revision)
            tables_at[revision] = _tables(engine)
        assert cli("templates", "seed").exit_code == 0
        provision(seeded)
        head_tables = _tables(engine)
        at_head = _counts(engine, head_tables)
        assert at_head["workspace"] == 1 and at_head["bot"] == 1 and at_head["bot_template"]

        for target in [*chain[:-1][::-1], "base"]:
            down = cli("db", "downgrade", target, "--yes", "--json")
            assert down.exit_code == 0, (target, down.output)
            report = json.loads(down.stdout)
            kept = chain[: chain.index(target) + 1] if target != "base" else []
            assert report["undone"] == chain[len(kept) :][::-1]
            assert report["revision"] == (kept[-1] if kept else None)
            for revision in report["undone"]:
                assert f"will undo {revision}" in down.stderr

            status = cli("db", "status", "--json")
            assert status.exit_code == 1
            document = json.loads(status.stdout)
            assert document["current"] == (kept[-1] if kept else None)
            assert document["pending"] == chain[len(kept) :]
            assert document["up_to_date"] is False

            surviving = tables_at[kept[-1]] if kept else set()
            assert _tables(engine) == surviving, target
            counts = _counts(engine, surviving)
            assert counts == {name: at_head[name] for name in surviving}, target

            up = cli("db", "upgrade", "--json")
            assert up.exit_code == 0, up.output
            assert json.loads(up.stdout)["applied"] == chain[len(kept) :]
            assert get_status(engine).up_to_date
            assert _tables(engine) == head_tables
            assert _drift(engine) == []
            again = _counts(engine, head_tables)
            assert {name: again[name] for name in surviving} == counts
    finally:
        engine.dispose()


def test_downgrade_shows_the_plan_and_needs_yes(cli, migrated) -> None:
    chain = revisions()
    result = cli("db", "downgrade", "base")
    assert result.exit_code == 2
    for revision in chain:
        assert f"will undo {revision}" in result.stderr
    assert "--yes" in result.stderr and "tcai db backup" in result.stderr
    assert result.stdout == ""
    assert json.loads(cli("db", "status", "--json").stdout)["up_to_date"] is True


def test_downgrade_minus_one_and_bad_targets(cli, migrated) -> None:
    chain = revisions()
    unknown = cli("db", "downgrade", "nope", "--yes")
    assert unknown.exit_code == 2 and "unknown revision 'nope'" in unknown.stderr
    too_far = cli("db", "downgrade", f"-{len(chain) + 1}", "--yes")
    assert too_far.exit_code == 2 and "above base" in too_far.stderr
    same = cli("db", "downgrade", chain[-1], "--yes", "--json")
    assert same.exit_code == 0 and json.loads(same.stdout)["undone"] == []
    one = cli("db", "downgrade", "-1", "--yes", "--json")
    assert one.exit_code == 0, one.output
    assert json.loads(one.stdout)["undone"] == [chain[-1]]
    if len(chain) > 1:
        assert json.loads(cli("db", "status", "--json").stdout)["current"] == chain[-2]
        newer = cli("db", "downgrade", chain[-1], "--yes")
        assert newer.exit_code == 2 and "tcai db upgrade" in newer.stderr
    empty = cli("db", "downgrade", "base", "--yes")
    assert empty.exit_code == 0
    nothing = cli("db", "downgrade", "base", "--yes")
    assert nothing.exit_code == 1 and "nothing to downgrade" in nothing.stderr


@pytest.mark.parametrize(
    "command",
    [("db", "status"), ("db", "upgrade"), ("db", "downgrade", "-1"), ("bots", "list")],
)
def test_a_revision_this_version_does_not_know_is_named(cli, migrated, command) -> None:
    """A newer tcai migrated the database (the rollback installed an older one first):
    no command pretends it is merely behind."""
    engine = migrated.engine()
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999_future'")
    finally:
        engine.dispose()
    result = cli(*command)
    assert result.exit_code == 1, result.output
    assert "9999_future" in result.output and "does not know" in result.output
    assert "Traceback" not in result.output
