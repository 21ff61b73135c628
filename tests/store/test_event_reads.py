"""The event bus's reads (store/event_reads.py): what the repositories give, in one statement."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.domain.accounts import AppKind
from simgate.runtime import Runtime
from simgate.services.container import Services
from simgate.store import Store
from simgate.store.event_reads import docs, messages_with_owners

from .util import account, queue

MISSING = 2601010000000009999  # an id no row has


def _count_selects(conn: AsyncConnection, into: list[str]) -> None:
    def seen(_conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
        if sql.lstrip().upper().startswith("SELECT"):
            into.append(sql)

    event.listen(conn.sync_connection, "before_cursor_execute", seen)


async def test_messages_come_with_their_accounts_and_apps_of_the_dialects_asked(
    services: Services, runtime: Runtime, store: Store
) -> None:
    acc = await account(services)
    other = await account(services, "other")
    app = await services.accounts.create_app(acc.id, kind=AppKind.SMS)
    (with_app,) = await queue(runtime, acc, app_id=app.id, dialect="openvox")
    (plain,) = await queue(runtime, other, dialect="openvox")
    (elsewhere,) = await queue(runtime, acc)  # dialect "test"
    ids = [with_app, plain, elsewhere, MISSING]
    statements: list[str] = []
    async with store.db.read() as conn:
        _count_selects(conn, statements)
        read = await messages_with_owners(conn, ids, {"openvox"})
        every = await messages_with_owners(conn, ids, None)
        none = await messages_with_owners(conn, ids, ())
    assert len(statements) == 2  # one each; nothing for no dialect at all
    async with store.db.read() as conn:
        records = {r.id: r for r in await store.messages.get(conn, ids)}
        accounts = await store.accounts.get_accounts(conn, [acc.id, other.id])
        apps = await store.accounts.get_apps_by_pk(conn, [app.id])
    assert read.records == {i: records[i] for i in (with_app, plain)}
    assert read.accounts == accounts
    assert read.apps == apps
    assert every.records == records  # the missing id is left out
    assert (every.accounts, every.apps) == (accounts, apps)
    assert (none.records, none.accounts, none.apps) == ({}, {}, {})


async def test_docs_of_keys_in_one_statement(store: Store) -> None:
    async def put(conn: AsyncConnection) -> None:
        await store.accounts.put_doc(conn, "a.push", {"url": "http://x", "n": 1})
        await store.accounts.put_doc(conn, "b.push", {})

    await store.db.write(put)
    statements: list[str] = []
    async with store.db.read() as conn:
        _count_selects(conn, statements)
        got = await docs(conn, ["b.push", "a.push", "c.push"])
        assert await docs(conn, []) == {}
        expected = {
            k: await store.accounts.get_doc(conn, k) for k in ("a.push", "b.push", "c.push")
        }
    assert got == expected == {"a.push": {"url": "http://x", "n": 1}, "b.push": {}, "c.push": None}
    assert len(statements) == 4  # docs once, then get_doc three times
