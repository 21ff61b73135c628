"""Reports that overtook their submit, handed to ``record_submits`` with it (issue 15).

The dispatcher holds such reports in memory (dispatch/report_hold.py) and gives them to the
unit of work that records their submit: the rows and the changes must be what the orphan
path (report kept as an orphan, then adopted by the submit's record) leaves, in one
transaction and without orphan rows. Runs on SQLite and PostgreSQL (``backend``).
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from simgate.domain.events import MessageChange
from simgate.domain.messages import Event, State
from simgate.domain.queue import PartReport, PartStatus, ReportHint, ReportTally, SubmitRecord
from simgate.runtime import Runtime
from simgate.services.container import Services
from simgate.services.early_reports import EarlyReports
from simgate.store import Store
from simgate.store.tables import message_parts
from tests.support.changes import Batches

from ..store.util import OWNER, PRICE, get, orphans
from .support import leased


def ok(mid: int, parts: int = 1) -> SubmitRecord:
    refs = tuple(f"{mid}.{i}" for i in range(parts))
    return SubmitRecord(mid, Event.SUBMIT_OK, port=1, part_refs=refs, first_ref=9, line="sim")


def early(mid: int, lease_seq: int, at: int, *codes: int | None) -> list[PartReport]:
    """The line's reports for the parts of ``mid`` whose code is not None, with its hint."""
    return [
        PartReport(
            line="sim",
            line_ref=f"{mid}.{i}",
            status_code=code,
            done_ms=at,
            hint=ReportHint(mid, lease_seq, i + 1, len(codes), 1),
        )
        for i, code in enumerate(codes)
        if code is not None
    ]


def change(mid: int, state: State, event: Event, at: int) -> MessageChange:
    return MessageChange(mid, state, event, at)


async def part_rows(store: Store, mid: int) -> list[tuple[int, int | None, int | None]]:
    async with store.db.read() as conn:
        rows = await conn.execute(
            select(message_parts.c.seq, message_parts.c.status_code, message_parts.c.reported_ms)
            .where(message_parts.c.message_id == mid)
            .order_by(message_parts.c.seq)
        )
        return [(seq, code, at) for seq, code, at in rows]


async def test_reports_with_the_record_settle_as_adopted_orphans_would(
    services: Services, store: Store, runtime: Runtime, batches: Batches
) -> None:
    a, b, c, d = await leased(runtime, 4, parts=2)
    now = services.clock.now_ms()
    seq = 1  # the first lease of each
    held = [
        *early(a, seq, now, 0, 0),  # every part delivered
        *early(b, seq, now, 69, None),  # one part failed, the other still to come
        *early(d, seq, now, 0, 69),  # every part reported, one failed
    ]
    await services.messaging.record_submits(
        [ok(x, 2) for x in (a, b, c, d)], owner=OWNER, now_ms=now + 5, reports=held
    )
    rows = {x: await get(store, x) for x in (a, b, c, d)}
    assert [rows[x].state for x in (a, b, c, d)] == [
        State.DELIVERED,
        State.SENT,
        State.SENT,
        State.FAILED,
    ]
    assert (rows[a].parts_reported, rows[a].status_code) == (2, 0)
    assert (rows[a].sent_ms, rows[a].delivered_ms) == (now + 5, now + 5)
    assert (rows[d].parts_reported, rows[d].status_code, rows[d].final_ms) == (2, 69, now + 5)
    assert rows[b].parts_reported == 1
    assert rows[a].charge_micros == 2 * PRICE  # it left simgate: never refunded
    assert await part_rows(store, a) == [(0, 0, now), (1, 0, now)]
    assert await part_rows(store, b) == [(0, 69, now), (1, None, None)]
    assert await orphans(store) == 0
    # One unit of work, in causal order: every submit, then what the reports settled.
    (batch,) = batches
    assert batch[:4] == [change(x, State.SENT, Event.SUBMIT_OK, now + 5) for x in (a, b, c, d)]
    assert set(batch[4:]) == {
        change(a, State.DELIVERED, Event.REPORT_DELIVERED, now + 5),
        change(d, State.FAILED, Event.REPORT_FAILED, now + 5),
    }
    assert len(batch) == 6
    # b's second part reported later, the ordinary way, ends it.
    later = early(b, seq, now + 9, None, 0)
    assert await services.messaging.record_reports(later, now_ms=now + 9) == 1
    row = await get(store, b)
    assert (row.state, row.parts_reported, row.status_code) == (State.FAILED, 2, 69)


async def test_reports_for_a_lost_lease_are_kept_as_orphans(
    services: Services, store: Store, runtime: Runtime, batches: Batches
) -> None:
    """The worker lost the lease (another holds it now): its answer changes nothing, and the
    reports it held are not lost: they wait as orphans (with their hint), as if they had
    gone the ordinary way."""
    (mid,) = await leased(runtime)
    now = services.clock.now_ms()
    await services.messaging.record_submits(
        [ok(mid)], owner="someone-else", now_ms=now + 5, reports=early(mid, 1, now, 0)
    )
    assert (await get(store, mid)).state is State.SUBMITTING
    assert await orphans(store) == 1
    assert batches == []
    await services.messaging.record_submits([ok(mid)], owner=OWNER, now_ms=now + 6)
    row = await get(store, mid)
    assert (row.state, row.parts_reported) == (State.DELIVERED, 1)
    assert await orphans(store) == 0


async def test_a_report_naming_another_message_goes_the_ordinary_way(
    services: Services, store: Store, runtime: Runtime
) -> None:
    """A ref the record adds, reported with the hint of another message (a reused TP-MR),
    does not settle this one from memory: matched the ordinary way it still marks the part
    the ref names, as a report coming after the record would."""
    a, b = await leased(runtime, 2)
    now = services.clock.now_ms()
    (wrong,) = early(b, 1, now, 0)
    reused = PartReport(
        line="sim", line_ref=f"{a}.0", status_code=0, done_ms=wrong.done_ms, hint=wrong.hint
    )
    await services.messaging.record_submits(
        [ok(a), ok(b)], owner=OWNER, now_ms=now + 5, reports=[reused]
    )
    assert (await get(store, b)).state is State.SENT
    assert (await get(store, a)).state is State.DELIVERED
    assert await orphans(store) == 0


async def test_one_part_messages_settle_from_the_reports_held(
    services: Services, store: Store, runtime: Runtime, batches: Batches
) -> None:
    """The one-part path of the sort (most messages, no list of reports per message): a
    delivered and a failed report settle their messages in the record's write; a message
    without a report stays SENT; the changes come in the same causal order."""
    a, b, c = await leased(runtime, 3)
    now = services.clock.now_ms()
    held = [*early(a, 1, now, 0), *early(c, 1, now, 34)]
    await services.messaging.record_submits(
        [ok(x) for x in (a, b, c)], owner=OWNER, now_ms=now + 5, reports=held
    )
    rows = {x: await get(store, x) for x in (a, b, c)}
    assert [rows[x].state for x in (a, b, c)] == [State.DELIVERED, State.SENT, State.FAILED]
    assert (rows[a].parts_reported, rows[a].status_code) == (1, 0)
    assert (rows[c].parts_reported, rows[c].status_code, rows[c].final_ms) == (1, 34, now + 5)
    assert rows[b].parts_reported == 0
    assert await part_rows(store, a) == [(0, 0, now)]
    assert await part_rows(store, c) == [(0, 34, now)]
    assert await orphans(store) == 0
    (batch,) = batches
    assert batch == [
        *(change(x, State.SENT, Event.SUBMIT_OK, now + 5) for x in (a, b, c)),
        change(a, State.DELIVERED, Event.REPORT_DELIVERED, now + 5),
        change(c, State.FAILED, Event.REPORT_FAILED, now + 5),
    ]


def _sorted_by_the_rule(
    applied: list[SubmitRecord], reports: list[PartReport]
) -> tuple[dict[tuple[int, int], PartStatus], dict[tuple[Event, State], list[int]], list[str]]:
    """The sort's rule written plainly: the newest report per (line, ref); a message all of
    whose parts have one naming it (its hint) is settled, delivered when every code is 0;
    the reports it did not take go the ordinary way, in order."""
    latest = {(r.line, r.line_ref): r for r in reports}
    statuses: dict[tuple[int, int], PartStatus] = {}
    settled: dict[tuple[Event, State], list[int]] = {}
    taken: set[tuple[str, str]] = set()
    for r in applied:
        keys = [(r.line or "", ref) for ref in r.part_refs]
        found = [latest.get(k) for k in keys]
        if not keys or any(
            f is None or f.hint is None or f.hint.message_id != r.message_id for f in found
        ):
            continue
        reps = [f for f in found if f is not None]
        for seq, rep in enumerate(reps):
            statuses[(r.message_id, seq)] = PartStatus(
                r.message_id, seq, rep.status_code, rep.done_ms
            )
        taken.update(keys)
        worst = max(0, *(rep.status_code for rep in reps))
        how = (
            (Event.REPORT_FAILED, State.FAILED)
            if worst
            else (Event.REPORT_DELIVERED, State.DELIVERED)
        )
        settled.setdefault(how, []).append(r.message_id)
    return (
        statuses,
        settled,
        [ref for (_, ref), rep in latest.items() if (rep.line, ref) not in taken],
    )


@given(
    parts=st.lists(st.integers(1, 3), min_size=0, max_size=6),
    reported=st.lists(
        st.tuples(
            st.integers(0, 5), st.integers(0, 2), st.sampled_from([0, 0, 5]), st.integers(0, 6)
        ),
        max_size=14,
    ),
)
def test_the_sort_follows_its_rule(
    parts: list[int], reported: list[tuple[int, int, int, int]]
) -> None:
    """Messages of one to three parts, reports in any order and number (repeated refs, hints
    naming another message, parts unreported): the sort (with its one-part shortcut, issue
    15) gives what the rule says, tallies included."""
    applied = [ok(100 + i, n) for i, n in enumerate(parts)]
    reports = [
        PartReport("sim", f"{100 + m}.{p}", code, at, ReportHint(100 + hint, 1, p + 1, 3, 1))
        for at, (m, p, code, hint) in enumerate(reported)
    ]
    sorted_ = EarlyReports.sort(applied, reports)
    statuses, settled, rest = _sorted_by_the_rule(applied, reports)
    assert sorted_.statuses == statuses
    assert {k: [t.message_id for t in ts] for k, ts in sorted_.settled.items()} == settled
    assert list(sorted_.settled) == list(settled)  # the order the changes are published in
    for ts in sorted_.settled.values():
        for t in ts:
            n = len(applied[t.message_id - 100].part_refs)
            codes = [s.status_code for (mid, _), s in statuses.items() if mid == t.message_id]
            assert t == ReportTally(t.message_id, State.SENT, n, n, max(0, *codes))
    assert [r.line_ref for r in sorted_.rest] == rest
