"""A batch of rows as one ``jsonb`` parameter on PostgreSQL (issue 15): the accept statements
of store/accept_writes.py (``insert_charged``, ``insert_claimed``).

Bound as one array per column (store/unnest.py), the 25 columns of the rows were that many
arrays, and asyncpg's encoding of them most of the client's work for the statement. One JSON
array of rows, each row a JSON array in the columns' order, is one ``orjson.dumps`` call; the
server reads it back with ``jsonb_array_elements`` and one ``->>`` and cast per column.
Measured (same run, PostgreSQL on this machine, client CPU per statement, the statement's
arguments built inside the timing): ``insert_charged`` of 16 one-row requests 606 -> 528 us,
of one 1 000-row request 9.8 -> 4.7 ms; ``insert_claimed`` of 16 one-row requests 690 ->
648 us. ``json_to_recordset`` of one object per row saved less (a dict per row, and its keys
sent and parsed).

Only rows that feed an INSERT go this way: the planner sizes ``unnest`` of a bound array by
its length but ``jsonb_array_elements`` at 100 rows whatever it holds, and a statement that
joins such an estimate to a table may change its plan (``insert_claimed``'s requests, which
its account CTEs join to ``accounts``, stay arrays for that reason), or rows LIMITed to
their own count, which the planner then takes as its guess (up to 100): the worker's submit
answers (store/submit_writes.py).

The types are those the arrays had: ``text`` for a VARCHAR(n) column, so a longer value is
refused by the INSERT's own assignment, as before. A JSON ``null`` is SQL NULL (``->>``);
``true``/``false`` cast to boolean; integers travel as JSON numbers, which ``jsonb`` keeps
as exact numerics (a BIGINT id loses nothing).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

__all__ = ["Col", "encode", "source"]

Col = tuple[str, str]  # (name, PostgreSQL type)


def source(cols: Sequence[Col], param: int) -> str:
    """A subquery (alias it) of the rows of the jsonb parameter ``$param``: one column per
    ``cols``, named and typed as they say, from each row's element at the same position."""
    picks = ", ".join(f"(r->>{i})::{typ} AS {name}" for i, (name, typ) in enumerate(cols))
    return f"(SELECT {picks} FROM jsonb_array_elements(${param}::jsonb) AS e(r))"


def encode(rows: Sequence[Sequence[Any]]) -> str:
    """The parameter for :func:`source`: ``rows`` (tuples in the columns' order) as one JSON
    array. A str: the SQLAlchemy asyncpg dialect's jsonb codec encodes text."""
    return orjson.dumps(rows).decode()
