"""Statements compiled once and run on the driver (tcai/db/prepared.py), on this run's
engine: values stored exactly as the ORM stores them, driver errors as SQLAlchemy's,
and the work inside the caller's transaction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from tcai.db.engine import connection_scope
from tcai.db.models import Usage, Workspace
from tcai.db.prepared import Prepared

USAGE = Usage.__table__  # type: ignore[attr-defined]
WORKSPACE = Workspace.__table__  # type: ignore[attr-defined]

ADD = Prepared(
    sa.insert(USAGE)
    .inline()  # without it PostgreSQL's compiled INSERT returns the new id
    .values(workspace_id=sa.bindparam("ws"), month=sa.bindparam("month"), messages=3, leads=0)
)
READ = Prepared(
    sa.select(USAGE.c.month, USAGE.c.messages)
    .where(USAGE.c.workspace_id == sa.bindparam("ws"))
    .order_by(USAGE.c.month)
)


@pytest.fixture
def engine(migrated):
    engine = migrated.engine()
    with Session(engine) as session:
        session.add(Workspace(slug="shop", name="Shop", plan="free"))
        session.commit()
    yield engine
    engine.dispose()


def _workspace_id(engine: sa.Engine) -> int:
    with Session(engine) as session:
        found = session.exec(select(Workspace.id).where(Workspace.slug == "shop")).one()
        assert found is not None
        return found


def test_rows_defaults_and_many(engine) -> None:
    ws = _workspace_id(engine)
    with connection_scope(engine) as conn:
        assert ADD.execute(conn, {"ws": ws, "month": "2026-11"}) == []
        ADD.execute_many(conn, [{"ws": ws, "month": "2026-12"}, {"ws": ws, "month": "2027-01"}])
        rows = READ.execute(conn, {"ws": ws})
    assert [tuple(row) for row in rows] == [("2026-11", 3), ("2026-12", 3), ("2027-01", 3)]


def test_a_timestamp_is_stored_as_the_orm_stores_it(engine) -> None:
    """The column type's own bind processing runs: read back through the ORM, a time
    given in another zone is the same instant, in UTC."""
    ws = _workspace_id(engine)
    table = Workspace.__table__  # type: ignore[attr-defined]
    touch = Prepared(
        sa.update(table)
        .where(table.c.id == sa.bindparam("ws"))
        .values(updated_at=sa.bindparam("at", type_=table.c.updated_at.type))
    )
    given = datetime(2026, 12, 6, 7, 30, 15, 250_000, tzinfo=timezone(timedelta(hours=-5)))
    with connection_scope(engine) as conn:
        touch.execute(conn, {"ws": ws, "at": given})
    with Session(engine) as session:
        stored = session.get(Workspace, ws)
        assert stored is not None
        assert stored.updated_at == given and stored.updated_at.tzinfo == UTC


def test_driver_errors_become_sqlalchemy_errors_and_roll_back(engine) -> None:
    ws = _workspace_id(engine)
    with pytest.raises(sa.exc.IntegrityError), connection_scope(engine) as conn:
        ADD.execute(conn, {"ws": ws, "month": "2026-10"})
        ADD.execute(conn, {"ws": ws, "month": "2026-10"})  # (workspace, month) is unique
    with connection_scope(engine, read_only=True) as conn:
        assert READ.execute(conn, {"ws": ws}) == []  # the whole transaction went
