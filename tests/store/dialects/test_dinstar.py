"""store/dialects/dinstar.py: the incoming_sms_id numbering and the USSD reply table."""

from __future__ import annotations

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.domain import ids
from simgate.store import Store
from simgate.store.dialects import dinstar as repo
from simgate.store.tables import inbound

T0 = 1_767_225_600_000


def _inbound(seq: int, at_ms: int = T0) -> dict[str, object]:
    return {
        "id": ids.compose(at_ms, seq),
        "account_id": 1,
        "line": "sim",
        "port": 0,
        "sender": "10086",
        "recipient": "",
        "text": "hi",
        "smsc": "",
        "imsi": "",
        "parts": 1,
        "received_ms": at_ms,
        "read": False,
    }


async def test_numbers_are_handed_out_once_in_id_order(store: Store) -> None:
    rows = [_inbound(seq) for seq in (1, 2, 3)]
    a, b, c = (ids.compose(T0, seq) for seq in (1, 2, 3))

    async def job(conn: AsyncConnection) -> tuple[dict[int, int], dict[int, int]]:
        await conn.execute(insert(inbound), rows)
        first = await repo.number_inbound(conn, [c, a])
        again = await repo.number_inbound(conn, [a, b, a])
        return first, again

    first, again = await store.db.write(job)
    assert first == {a: 1, c: 2}
    assert again == {a: 1, b: 3}  # a keeps its number; b is numbered after c


async def test_backfill_numbers_rows_stored_without_a_number(store: Store) -> None:
    rows = [_inbound(1), _inbound(2, T0 + 1_000)]

    async def job(conn: AsyncConnection) -> list[tuple[int, int]]:
        await conn.execute(insert(inbound), rows)
        await repo.backfill_inbound(conn)
        await repo.backfill_inbound(conn)  # nothing left: no second number
        got = await repo.incoming(conn, account_id=1, after_seq=0, read=None, ports=None, limit=10)
        return [(n.seq, n.record.id) for n in got]

    assert await store.db.write(job) == [(1, rows[0]["id"]), (2, rows[1]["id"])]


async def test_ussd_replies_upsert_per_port(store: Store) -> None:
    async def job(conn: AsyncConnection) -> dict[tuple[str, int], str]:
        await repo.put_ussd(conn, line="sim", port=0, text="one", now_ms=T0)
        await repo.put_ussd(conn, line="sim", port=0, text="two", now_ms=T0 + 1)
        await repo.put_ussd(conn, line="other", port=0, text="three", now_ms=T0)
        return await repo.get_ussd(conn, [("sim", 0), ("sim", 1)])

    assert await store.db.write(job) == {("sim", 0): "two"}
