"""A list of values as one bound parameter, in raw SQL text made once per shape.

The worker's statements name a batch of ids or refs (the orphan take, the event bus's
read). Built through SQLAlchemy Core per call, their construction and
compilation cost more than the database's work on the small batches of ``simgate run``
(issue 15, py-spy); an ``IN ($1, ..., $n)`` list is also a new statement text for every
batch size, which asyncpg prepares anew (a round trip) each time it meets a size it has not
cached. As one parameter the text is one per statement: ``= ANY($n::type[])`` on PostgreSQL,
``IN (SELECT value FROM json_each(?n))`` on SQLite (as store/sqltext.py ``one_of`` does
through Core; both search the column's index once per value).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

__all__ = ["in_list", "listed"]


def in_list(dialect: str, column: str, mark: int, pg_type: str) -> str:
    """``column`` is one of the values bound as parameter ``mark`` (1-based), whose
    elements are of PostgreSQL type ``pg_type`` (give them with :func:`listed`)."""
    if dialect == "postgresql":
        return f"{column} = ANY(${mark}::{pg_type}[])"
    return f"{column} IN (SELECT value FROM json_each(?{mark}))"


def listed(dialect: str, values: Sequence[Any]) -> Any:
    """``values`` as the parameter of an :func:`in_list`: an array on PostgreSQL, a JSON
    array on SQLite."""
    if dialect == "postgresql":
        return list(values)
    return json.dumps(list(values))
