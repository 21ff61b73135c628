"""Small SQL helpers the repositories share: chunked IN lists and raw multi-row INSERTs."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy.engine import Dialect


def chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    """``items`` in slices of ``size`` (bounded IN lists and parameter counts)."""
    return [items[i : i + size] for i in range(0, len(items), size)]


@functools.cache
def positional_insert(dialect: Dialect, table: str, columns: tuple[str, ...]) -> str:
    """``INSERT INTO table (columns) VALUES (...)`` with positional parameters in ``columns``
    order, for ``exec_driver_sql`` with a list of tuples: the driver's executemany, without
    SQLAlchemy building a dict per row (the accept paths insert thousands of rows)."""
    quote = dialect.identifier_preparer.quote
    if dialect.paramstyle == "numeric_dollar":  # asyncpg
        marks = [f"${i + 1}" for i in range(len(columns))]
    else:
        assert dialect.paramstyle == "qmark", dialect.paramstyle
        marks = ["?"] * len(columns)
    names = ", ".join(quote(name) for name in columns)
    return f"INSERT INTO {quote(table)} ({names}) VALUES ({', '.join(marks)})"
