"""The itniotech dialect's service: credentials, queries and replay records (services/itnio.py)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.domain import ids
from simgate.domain.accounts import App, AppKind
from simgate.domain.messages import State
from simgate.domain.records import NewMessage, SentRow
from simgate.lines.base import IncomingSms
from simgate.runtime import Runtime
from simgate.services.accept_writer import Repeated
from simgate.services.container import Services
from simgate.services.itnio import PENDING, Claim, NewAnswered
from simgate.store.tables import messages
from tests.store.util import account, queue
from tests.support import driver_trace
from tests.support.new_messages import new_message

T0 = 1_767_225_600_000  # the FakeClock's start
SENT_RCD = (State.SENT, State.DELIVERED, State.FAILED, State.EXPIRED, State.REJECTED)


async def _set(runtime: Runtime, mid: int, **values: object) -> None:
    async def job(conn: AsyncConnection) -> None:
        await conn.execute(update(messages).where(messages.c.id == mid).values(**values))

    await runtime.store.db.write(job)


@contextlib.asynccontextmanager
async def _replay_statements(runtime: Runtime) -> AsyncIterator[list[str]]:
    """The statements on ``itnio_replays`` as the database runs them: on SQLite each
    execution, from sqlite3's own trace (a batch INSERT runs straight on the driver,
    store/driver_sql.py, and an executemany shows once per row there); on PostgreSQL each
    statement SQLAlchemy sends."""
    db = runtime.store.db
    seen: list[str] = []
    if db.is_sqlite:
        async with driver_trace.sqlite_ran(db) as ran:
            yield seen
            seen.extend(s for s in ran if "ITNIO_REPLAYS" in s.upper())
        return
    with driver_trace.through_sqlalchemy(db) as sent:
        yield seen
        seen.extend(s for s in sent if "ITNIO_REPLAYS" in s.upper())


def _inserts(statements: list[str]) -> list[str]:
    return [s for s in statements if s.lstrip().upper().startswith("INSERT INTO ITNIO_REPLAYS")]


async def _each_state(runtime: Runtime, services: Services) -> tuple[App, list[int]]:
    """An SMS app's seven messages: queued, then one in each later state, timed T0 + 1..5 in
    that state's own column, and a DELIVERED one without its delivered_ms (sent at T0 + 6)."""
    acc = await account(services)
    app = await services.accounts.create_app(acc.id, kind=AppKind.SMS)
    _queued, sent, delivered, failed, expired, rejected, bare = mids = await queue(
        runtime, acc, 7, app_id=app.id
    )
    await _set(runtime, sent, state=int(State.SENT), sent_ms=T0 + 1)
    await _set(runtime, delivered, state=int(State.DELIVERED), sent_ms=T0, delivered_ms=T0 + 2)
    await _set(runtime, failed, state=int(State.FAILED), sent_ms=T0, failed_ms=T0 + 3)
    await _set(runtime, expired, state=int(State.EXPIRED), expired_ms=T0 + 4)
    await _set(runtime, rejected, state=int(State.REJECTED), rejected_ms=T0 + 5)
    # A final state whose own time is missing shows when the message was sent.
    await _set(runtime, bare, state=int(State.DELIVERED), sent_ms=T0 + 6, delivered_ms=None)
    return app, mids


async def test_credentials_read_key_and_account(services: Services) -> None:
    acc = await account(services)
    key = await services.accounts.create_key(acc.id)
    found = await services.itnio.credentials(key.key)
    assert found is not None
    assert (found.key.key, found.account.id) == (key.key, acc.id)
    assert await services.itnio.credentials("no-such-key") is None


async def test_report_rows_are_the_apps_own(runtime: Runtime, services: Services) -> None:
    acc = await account(services)
    mine = await services.accounts.create_app(acc.id, kind=AppKind.SMS)
    other = await services.accounts.create_app(acc.id, kind=AppKind.SMS)
    a = await queue(runtime, acc, 2, app_id=mine.id)
    b = await queue(runtime, acc, 1, app_id=other.id)
    got = await services.itnio.report_rows(app_id=mine.id, ids=[*a, *b, 1])
    assert sorted(r[0] for r in got) == sorted(a)
    assert await services.itnio.report_rows(app_id=mine.id, ids=[]) == []


async def test_report_rows_time_each_state_from_its_own_column(
    runtime: Runtime, services: Services
) -> None:
    app, (queued, sent, delivered, failed, expired, rejected, bare) = await _each_state(
        runtime, services
    )
    wanted = [queued, sent, delivered, failed, expired, rejected, bare]
    rows = {r[0]: r for r in await services.itnio.report_rows(app_id=app.id, ids=wanted)}
    assert {mid: (r[2], bool(r[3]), r[4]) for mid, r in rows.items()} == {
        queued: (int(State.QUEUED), True, None),
        sent: (int(State.SENT), True, T0 + 1),
        delivered: (int(State.DELIVERED), True, T0 + 2),
        failed: (int(State.FAILED), True, T0 + 3),
        expired: (int(State.EXPIRED), True, T0 + 4),
        rejected: (int(State.REJECTED), True, T0 + 5),
        bare: (int(State.DELIVERED), True, T0 + 6),
    }
    # Recipient and money as stored, for the price detail.
    assert all(isinstance(r[1], str) and r[1] for r in rows.values())
    assert all(r[5:] == (r[7] * r[6], r[6], r[7], r[8]) for r in rows.values())


async def test_sent_page_times_each_state_from_its_own_column(
    runtime: Runtime, services: Services
) -> None:
    app, (queued, sent, delivered, failed, expired, rejected, bare) = await _each_state(
        runtime, services
    )
    window = {"id_from": ids.lower_bound(T0 - 60_000), "id_to": ids.upper_bound(T0 + 60_000)}
    rows = await services.itnio.sent_page(
        app_id=app.id, states=SENT_RCD, offset=0, limit=100, **window
    )
    assert queued not in {r.id for r in rows}
    assert rows == [
        SentRow(sent, "8613800138000", State.SENT, T0 + 1),
        SentRow(delivered, "8613800138000", State.DELIVERED, T0 + 2),
        SentRow(failed, "8613800138000", State.FAILED, T0 + 3),
        SentRow(expired, "8613800138000", State.EXPIRED, T0 + 4),
        SentRow(rejected, "8613800138000", State.REJECTED, T0 + 5),
        SentRow(bare, "8613800138000", State.DELIVERED, T0 + 6),
    ]
    page = await services.itnio.sent_page(
        app_id=app.id, states=SENT_RCD, offset=4, limit=1, **window
    )
    assert [r.id for r in page] == [rejected]


async def test_mo_page_counts_and_pages(services: Services) -> None:
    acc = await services.accounts.create_account(name="inbound-owner", balance="1")
    incoming = [
        IncomingSms(port=0, sender=f"9198{i:08d}", recipient="86138", text=f"m{i}", received_ms=T0)
        for i in range(5)
    ]
    await services.inbound.receive("sim", incoming, services.lines["sim"].ports())
    window = {"id_from": ids.lower_bound(T0 - 60_000), "id_to": ids.upper_bound(T0 + 60_000)}
    page = await services.itnio.mo_page(account_id=acc.id, offset=2, limit=2, **window)
    assert page.total == 5
    assert [r.text for r in page.records] == ["m2", "m3"]


async def test_replay_claim_complete_release(services: Services) -> None:
    sv = services.itnio
    first = await sv.claim_replay(fingerprint="f1", expires_ms=T0 + 10, now_ms=T0, purge=False)
    assert (first.owned, first.token) == (True, T0)
    again = await sv.claim_replay(fingerprint="f1", expires_ms=T0 + 10, now_ms=T0, purge=False)
    assert (again.owned, again.response) == (False, PENDING)
    await sv.release_replay("f1", first.token)  # failed: a retry runs afresh
    assert await sv.replay_response("f1") is None
    first = await sv.claim_replay(fingerprint="f1", expires_ms=T0 + 10, now_ms=T0, purge=False)
    assert await sv.complete_replay(fingerprint="f1", response='{"status":"0"}', token=T0)
    assert await sv.replay_response("f1") == '{"status":"0"}'
    await sv.release_replay("f1", first.token)  # an answered claim stays answered
    assert await sv.replay_response("f1") == '{"status":"0"}'
    # An expired record is purged by the next claim that asks for it.
    await sv.claim_replay(fingerprint="f2", expires_ms=T0 + 10, now_ms=T0, purge=False)
    await sv.claim_replay(fingerprint="f3", expires_ms=T0 + 99, now_ms=T0 + 20, purge=True)
    assert await sv.replay_response("f2") is None
    assert await sv.replay_response("f3") == PENDING


async def test_concurrent_claims_share_one_insert(runtime: Runtime, services: Services) -> None:
    """Claims queued together are one INSERT (group commit, issue 15); a fingerprint twice in
    the batch is owned once, and a claim of a recorded fingerprint finds its record."""
    sv = services.itnio
    await sv.claim_replay(fingerprint="old", expires_ms=T0 + 10, now_ms=T0, purge=False)
    assert await sv.complete_replay(fingerprint="old", response="answer", token=T0)
    async with _replay_statements(runtime) as statements:
        claims = await asyncio.gather(
            *(
                sv.claim_replay(fingerprint=fp, expires_ms=T0 + 10, now_ms=T0 + n, purge=False)
                for n, fp in enumerate(["a", "b", "a", "old", "c"])
            )
        )
    assert [(c.owned, c.token, c.response) for c in claims] == [
        (True, T0, None),
        (True, T0 + 1, None),
        (False, 0, PENDING),
        (False, 0, "answer"),
        (True, T0 + 4, None),
    ]
    # One for the batch (on SQLite one execution per new fingerprint: a, b, c); the two
    # claims it did not own each look again on their own.
    inserts = _inserts(statements)
    assert len(inserts) == (5 if runtime.store.db.is_sqlite else 3)
    # SQLite buffers RETURNING rows in an ephemeral table: 3-4x the cost of the insert
    # (store/dialects/itnio.py); the batch finds what it took without it.
    assert not runtime.store.db.is_sqlite or not any("RETURNING" in s.upper() for s in inserts)


async def test_replay_claims_of_one_accept_batch_are_one_insert_with_their_answers(
    runtime: Runtime, services: Services
) -> None:
    """Sends claim their fingerprints in their accept transaction (group commit): one
    INSERT for the batch, answers included. A fingerprint recorded already, or twice in
    the batch, is a repeat: nothing charged or queued, and it hears the recorded answer."""
    sv = services.itnio
    await sv.claim_replay(fingerprint="old", expires_ms=T0 + 10, now_ms=T0, purge=False)
    assert await sv.complete_replay(fingerprint="old", response="answer old", token=T0)
    account_id = (await services.accounts.create_account(name="r", balance="1")).id
    ran: list[str] = []

    def send(fp: str, first_id: int) -> Any:
        claim = NewAnswered(fp, T0 + 10, T0, f"answer {fp}#{first_id}")
        job = sv.replay_claim_job(claim, purge=False, on_run=lambda: ran.append(fp))
        return services.messaging.accept(
            account_id=account_id,
            total_micros=1_000,
            rows=[_row(account_id, first_id)],
            now_ms=T0,
            also=job,
        )

    async with _replay_statements(runtime) as statements:
        sends = [send("a", 1000), send("old", 1001), send("b", 1002), send("a", 1003)]
        results = await asyncio.gather(*sends, return_exceptions=True)
    assert [_answer_of(r) for r in results] == [
        True,
        "answer old",
        True,
        "answer a#1000",
    ]
    # One INSERT (on SQLite one execution per fingerprint of the batch: a, old, b).
    assert len(_inserts(statements)) == (3 if runtime.store.db.is_sqlite else 1)
    assert ran == ["a", "b"]
    assert [await sv.replay_response(fp) for fp in ("a", "b", "old")] == [
        "answer a#1000",
        "answer b#1002",
        "answer old",
    ]
    async with runtime.store.db.read() as conn:
        stored = await runtime.store.messages.get(conn, [1000, 1001, 1002, 1003])
    assert sorted(m.id for m in stored) == [1000, 1002]
    assert (await services.accounts.get_account(account_id)).balance_micros == 1_000_000 - 2_000


async def test_a_send_takes_over_a_claim_left_unanswered_past_its_time(
    services: Services,
) -> None:
    """Issue 14 item 14: a claim its owner never answered (it died) is taken over by the
    send's own claim once ``takeover_after_ms`` has passed, not before."""
    sv = services.itnio
    await sv.claim_replay(fingerprint="f", expires_ms=T0 + 10, now_ms=T0, purge=False)
    young = await sv.record_answer(NewAnswered("f", T0 + 10, T0 + 5, "early", 10))
    assert (young.owned, young.response) == (False, PENDING)
    late = await sv.record_answer(NewAnswered("f", T0 + 10, T0 + 11, "late", 10))
    assert (late.owned, late.token) == (True, T0 + 11)
    assert await sv.replay_response("f") == "late"


async def test_a_refused_send_s_claim_is_taken_back(services: Services) -> None:
    """A send the balance does not cover is refused: its claim goes with it, so the
    fingerprint is free for the refusal's own record (api/dialects/itnio/replay.py)."""
    sv = services.itnio
    account_id = (await services.accounts.create_account(name="poor", balance="0")).id
    job = sv.replay_claim_job(
        NewAnswered("f", T0 + 10, T0, "sent"), purge=False, on_run=lambda: None
    )
    queued = await services.messaging.accept(
        account_id=account_id,
        total_micros=1_000,
        rows=[_row(account_id, 2000)],
        now_ms=T0,
        also=job,
    )
    assert queued is False
    assert await sv.replay_response("f") is None


async def test_a_batch_of_new_answers_is_one_statement(
    runtime: Runtime, services: Services
) -> None:
    """Records written with their answers, all new: one INSERT for the batch and no look-up
    before it (issue 15: on SQLite the look-up cost ~4 us per record)."""
    sv = services.itnio
    async with _replay_statements(runtime) as statements:
        claims = await asyncio.gather(
            *(sv.record_answer(NewAnswered(fp, T0 + 10, T0, f"answer {fp}")) for fp in "abc")
        )
    assert [(c.owned, c.token) for c in claims] == [(True, T0)] * 3
    # Nothing but the INSERT: one statement (on SQLite one execution per record).
    assert statements == _inserts(statements)
    assert len(statements) == (3 if runtime.store.db.is_sqlite else 1)
    assert [await sv.replay_response(fp) for fp in "abc"] == ["answer a", "answer b", "answer c"]


async def test_a_batch_meeting_a_record_equal_to_its_own_is_written_one_by_one(
    services: Services,
) -> None:
    """A record stored before with the same answer and time as a new one of a batch (a copy
    of the same request refused alike in the same millisecond) is not taken for the batch's
    own: the copy hears the record, the other request of the batch owns its fingerprint."""
    sv = services.itnio
    first = await sv.record_answer(NewAnswered("x", T0 + 10, T0, "same"))
    assert first.owned
    copy, other = await asyncio.gather(
        sv.record_answer(NewAnswered("x", T0 + 10, T0, "same")),
        sv.record_answer(NewAnswered("y", T0 + 10, T0, "other")),
    )
    assert (copy.owned, copy.response) == (False, "same")
    assert (other.owned, other.token) == (True, T0)
    assert await sv.replay_response("y") == "other"


def _answer_of(result: object) -> object:
    """An accept's result, or the recorded answer a repeat heard."""
    if isinstance(result, Repeated) and isinstance(result.found, Claim):
        return result.found.response
    return result


def _row(account_id: int, mid: int) -> NewMessage:
    return new_message(
        mid, account_id, dialect="itnio", price_micros=0, validity_until_ms=T0 + 3_600_000
    )
