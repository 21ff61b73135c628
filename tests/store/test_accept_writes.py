"""Every value of an accepted message comes back as it was sent, whichever way the accept
statement (store/accept_writes.py) bound it: SQLite's executemany of tuples, PostgreSQL's one
jsonb parameter of rows (store/jsonb_rows.py, ``insert_charged`` and ``insert_claimed``).
Text a JSON encoder must escape, numbers past 2**53, NULLs, false and non-BMP characters are
where a JSON path would go wrong."""

from __future__ import annotations

import asyncio
from dataclasses import asdict

import pytest
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from simgate.codecs.segments import Encoding
from simgate.domain.records import NewMessage
from simgate.errors import StoreError
from simgate.services.accept_writer import AcceptJob, AcceptWriter
from simgate.services.container import Services
from simgate.services.itnio import NewAnswered, ReplayClaim
from simgate.store import Store
from simgate.store.dialects.itnio import ReplayRepo
from simgate.store.tables import itnio_replays, messages
from tests.support.new_messages import PRICE, new_message

# Text a JSON encoder must escape or that looks like JSON or SQL, and characters outside
# the Basic Multilingual Plane (a surrogate pair in JSON's \u escapes).
ODD_TEXTS = (
    'quote " and backslash \\ and slash /',
    "line\nbreak\ttab\r\x01\x1f",
    '{"not": ["a", "row"]}',
    "'; DROP TABLE messages; --",
    "emoji \U0001f600 and \u2028\u2029 and \ufeff",
    "中文短信",
)


def _messages(account_id: int, first_id: int) -> list[NewMessage]:
    """One message per odd text, each with other fields at their edges."""
    return [
        new_message(
            first_id + i,
            account_id,
            app_id=None if i % 2 else 7,
            client_ref=None if i % 2 else f'ref "{i}" \\',
            task_id=2**62 + i if i % 2 else None,  # past 2**53: a double would round it
            sender="" if i % 2 else "+86 138",
            text=text,
            encoding=Encoding.UCS2 if i % 2 else Encoding.GSM7,
            parts=i + 1,
            port_hint=None if i % 2 else "0,3",
            report_requested=bool(i % 2),
            validity_until_ms=2**53 + 1 + i,
        )
        for i, text in enumerate(ODD_TEXTS)
    ]


async def _stored(store: Store, rows: list[NewMessage]) -> list[dict[str, object]]:
    """The stored columns named as NewMessage's fields, of ``rows``' ids, in id order."""
    fields = list(asdict(rows[0]))
    async with store.db.read() as conn:
        got = await conn.execute(
            select(*(messages.c[f] for f in fields))
            .where(messages.c.id.in_([m.id for m in rows]))
            .order_by(messages.c.id)
        )
        return [dict(zip(fields, r, strict=True)) for r in got]


async def test_plain_accepts_keep_every_value(services: Services, store: Store) -> None:
    """Through ``insert_charged`` on PostgreSQL (several requests in one batch)."""
    a = await services.accounts.create_account(name="a", balance="10")
    writer = AcceptWriter(store=store)
    rows = _messages(a.id, 2**61)
    jobs = [AcceptJob(a.id, PRICE * m.parts, [m], 1_000 + i) for i, m in enumerate(rows)]
    assert await asyncio.gather(*(writer.accept(j) for j in jobs)) == [True] * len(jobs)
    assert await _stored(store, rows) == [asdict(m) for m in rows]


async def test_accepts_with_replay_records_keep_every_value(
    services: Services, store: Store
) -> None:
    """Through ``insert_claimed`` on PostgreSQL: the rows and the records with them."""
    a = await services.accounts.create_account(name="a", balance="10")
    writer = AcceptWriter(store=store)
    rows = _messages(a.id, 2**61)
    answers = [f'{{"status":"0","reason":"{t[:8]}"}}' for t in ODD_TEXTS]
    jobs = [
        AcceptJob(
            a.id,
            PRICE * m.parts,
            [m],
            1_000,
            also=ReplayClaim(
                ReplayRepo(), NewAnswered(f"fp-{i}", 2**53 + 7, 1_000, answer), False, lambda: None
            ),
        )
        for i, (m, answer) in enumerate(zip(rows, answers, strict=True))
    ]
    assert await asyncio.gather(*(writer.accept(j) for j in jobs)) == [True] * len(jobs)
    assert await _stored(store, rows) == [asdict(m) for m in rows]
    async with store.db.read() as conn:
        got = await conn.execute(
            select(
                itnio_replays.c.fingerprint, itnio_replays.c.response, itnio_replays.c.expires_ms
            ).order_by(itnio_replays.c.fingerprint)
        )
        assert [tuple(r) for r in got] == [
            (f"fp-{i}", answer, 2**53 + 7) for i, answer in enumerate(answers)
        ]


async def test_a_value_too_long_for_its_column_is_refused_not_cut(
    services: Services, store: Store
) -> None:
    """PostgreSQL: a ``client_ref`` longer than its VARCHAR(64) fails the accept and
    writes nothing (the INSERT's assignment refuses it; a cast to VARCHAR(64) in the
    statement would cut it short and store it). SQLite does not enforce the length."""
    if store.db.is_sqlite:
        pytest.skip("SQLite keeps a VARCHAR's text whatever its length")
    a = await services.accounts.create_account(name="a", balance="10")
    writer = AcceptWriter(store=store)
    row = new_message(1, a.id, client_ref="x" * 65)
    with pytest.raises((StoreError, DBAPIError)):
        await writer.accept(AcceptJob(a.id, PRICE, [row], 1_000))
    assert await _stored(store, [row]) == []
    assert (await services.accounts.get_account(a.id)).balance_micros == 10_000_000
