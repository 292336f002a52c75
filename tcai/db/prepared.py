"""Statements compiled once and run on the driver's cursor: the chat turn's hot path.

SQLAlchemy Core builds each statement (`sa.insert`, `sa.select` …) and compiles it once
per dialect; each execution then goes straight to the DBAPI cursor of the caller's
SQLAlchemy `Connection`, inside the transaction that connection already holds. What it
skips is SQLAlchemy's per-execution work (cache-key generation, execution context,
result wrapping): about 30 µs a statement on SQLite and more on PostgreSQL, most of the
client CPU of a chat turn's database work (docs/chat-pipeline.md, "What a turn costs").

Values go through each column type's own bind processor (so a timestamp is stored
exactly as the ORM stores it), driver errors become SQLAlchemy's (`IntegrityError`,
`OperationalError` …), and a connection the driver reports dead is invalidated, as
SQLAlchemy would do. Result rows are the driver's plain tuples: use this for ids,
numbers and text, not for values that need result processing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.elements import BindParameter


@dataclass(frozen=True)
class _Compiled:
    sql: str
    positional: tuple[str, ...] | None
    """Parameter names in order, for a positional paramstyle; None for named ones."""
    defaults: dict[str, Any]
    processors: dict[str, Callable[[Any], Any]]


class Prepared:
    """One Core statement, compiled once per dialect."""

    def __init__(self, statement: sa.Executable) -> None:
        self.statement = statement
        self._compiled: dict[str, _Compiled] = {}

    def _for(self, dialect: Dialect) -> _Compiled:
        found = self._compiled.get(dialect.name)
        if found is None:
            compiled = self.statement.compile(dialect=dialect)  # type: ignore[attr-defined]
            processors: dict[str, Callable[[Any], Any]] = {}
            for bind, name in compiled.bind_names.items():
                assert isinstance(bind, BindParameter)
                processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
                if processor is not None:
                    processors[name] = processor
            found = self._compiled[dialect.name] = _Compiled(
                sql=compiled.string,
                positional=tuple(compiled.positiontup) if compiled.positional else None,
                defaults=dict(compiled.params),
                processors=processors,
            )
        return found

    def _bound(self, compiled: _Compiled, params: dict[str, Any]) -> Any:
        values = {**compiled.defaults, **params}
        for name, processor in compiled.processors.items():
            values[name] = processor(values[name])
        if compiled.positional is None:
            return values
        return tuple(values[name] for name in compiled.positional)

    def execute(self, conn: sa.Connection, params: dict[str, Any]) -> list[Any]:
        """Run once; returns the rows (empty for a statement that returns none)."""
        compiled = self._for(conn.dialect)
        return _run(conn, compiled.sql, self._bound(compiled, params), many=False)

    def execute_many(self, conn: sa.Connection, rows: Sequence[dict[str, Any]]) -> None:
        compiled = self._for(conn.dialect)
        _run(conn, compiled.sql, [self._bound(compiled, row) for row in rows], many=True)


def _run(conn: sa.Connection, sql: str, params: Any, *, many: bool) -> list[Any]:
    dialect = conn.dialect
    dbapi_connection = conn.connection.dbapi_connection
    assert dbapi_connection is not None
    cursor = dbapi_connection.cursor()
    try:
        if many:
            cursor.executemany(sql, params)
            return []
        cursor.execute(sql, params)
        return list(cursor.fetchall()) if cursor.description is not None else []
    except dialect.loaded_dbapi.Error as exc:
        dead = dialect.is_disconnect(exc, dbapi_connection, cursor)
        if dead:
            conn.invalidate(exc)
        raise sa.exc.DBAPIError.instance(
            sql,
            params,
            exc,
            dialect.loaded_dbapi.Error,
            hide_parameters=True,
            connection_invalidated=dead,
            dialect=dialect,
        ) from exc
    finally:
        cursor.close()
