"""One-statement requests on PostgreSQL: authorisation, the audit row and the work as ONE autocommitted statement,
run on the pooled asyncpg connection directly.

The hottest requests (a phone's score, a chart) spend more CPU in SQLAlchemy's per-execution machinery and the ORM
session than in PostgreSQL. Their statements are still SQLAlchemy's, built from the same expressions as everywhere
else (`api.authz.visible_patients` for visibility), compiled once per dialect and caller role, and executed with
the driver's own `fetchrow`: one round trip, no transaction to open and commit, and the audit row written in the
same statement, so it is durable when the answer is sent.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BindParameter, ColumnElement, Executable, Select, Table, bindparam, literal_column, select
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.selectable import CTE

from api.db import database_unavailable


def one_of(column: ColumnElement, values: Collection[str]) -> ColumnElement[bool]:
    """`column IN ('a', 'b')` with the values written into the statement (code's constants only, never a request's):
    an expanding IN parameter would be rendered per execution, which this path does not do."""
    return column.in_([literal_column(f"'{value}'") for value in values])


def typed_row(table: Table, prefix: str, source: CTE) -> tuple[list[str], Select]:
    """SELECT of one named, typed parameter per column of `table`, once per row of `source` (none if it is empty):
    `INSERT … FROM` it writes the row only when `source` has one."""
    columns = list(table.c)
    row = select(*[bindparam(f"{prefix}_{c.key}", type_=c.type).label(c.key) for c in columns]).select_from(source)
    return [c.key for c in columns], row


def row_parameters(prefix: str, table: Table, row: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters `typed_row` named, from a row's column values."""
    return {name: row[key] for name, key in _row_names(prefix, table)}


@functools.cache
def _row_names(prefix: str, table: Table) -> tuple[tuple[str, str], ...]:
    return tuple((f"{prefix}_{column.key}", column.key) for column in table.c)


@dataclass(frozen=True)
class DriverStatement:
    """A statement compiled once for the driver: SQL text, and its parameters in order with each one's conversion."""

    sql: str
    parameters: tuple[tuple[str, Callable[[Any], Any] | None], ...]
    constants: Mapping[str, Any]  # the values of parameters the statement itself holds (literals, LIMIT 1)

    @classmethod
    def compile(cls, statement: Executable, dialect: Dialect) -> DriverStatement:
        compiled = _inline_constants(dialect)(dialect, statement)
        if "POSTCOMPILE" in compiled.string:
            # An expanding IN is rendered per execution by SQLAlchemy, which this path bypasses: compare with
            # literal values instead (see api.charts.queries.CHART_PLAN_STATUSES).
            raise ValueError("a one-statement request cannot hold an expanding IN (…) parameter")
        order = tuple(compiled.positiontup or ())
        # The same conversions SQLAlchemy applies when it executes (UTC for instants, JSON text for JSON columns).
        parameters = tuple((name, compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect))
                           for name in order)
        constants = {name: compiled.binds[name].effective_value for name in order if not compiled.binds[name].required}
        return cls(compiled.string, parameters, constants)

    def arguments(self, parameters: Mapping[str, Any]) -> list[Any]:
        if self.constants:
            parameters = {**self.constants, **parameters}
        return [parameters[name] if convert is None else convert(parameters[name])
                for name, convert in self.parameters]

    async def fetchrow(self, engine: AsyncEngine, parameters: Mapping[str, Any]) -> Any:
        """Runs the statement on its own (autocommitted) and answers its one row, or None."""
        return await self._run(engine, "fetchrow", parameters)

    async def fetch(self, engine: AsyncEngine, parameters: Mapping[str, Any]) -> list[Any]:
        """Runs the statement on its own (autocommitted) and answers its rows."""
        return await self._run(engine, "fetch", parameters)

    async def execute(self, engine: AsyncEngine, parameters: Mapping[str, Any]) -> None:
        """Runs a statement that answers nothing (an INSERT) on its own, autocommitted."""
        await self._run(engine, "execute", parameters)

    async def _run(self, engine: AsyncEngine, method: str, parameters: Mapping[str, Any]) -> Any:
        arguments = self.arguments(parameters)
        # A checkout replaces a connection the server closed while it was idle (api.db), as for every other route.
        connection = await engine.raw_connection()
        try:
            return await getattr(connection.driver_connection, method)(self.sql, *arguments)
        except Exception as error:
            if database_unavailable(error):
                # The driver's error bypasses SQLAlchemy's disconnect handling: discard the connection here. The one
                # statement either committed or did not happen, so the client's retry is safe either way.
                connection.invalidate(error)
            raise
        finally:
            connection.close()  # back to the pool; with no transaction open, its reset needs no round trip


@functools.cache
def _inline_constants(dialect: Dialect) -> type[SQLCompiler]:
    """The dialect's compiler, writing the values a statement holds itself (a LIMIT 1, a status it compares with, a
    CASE's 0 and 1) into its text instead of sending them as parameters; the caller's values stay parameters.

    asyncpg prepares each statement once per connection, and PostgreSQL then either re-plans it on every execution
    for the values given (a custom plan) or plans it once for all (a generic plan), whichever it estimates cheaper.
    A generic plan cannot see parameters: it took every `LIMIT 1` for a tenth of the rows, estimated itself costlier
    than re-planning, and so the dashboard's statement was planned anew on every execution. Only code's values are
    written: every DriverStatement is compiled once per dialect (and role), never from a request's values."""
    def visit_bindparam(self: SQLCompiler, bindparam: BindParameter, **kw: Any) -> str:
        held = (not bindparam.required and bindparam.callable is None and not bindparam.expanding
                and isinstance(bindparam.value, int | str))
        return base.visit_bindparam(self, bindparam, **{**kw, "literal_binds": True} if held else kw)

    base = dialect.statement_compiler
    return type(f"InlineConstants{base.__name__}", (base,), {"visit_bindparam": visit_bindparam})


def one_statement(engine: AsyncEngine) -> bool:
    """Whether this database runs one-statement requests (PostgreSQL; SQLite takes the ordinary path)."""
    return engine.dialect.name == "postgresql"
