"""store/listed.py on both backends: a list of values bound as ONE parameter selects exactly
the rows whose column is among them, whatever the list's length (one statement text)."""

from __future__ import annotations

from simgate.runtime import Runtime
from simgate.services.container import Services
from simgate.store import Store
from simgate.store.listed import in_list, listed
from simgate.store.tables import messages

from ..store.util import account, queue


async def test_one_parameter_selects_the_listed_rows(
    services: Services, runtime: Runtime, store: Store
) -> None:
    ids = await queue(runtime, await account(services), 5)
    async with store.db.read() as conn:
        dialect = conn.dialect.name
        sql = (
            f"SELECT id FROM {messages.name} WHERE {in_list(dialect, 'id', 1, 'bigint')} "
            "ORDER BY id"
        )
        picked = [ids[0], ids[3], ids[4] + 1_000_000]  # the last one does not exist
        rows = await conn.exec_driver_sql(sql, (listed(dialect, picked),))
        assert [int(r[0]) for r in rows] == [ids[0], ids[3]]
        # Another length, the same text: no new statement per batch size.
        rows = await conn.exec_driver_sql(sql, (listed(dialect, ids),))
        assert [int(r[0]) for r in rows] == sorted(ids)
        rows = await conn.exec_driver_sql(sql, (listed(dialect, []),))
        assert list(rows) == []


def test_the_text_names_the_parameter_by_its_position() -> None:
    assert in_list("postgresql", "ref", 3, "text") == "ref = ANY($3::text[])"
    assert in_list("sqlite", "ref", 3, "text") == "ref IN (SELECT value FROM json_each(?3))"
    assert listed("postgresql", (1, 2)) == [1, 2]
    assert listed("sqlite", (1, 2)) == "[1, 2]"
