"""The dispatcher on both backends, driven cycle by cycle with a FakeClock (nothing sleeps)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from pathlib import Path

import pytest
from sqlalchemy import select

from simgate.clock import Clock
from simgate.codecs.segments import Encoding
from simgate.dispatch.reaper import Reaper
from simgate.dispatch.report_hold import ReportHold
from simgate.dispatch.sink import LineSink
from simgate.dispatch.worker import Dispatcher
from simgate.domain.messages import State
from simgate.lease_loop import Wakeup
from simgate.lines.base import IncomingPart, IncomingSms, Line, Outcome, SubmitRequest
from simgate.lines.sim import UNDELIVERABLE, SimLine
from simgate.runtime import Runtime
from simgate.services.container import Services
from simgate.services.sending import Recipient, SendRequest
from simgate.settings import Route, SimLineSettings, WorkerSettings
from simgate.store import Store
from simgate.store.tables import messages
from simgate.testing.clock import FakeClock
from simgate.testing.lines import ScriptedLine

from ..store.util import PRICE, account, balance, get, lease, lease_of, queue

WORKER = WorkerSettings(
    retry_base_seconds=10, retry_max_seconds=100, max_attempts=3, lease_seconds=30
)

MakeDispatcher = Callable[..., Awaitable[Dispatcher]]


@pytest.fixture
async def make(services: Services, store: Store, clock: FakeClock) -> AsyncIterator[MakeDispatcher]:
    started: list[Line] = []

    async def on_incoming(line: str, messages: Sequence[IncomingSms]) -> None:
        await services.inbound.receive(line, messages)

    async def on_parts(line: str, parts: Sequence[IncomingPart]) -> list[int]:
        return await services.inbound.receive_parts(line, parts)

    async def on_parts_due(line: str, started_before_ms: int) -> list[int]:
        return await services.inbound.expire_parts(line, started_before_ms=started_before_ms)

    async def on_port(line: str, port: int, up: bool) -> None:
        return None

    hold = ReportHold()  # used by the dispatchers made with hold=True (as the runtime does)
    sink = LineSink(
        messaging=services.messaging,
        hold=hold,
        clock=clock,
        metrics=services.metrics,
        on_incoming=on_incoming,
        on_parts=on_parts,
        on_parts_due=on_parts_due,
        on_port=on_port,
    )

    async def factory(
        lines: Mapping[str, Line],
        *,
        routes: Sequence[Route] = (),
        settings: WorkerSettings = WORKER,
        owner: str | None = None,
        wakeup: Wakeup | None = None,
        idle_clock: Clock | None = None,
        held: bool = False,
    ) -> Dispatcher:
        for line in lines.values():
            if line not in started:
                started.append(line)
                await line.start(sink)
        return Dispatcher(
            messaging=services.messaging,
            line_state=services.line_state,
            lines=lines,
            routes=routes or [Route(prefix="", lines=tuple(lines))],
            settings=settings,
            clock=clock,
            metrics=services.metrics,
            owner=owner,
            rng=random.Random(7),
            wakeup=wakeup,
            idle_clock=idle_clock,
            hold=hold if held else None,
        )

    yield factory
    for line in started:
        await line.stop()


async def cycle(d: Dispatcher) -> int:
    await d.claim_lines()
    return await d.run_once()


async def until(
    store: Store, mid: int, state: State, tries: int = 300, states: Sequence[State] = ()
) -> None:
    """Let background report tasks commit (bounded; they only wait for the database); any
    of ``states`` will do when given."""
    for _ in range(tries):
        if (await get(store, mid)).state in (states or (state,)):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{mid} is {(await get(store, mid)).state.name}, not {state.name}")


async def test_a_batch_line_and_a_one_by_one_line_share_a_batch(
    services: Services, store: Store, runtime: Runtime, clock: FakeClock, make: MakeDispatcher
) -> None:
    """The sim line takes its share of a lease in one call (lines.base.BatchLine), the
    scripted line its own one by one: every answer lands on its own message."""
    cfg = SimLineSettings(failure_ratio=0.5, seed=3, ports=3, report_delay_ms=60_000)
    sim = SimLine("sim", cfg, clock)
    other = ScriptedLine.outcomes(*[Outcome.OK, Outcome.REJECTED] * 3, name="other")
    d = await make({"sim": sim, "other": other})
    acc = await account(services)
    on_sim = await queue(runtime, acc, 6, line="sim")
    on_other = await queue(runtime, acc, 6, line="other")
    assert await cycle(d) == 12
    answered = {r.message_id: r for r in other.submits}
    assert set(answered) == set(on_other)
    by_other = {(await get(store, m)).state for m in on_other}
    assert by_other == {State.SENT, State.REJECTED}
    by_sim = [(await get(store, m)).state for m in on_sim]
    assert set(by_sim) == {State.SENT, State.REJECTED}
    assert sim.submitted == by_sim.count(State.SENT)


async def test_sim_line_delivers_after_report_delay(
    services: Services, store: Store, runtime: Runtime, clock: FakeClock, make: MakeDispatcher
) -> None:
    line = SimLine("sim", SimLineSettings(report_delay_ms=5000, ports=2), clock)
    d = await make({"sim": line})
    acc = await account(services)
    (mid,) = await queue(runtime, acc, parts=2)
    assert await cycle(d) == 1
    m = await get(runtime.store, mid)
    assert m.state is State.SENT
    assert m.port == 0
    assert m.parts_ok == 2
    await clock.advance(4.9)
    await asyncio.sleep(0.05)
    assert (await get(runtime.store, mid)).state is State.SENT
    await clock.advance(0.1)
    await until(store, mid, State.DELIVERED)
    m = await get(runtime.store, mid)
    assert m.delivered_ms == clock.now_ms()
    assert m.delivered_ms - m.sent_ms == 5000  # type: ignore[operator]


@pytest.mark.parametrize("held", [False, True], ids=["orphans", "held"])
async def test_reports_before_the_record_settle_every_message(
    services: Services,
    store: Store,
    runtime: Runtime,
    clock: FakeClock,
    make: MakeDispatcher,
    held: bool,
) -> None:
    """At 0 ms report delay the sim line reports before the dispatcher records the submit
    (issue 15): held for the record's transaction or kept as orphans, every report counts."""
    line = SimLine("sim", SimLineSettings(report_delay_ms=0, ports=4, delivery_ratio=0.5), clock)
    d = await make({"sim": line}, held=held)
    acc = await account(services)
    ids = await queue(runtime, acc, 30, parts=2)
    assert await cycle(d) == 30
    for mid in ids:
        await until(store, mid, State.DELIVERED, states=(State.DELIVERED, State.FAILED))
    rows = [await get(store, mid) for mid in ids]
    assert {r.parts_reported for r in rows} == {2}
    assert 0 < sum(r.state is State.FAILED for r in rows) < 30
    assert line.pending_reports == 0


async def test_failure_ratio_rejects_and_refunds(
    services: Services, runtime: Runtime, clock: FakeClock, make: MakeDispatcher
) -> None:
    line = SimLine("sim", SimLineSettings(failure_ratio=0.5, seed=3), clock)
    d = await make({"sim": line})
    acc = await account(services, balance="1")
    ids = await queue(runtime, acc, 40)
    assert await cycle(d) == 40
    states = [(await get(runtime.store, mid)).state for mid in ids]
    rejected = states.count(State.REJECTED)
    assert 0 < rejected < 40
    assert states.count(State.SENT) + states.count(State.DELIVERED) == 40 - rejected
    assert await balance(services, acc) == 1_000_000 - (40 - rejected) * PRICE
    first = next(m for m, s in zip(ids, states, strict=True) if s is State.REJECTED)
    r = await get(runtime.store, first)
    assert r.status_code == UNDELIVERABLE
    assert r.charge_micros == 0


async def test_delivery_ratio_gives_failed_reports(
    services: Services, store: Store, runtime: Runtime, clock: FakeClock, make: MakeDispatcher
) -> None:
    line = SimLine("sim", SimLineSettings(delivery_ratio=0.0), clock)
    d = await make({"sim": line})
    acc = await account(services, balance="1")
    (mid,) = await queue(runtime, acc)
    await cycle(d)
    await clock.advance(0)
    await until(store, mid, State.FAILED)
    m = await get(runtime.store, mid)
    assert m.status_code == UNDELIVERABLE
    assert m.charge_micros == PRICE  # it left: no refund
    assert await balance(services, acc) == 1_000_000 - PRICE


async def test_retries_back_off_then_fail(
    services: Services, store: Store, runtime: Runtime, clock: FakeClock, make: MakeDispatcher
) -> None:
    line = ScriptedLine.outcomes(Outcome.RETRY, name="a")
    d = await make({"a": line})
    acc = await account(services, balance="1")
    (mid,) = await queue(runtime, acc, line="a")
    t0 = clock.now_ms()
    assert await cycle(d) == 1
    m = await get(runtime.store, mid)
    assert (m.state, m.attempts) == (State.QUEUED, 1)
    due1 = await _due(store, mid)
    assert t0 + 5_000 <= due1 <= t0 + 10_000  # full jitter in [base/2, base]
    assert await cycle(d) == 0  # not due yet
    clock.set(due1)
    assert await cycle(d) == 1
    due2 = await _due(store, mid)
    assert due1 + 10_000 <= due2 <= due1 + 20_000  # doubled
    assert (await get(runtime.store, mid)).attempts == 2
    clock.set(due2)
    assert await cycle(d) == 1
    m = await get(runtime.store, mid)
    assert m.state is State.FAILED  # max_attempts = 3
    assert len(line.submits) == 3
    assert m.charge_micros == PRICE  # attempts reached the line: no refund
    clock.set(due2 + 10**7)
    assert await cycle(d) == 0


async def test_retry_after_from_the_line_is_respected(
    services: Services, store: Store, runtime: Runtime, clock: FakeClock, make: MakeDispatcher
) -> None:
    line = ScriptedLine.throttles(after=1, retry_after_s=42, name="a")
    d = await make({"a": line})
    acc = await account(services)
    ids = await queue(runtime, acc, 3, line="a")
    now = clock.now_ms()
    await cycle(d)
    states = [(await get(runtime.store, m)).state for m in ids]
    assert states == [State.SENT, State.QUEUED, State.QUEUED]
    assert [await _due(store, m) for m in ids[1:]] == [now + 42_000] * 2


async def test_throttles_after_three(
    services: Services, runtime: Runtime, clock: FakeClock, make: MakeDispatcher
) -> None:
    line = ScriptedLine.throttles(after=3, name="a")
    d = await make({"a": line})
    acc = await account(services)
    ids = await queue(runtime, acc, 5, line="a")
    await cycle(d)
    states = [(await get(runtime.store, m)).state for m in ids]
    assert states.count(State.SENT) == 3
    assert states.count(State.QUEUED) == 2


async def test_failover_to_the_second_line_of_the_route(
    services: Services, store: Store, runtime: Runtime, clock: FakeClock, make: MakeDispatcher
) -> None:
    a = ScriptedLine.outcomes(Outcome.RETRY, name="a")
    b = ScriptedLine.accepts(name="b")
    d = await make(
        {"a": a, "b": b}, routes=[Route(prefix="86", lines=("a", "b")), Route(lines=("a",))]
    )
    acc = await account(services)
    (mid,) = await queue(runtime, acc, line="a")
    await cycle(d)
    m = await get(runtime.store, mid)
    assert (m.state, m.line, m.attempts) == (State.QUEUED, "b", 1)
    clock.set(await _due(store, mid))
    await cycle(d)
    m = await get(runtime.store, mid)
    assert (m.state, m.line) == (State.SENT, "b")
    assert [r.message_id for r in b.submits] == [mid]
    async with runtime.store.db.read() as conn:
        parts = await runtime.store.messages.parts_of(conn, mid)
    assert [p["line"] for p in parts] == ["b"]
    await b.report(mid, at_ms=clock.now_ms())
    await until(store, mid, State.DELIVERED)


async def test_no_failover_when_the_route_has_one_line(
    services: Services, runtime: Runtime, clock: FakeClock, make: MakeDispatcher
) -> None:
    a = ScriptedLine.outcomes(Outcome.RETRY, name="a")
    b = ScriptedLine.accepts(name="b")
    d = await make(
        {"a": a, "b": b}, routes=[Route(prefix="44", lines=("a", "b")), Route(lines=("a",))]
    )
    acc = await account(services)
    (mid,) = await queue(runtime, acc, line="a")  # to 86..., the catch-all route
    await cycle(d)
    assert (await get(runtime.store, mid)).line == "a"


async def test_port_rate_limit_defers_without_spending_attempts(
    services: Services, store: Store, runtime: Runtime, clock: FakeClock, make: MakeDispatcher
) -> None:
    line = ScriptedLine.accepts(name="a", ports=1, port_rate_per_minute=1)
    d = await make({"a": line})
    acc = await account(services)
    ids = await queue(runtime, acc, 3, line="a")
    now = clock.now_ms()
    await cycle(d)
    ms = [await get(runtime.store, m) for m in ids]
    assert [m.state for m in ms] == [State.SENT, State.QUEUED, State.QUEUED]
    assert [m.attempts for m in ms[1:]] == [0, 0]
    for m in ms[1:]:
        assert now + 59_000 < await _due(store, m.id) <= now + 60_001
    clock.set(now + 60_001)
    await cycle(d)
    states = [(await get(runtime.store, m)).state for m in ids]
    assert states.count(State.SENT) == 2
    assert len(line.submits) == 2


async def test_port_hint_is_respected(
    services: Services, runtime: Runtime, clock: FakeClock, make: MakeDispatcher
) -> None:
    line = ScriptedLine.accepts(name="a", ports=4)
    d = await make({"a": line})
    acc = await account(services)
    ids = await queue(runtime, acc, 4, line="a", port_hint="2,3")
    await cycle(d)
    assert {r.port for r in line.submits} == {2, 3}
    assert {(await get(runtime.store, m)).port for m in ids} == {2, 3}


async def test_hint_to_an_unusable_port_waits_without_attempts(
    services: Services, store: Store, runtime: Runtime, clock: FakeClock, make: MakeDispatcher
) -> None:
    line = ScriptedLine.accepts(name="a", ports=4)
    line.set_port(1, registered=False)
    d = await make({"a": line})
    acc = await account(services)
    (mid,) = await queue(runtime, acc, line="a", port_hint="1")
    await cycle(d)
    m = await get(runtime.store, mid)
    assert (m.state, m.attempts, m.error_text) == (State.QUEUED, 0, "no free port")
    assert line.submits == []
    line.set_port(1, registered=True)
    clock.set(await _due(store, mid))
    await cycle(d)
    m = await get(runtime.store, mid)
    assert (m.state, m.port) == (State.SENT, 1)


async def test_unusable_ports_are_skipped(
    services: Services, runtime: Runtime, clock: FakeClock, make: MakeDispatcher
) -> None:
    line = ScriptedLine.accepts(name="a", ports=3)
    line.set_port(0, registered=False)
    line.set_port(1, locked=True)
    d = await make({"a": line})
    acc = await account(services)
    await queue(runtime, acc, 5, line="a")
    await cycle(d)
    assert [r.port for r in line.submits] == [2] * 5


async def test_line_errors_and_unknown_answers_end_unknown(
    services: Services, runtime: Runtime, clock: FakeClock, make: MakeDispatcher
) -> None:
    bug = ScriptedLine.raises(name="a")
    mute = ScriptedLine.outcomes(Outcome.UNKNOWN, name="b")
    d = await make({"a": bug, "b": mute})
    acc = await account(services)
    (x,) = await queue(runtime, acc, line="a")
    (y,) = await queue(runtime, acc, line="b")
    await cycle(d)
    for mid in (x, y):
        m = await get(runtime.store, mid)
        assert m.state is State.UNKNOWN
        assert m.charge_micros == PRICE
    assert "ScriptedError" in ((await get(runtime.store, x)).error_text or "")
    clock.set(clock.now_ms() + 10**7)
    assert await cycle(d) == 0  # never resent blindly


async def test_exclusive_line_is_driven_by_one_dispatcher(
    services: Services, runtime: Runtime, clock: FakeClock, make: MakeDispatcher
) -> None:
    line = ScriptedLine.accepts(name="modem", exclusive=True)
    first = await make({"modem": line}, owner="w1")
    second = await make({"modem": line}, owner="w2")
    acc = await account(services)
    ids = await queue(runtime, acc, 4, line="modem")
    await first.claim_lines()
    await second.claim_lines()
    assert await second.run_once() == 0
    assert await first.run_once() == 4
    assert [(await get(runtime.store, m)).state for m in ids] == [State.SENT] * 4
    # The owner renews; the other cannot take it until the owner lets go or its lease lapses.
    clock.set(clock.now_ms() + 20_000)
    await first.claim_lines()
    clock.set(clock.now_ms() + 20_000)
    await second.claim_lines()
    more = await queue(runtime, acc, 1, line="modem")
    assert await second.run_once() == 0
    await first.stop()  # releases the line
    await second.claim_lines()
    assert await second.run_once() == 1
    assert (await lease_of(runtime.store, more[0])) == (None, None)
    # And after a crash (no release), the lease lapses and the other worker takes over.
    third = await make({"modem": line}, owner="w3")
    clock.set(clock.now_ms() + 31_000)
    await third.claim_lines()
    (last,) = await queue(runtime, acc, 1, line="modem")
    assert await third.run_once() == 1
    assert (await get(runtime.store, last)).state is State.SENT


async def test_validity_expiry_by_the_reaper(
    services: Services, runtime: Runtime, clock: FakeClock, make: MakeDispatcher
) -> None:
    line = ScriptedLine.outcomes(Outcome.RETRY, name="a")
    d = await make({"a": line}, settings=WorkerSettings(max_attempts=100, retry_base_seconds=10))
    reaper = Reaper(
        messaging=services.messaging, settings=WORKER, clock=clock, metrics=services.metrics
    )
    acc = await account(services, balance="1")
    (mid,) = await queue(runtime, acc, line="a", validity_s=60)
    await cycle(d)
    assert await reaper.run_once() == (0, 0)
    clock.set(clock.now_ms() + 60_001)
    assert await reaper.run_once() == (0, 1)
    m = await get(runtime.store, mid)
    assert m.state is State.EXPIRED
    assert await balance(services, acc) == 1_000_000  # expired while queued: refunded
    assert await cycle(d) == 0


async def test_reaper_marks_crashed_leases_unknown(
    services: Services, runtime: Runtime, clock: FakeClock, make: MakeDispatcher
) -> None:
    reaper = Reaper(
        messaging=services.messaging, settings=WORKER, clock=clock, metrics=services.metrics
    )
    acc = await account(services)
    (mid,) = await queue(runtime, acc)
    # A worker leased it and died: nothing records a result.
    await lease(runtime.store, clock.now_ms(), lease_ms=30_000)
    clock.set(clock.now_ms() + 30_001)
    assert await reaper.run_once() == (1, 0)
    assert (await get(runtime.store, mid)).state is State.UNKNOWN


async def _due(store: Store, mid: int) -> int:
    async with store.db.read() as conn:
        return int(
            (
                await conn.execute(select(messages.c.next_attempt_ms).where(messages.c.id == mid))
            ).scalar_one()
        )


async def test_sim_journal_redelivers_reports_after_a_restart(
    services: Services,
    store: Store,
    runtime: Runtime,
    clock: FakeClock,
    make: MakeDispatcher,
    tmp_path: Path,
) -> None:
    cfg = SimLineSettings(journal=str(tmp_path / "sim.journal"), report_delay_ms=60_000)
    first = SimLine("sim", cfg, clock)
    d = await make({"sim": first})
    acc = await account(services)
    (mid,) = await queue(runtime, acc, parts=2)
    await cycle(d)
    assert (await get(runtime.store, mid)).state is State.SENT
    await first.stop()  # the process dies before the reports are due
    second = SimLine("sim", cfg, clock)
    await make({"sim": second})  # starting it replays the journal
    await until(store, mid, State.DELIVERED)
    assert (await get(runtime.store, mid)).parts_reported == 2


async def test_late_report_resolves_a_message_unknown_after_a_crash(
    services: Services,
    store: Store,
    runtime: Runtime,
    clock: FakeClock,
    make: MakeDispatcher,
    tmp_path: Path,
) -> None:
    cfg = SimLineSettings(journal=str(tmp_path / "sim.journal"), report_delay_ms=60_000)
    line = SimLine("sim", cfg, clock)
    await make({"sim": line})
    acc = await account(services)
    (mid,) = await queue(runtime, acc)
    (leased,) = await lease(runtime.store, clock.now_ms(), lease_ms=30_000)
    await line.submit(  # the worker submits, then dies before recording the answer
        SubmitRequest(
            leased.id,
            0,
            "",
            leased.recipient,
            leased.text,
            Encoding.GSM7,
            1,
            True,
            lease_seq=leased.lease_seq,
        )
    )
    clock.set(clock.now_ms() + 30_001)
    reaper = Reaper(
        messaging=services.messaging, settings=WORKER, clock=clock, metrics=services.metrics
    )
    await reaper.run_once()
    assert (await get(runtime.store, mid)).state is State.UNKNOWN
    await clock.advance(60)  # the SMSC's report arrives
    await until(store, mid, State.DELIVERED, tries=30)


async def test_answers_outlive_a_database_outage_longer_than_the_lease(
    services: Services, store: Store, runtime: Runtime, clock: FakeClock, make: MakeDispatcher
) -> None:
    """Issue 14 item 4: the line accepted the batch, then the database was down for longer
    than the lease. The answers are kept and written when it is back, even after the reaper
    (first back) gave the lease up: the messages end SENT, not UNKNOWN."""
    line = SimLine("sim", SimLineSettings(ports=2, submit_latency_ms=100), clock)
    d = await make({"sim": line})
    acc = await account(services)
    # No reports asked: only the kept answers can make these SENT.
    ids = await queue(runtime, acc, 3, report_requested=False)
    await d.claim_lines()
    run = asyncio.create_task(d.run_once())
    await sleepers(clock, 3)  # the batch is leased and its submits are at the line
    await store.db.close()  # the outage starts while the line is answering
    await clock.advance(0.1)
    await sleepers(clock, 1)  # the answers wait for the database (a retry's sleep)
    assert not run.done()
    await clock.advance(WORKER.lease_seconds + 15)  # longer than the lease
    await store.db.open()
    reaper = Reaper(
        messaging=services.messaging, settings=WORKER, clock=clock, metrics=services.metrics
    )
    await reaper.run_once()  # first back: the lapsed lease is UNKNOWN for now
    assert {(await get(store, mid)).state for mid in ids} == {State.UNKNOWN}
    await clock.advance(60)
    assert await asyncio.wait_for(run, 10) == 3
    for mid in ids:
        assert (await get(store, mid)).state is State.SENT


async def sleepers(clock: FakeClock, n: int, tries: int = 500) -> None:
    """Until ``n`` tasks sleep on ``clock`` (bounded: they only wait for the database)."""
    for _ in range(tries):
        if clock.sleepers >= n:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{clock.sleepers} sleepers, not {n}")


# ---- idle costs nothing (issue 15): woken by work, no polling on the (fake) idle clock ------
async def submits_reach(line: ScriptedLine, count: int, tries: int = 500) -> None:
    """Until the line has seen ``count`` submits (bounded; the cycle waits only for the DB)."""
    for _ in range(tries):
        if len(line.submits) >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{len(line.submits)} submits, not {count}")


async def test_an_idle_dispatcher_runs_no_cycle_until_a_send_wakes_it(
    services: Services, runtime: Runtime, clock: FakeClock, make: MakeDispatcher
) -> None:
    line = ScriptedLine.accepts(name="sim")
    d = await make({"sim": line}, wakeup=runtime.wakeup, idle_clock=clock)
    await d.start()
    try:
        await asyncio.sleep(0.2)
        idle = d.loop.cycles
        await asyncio.sleep(0.2)
        assert d.loop.cycles == idle  # the idle clock stands still: no poll ran
        acc = await account(services)
        out = await services.sending.send(
            SendRequest(
                account=acc, dialect="test", text="hi", recipients=[Recipient("8613800138000")]
            )
        )
        assert len(out.accepted) == 1
        await submits_reach(line, 1)  # the accept woke it, nothing else could
        assert line.submits[0].message_id == out.accepted[0].message_id
    finally:
        await d.stop()


async def test_a_woken_dispatcher_records_a_small_batch_in_its_own_cycle_then_idles(
    services: Services, runtime: Runtime, store: Store, clock: FakeClock, make: MakeDispatcher
) -> None:
    """Issue 15: a batch smaller than batch_size took all that was due, so its answers are
    recorded in the cycle that leased it, not in a second cycle beside a lease that finds
    nothing; and the wake-up does not set the poll back to its quick pace."""
    line = ScriptedLine.accepts(name="sim")
    d = await make({"sim": line}, wakeup=runtime.wakeup, idle_clock=clock)
    await d.start()
    try:
        await asyncio.sleep(0.2)
        before, poll_s = d.loop.cycles, d.loop.next_idle_seconds
        acc = await account(services)
        out = await services.sending.send(
            SendRequest(
                account=acc, dialect="test", text="hi", recipients=[Recipient("8613800138000")]
            )
        )
        (mid,) = [a.message_id for a in out.accepted]
        for _ in range(500):
            if (await get(store, mid)).state is State.SENT:
                break
            await asyncio.sleep(0.01)
        assert (await get(store, mid)).state is State.SENT
        await asyncio.sleep(0.2)
        assert d.loop.cycles == before + 1  # one cycle: lease, submit, record
        assert d.loop.next_idle_seconds >= poll_s  # not back to idle_poll_seconds
    finally:
        await d.stop()


async def test_an_idle_dispatcher_wakes_when_its_retry_falls_due(
    services: Services, runtime: Runtime, store: Store, clock: FakeClock, make: MakeDispatcher
) -> None:
    line = ScriptedLine.outcomes(Outcome.RETRY, Outcome.OK, name="sim")
    slow_polls = WORKER.model_copy(update={"idle_poll_seconds": 60.0, "idle_max_seconds": 600.0})
    d = await make({"sim": line}, settings=slow_polls, wakeup=runtime.wakeup, idle_clock=clock)
    acc = await account(services)
    (mid,) = await queue(runtime, acc)
    await d.start()
    try:
        await submits_reach(line, 1)
        await asyncio.sleep(0.1)  # the RETRY is recorded
        async with store.db.read() as conn:
            query = select(messages.c.next_attempt_ms).where(messages.c.id == mid)
            due = (await conn.execute(query)).scalar_one()
        assert due > clock.now_ms()
        await clock.advance((due - clock.now_ms()) / 1000 - 0.001)
        await asyncio.sleep(0.1)
        assert len(line.submits) == 1  # not due yet
        await clock.advance(0.001)  # due now: long before the 60 s poll
        await submits_reach(line, 2)
    finally:
        await d.stop()


async def test_the_next_batch_is_leased_while_the_line_still_holds_this_one(
    services: Services, runtime: Runtime, make: MakeDispatcher
) -> None:
    """Issue 15: the running dispatcher leases batch N+1 while batch N is being submitted
    (the line would sit idle during the lease otherwise); a stop records N and gives N+1,
    which never reached the line, back to the queue."""
    line = ScriptedLine.held(name="sim")
    d = await make({"sim": line}, settings=WORKER.model_copy(update={"batch_size": 2}))
    acc = await account(services)
    ids = await queue(runtime, acc, 4)
    await d.start()
    for _ in range(300):
        states = [(await get(runtime.store, mid)).state for mid in ids]
        if len(line.submits) == 2 and states[2:] == [State.SUBMITTING] * 2:
            break
        await asyncio.sleep(0.01)
    assert [r.message_id for r in line.submits] == ids[:2]  # still outstanding: not answered
    assert [(await get(runtime.store, mid)).state for mid in ids] == [State.SUBMITTING] * 4
    stopping = asyncio.create_task(d.stop())
    await asyncio.sleep(0.05)
    line.release()
    await stopping
    assert len(line.submits) == 2
    assert [(await get(runtime.store, mid)).state for mid in ids] == [State.SENT] * 2 + [
        State.QUEUED
    ] * 2
    assert [await lease_of(runtime.store, mid) for mid in ids[2:]] == [(None, None)] * 2
