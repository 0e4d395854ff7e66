"""SQL that both engines speak, written once: the database's clock, and inserts that give way on a conflict.

`db_now()` is seconds since the epoch (UTC) as the database reads it: on PostgreSQL the transaction's
`now()`, on SQLite `julianday('now')` (milliseconds). A lease written by one replica and read by another is
compared on that one clock, so a process whose clock runs ahead or behind takes nothing over early or late.

`insert(connection, table)` is the dialect's own INSERT, with `on_conflict_do_nothing` and
`on_conflict_do_update`: a duplicate is an answer, never a server-side ERROR in PostgreSQL's log.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement


class db_now(FunctionElement[float]):
    """Seconds since the epoch on the database's clock (double precision)."""

    type = sa.Double()
    inherit_cache = True


@compiles(db_now, "postgresql")
def _postgresql_now(_element: db_now, _compiler: Any, **_kw: Any) -> str:
    return "CAST(EXTRACT(EPOCH FROM now()) AS DOUBLE PRECISION)"


@compiles(db_now, "sqlite")
def _sqlite_now(_element: db_now, _compiler: Any, **_kw: Any) -> str:
    return "((julianday('now') - 2440587.5) * 86400.0)"  # 2440587.5: the epoch as a Julian day


_INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def insert(connection: Connection, table: sa.Table) -> Any:
    """The dialect's INSERT for `table`: it has `on_conflict_do_nothing()` and `on_conflict_do_update()`."""
    return _INSERTS[connection.dialect.name](table)
