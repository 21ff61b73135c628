"""The rows of incoming SMS being reassembled (store/reassembly.py), on both backends."""

from __future__ import annotations

from typing import Any

from simgate.store import Store
from simgate.store.reassembly import GroupKey, StoredPart

KEY = GroupKey("smsc", 0, "4477", "12345", 7, 3)


async def write(store: Store, job: Any) -> Any:
    return await store.db.write(job)


async def test_a_group_is_made_once_and_keeps_the_first_copy_of_each_part(store: Store) -> None:
    repo = store.reassembly

    async def job(conn: Any) -> Any:
        a = await repo.open(conn, KEY, smsc="s", started_ms=10)
        b = await repo.open(conn, KEY, smsc="other", started_ms=99)  # there already
        await repo.add_part(conn, a.id, StoredPart(3, 0, b"c", 11))
        await repo.add_part(conn, a.id, StoredPart(1, 0, b"a", 12))
        await repo.add_part(conn, a.id, StoredPart(1, 0, b"A", 13))  # again: first stays
        return a, b, await repo.count(conn, a.id), await repo.parts(conn, [a.id])

    a, b, count, parts = await write(store, job)
    assert a == b
    assert (a.key, a.smsc, a.started_ms, a.done_ms) == (KEY, "s", 10, None)
    assert count == 2
    assert parts == {a.id: [StoredPart(1, 0, b"a", 12), StoredPart(3, 0, b"c", 11)]}
    async with store.db.read() as conn:
        assert await repo.group(conn, KEY) == a
        assert await repo.part(conn, a.id, 3) == StoredPart(3, 0, b"c", 11)
        assert await repo.part(conn, a.id, 2) is None
        assert await repo.group(conn, KEY._replace(ref=8)) is None


async def test_due_pending_finish_purge_and_drop(store: Store) -> None:
    repo = store.reassembly
    keys = [KEY._replace(ref=r) for r in range(4)]

    async def arrange(conn: Any) -> list[int]:
        ids = []
        for i, key in enumerate(keys):
            g = await repo.open(conn, key, smsc="", started_ms=100 - i)  # newest key first
            await repo.add_part(conn, g.id, StoredPart(1, 0, b"x", 1))
            ids.append(g.id)
        await repo.open(conn, KEY._replace(line="other"), smsc="", started_ms=0)
        return ids

    ids = await write(store, arrange)
    async with store.db.read() as conn:
        due = await repo.due(conn, "smsc", started_before_ms=99, lock=False)
        assert [g.id for g in due] == [ids[3], ids[2]]  # oldest first, this line only
        assert await repo.pending(conn, "smsc") == 4

    async def finish(conn: Any) -> list[int]:
        locked = await repo.due(conn, "smsc", started_before_ms=101, limit=2)
        await repo.finish(conn, [g.id for g in locked], done_ms=500)
        await repo.drop(conn, [ids[0]])
        return [g.id for g in locked]

    assert await write(store, finish) == [ids[3], ids[2]]
    async with store.db.read() as conn:
        assert await repo.pending(conn, "smsc") == 1  # ids[1]; ids[0] dropped
        assert await repo.parts(conn, [ids[0]]) == {ids[0]: []}
        assert not await repo.stale(conn, "smsc", done_before_ms=500)
        assert await repo.stale(conn, "smsc", done_before_ms=501)
    assert await write(store, lambda c: repo.purge(c, "smsc", done_before_ms=500)) == 0
    assert await write(store, lambda c: repo.purge(c, "smsc", done_before_ms=501)) == 2
    async with store.db.read() as conn:
        assert await repo.parts(conn, [ids[2], ids[3]]) == {ids[2]: [], ids[3]: []}
        assert [
            g.id for g in await repo.due(conn, "smsc", started_before_ms=10**6, lock=False)
        ] == [ids[1]]
