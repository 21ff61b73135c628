"""The call dispatcher on both backends, with a scripted voice line and a FakeClock.

The clock moves only when a test advances it, and only while no call waits on the database
(``io_in_flight == 0``), so every step is deterministic: nothing sleeps for the timing.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import replace

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.dispatch.calls import voice_route
from simgate.domain.accounts import Account, App, AppKind
from simgate.domain.calls import (
    Audio,
    CallKind,
    CallOptions,
    CallRecord,
    CallState,
    NewCall,
    Pricing,
)
from simgate.domain.events import CallDone, Change
from simgate.runtime import Runtime
from simgate.services.container import Services
from simgate.settings import VoiceSettings
from simgate.store import Store
from simgate.testing.clock import FakeClock
from simgate.testing.voice_lines import ScriptedVoiceLine
from tests.support.calls import dispatcher, run

RATE = 1_200_000  # 1.2 USD per minute
AUDIO = Audio(b"\x00\x00" * 8000 * 3)  # 3 s of silence


@pytest.fixture
async def voice(services: Services, store: Store) -> tuple[Account, App, int]:
    account = await services.accounts.create_account(name="acme", balance="100")
    app = await services.accounts.create_app(account.id, kind=AppKind.VOICE)
    job = functools.partial(
        store.voice_files.put_audio,
        sha256="a" * 64,
        pcm=AUDIO.pcm,
        duration_ms=AUDIO.duration_ms,
        now_ms=0,
    )
    audio_id = await store.db.write(job)
    return account, app, audio_id


Queue = Callable[..., Awaitable[int]]


@pytest.fixture
def queue(store: Store, clock: FakeClock, voice: tuple[Account, App, int]) -> Queue:
    account, app, audio_id = voice

    async def put(callee: str = "8613800000001", **options: object) -> int:
        (call_id,) = await store.new_ids(1, clock.now_ms())
        call = NewCall(
            call_id,
            account.id,
            app.id,
            CallKind.GROUP,
            callee,
            audio_id,
            "1file.wav",
            "China",
            replace(CallOptions(), **options),  # type: ignore[arg-type]
            Pricing(RATE, "20+20", "USD", None),
            clock.now_ms(),
        )
        await store.db.write(functools.partial(store.calls.insert, calls=[call]))
        return call_id

    return put


@pytest.fixture
async def events(runtime: Runtime) -> list[Change]:
    seen: list[Change] = []

    async def hook(conn: AsyncConnection, evs: Sequence[Change]) -> None:
        seen.extend(evs)

    runtime.changes.subscribe(hook)
    return seen


@pytest.fixture
async def line(clock: FakeClock) -> AsyncIterator[ScriptedVoiceLine]:
    v = ScriptedVoiceLine("v", clock=clock, calls_per_second=100, max_concurrent=5)
    await v.start()
    yield v
    await v.stop()


async def record(store: Store, call_id: int) -> CallRecord:
    async with store.db.read() as conn:
        r = await store.calls.get_one(conn, call_id)
    assert r is not None
    return r


async def balance(services: Services, account: Account) -> int:
    return (await services.accounts.get_account(account.id)).balance_micros


def finished(events: list[Change]) -> list[int]:
    return [e.call_id for e in events if isinstance(e, CallDone)]


async def test_answered_call_plays_the_loops_hangs_up_and_is_billed(
    services: Services,
    store: Store,
    clock: FakeClock,
    queue: Queue,
    line: ScriptedVoiceLine,
    voice: tuple[Account, App, int],
    events: list[Change],
) -> None:
    account = voice[0]
    line.answers("8613800000001", setup_s=1, after_s=2, dtmf="5", dtmf_after_s=1)
    before = await balance(services, account)
    call_id = await queue(loop_count=2)
    d = dispatcher(services, clock, line)
    await run(d, clock, 20)
    r = await record(store, call_id)
    assert r.state is CallState.DONE
    assert r.sip_code == 200
    assert r.reason == "success"
    assert r.call_ms is not None
    assert r.ringing_ms is not None
    assert r.answer_ms is not None
    assert r.hangup_ms is not None
    assert r.submit_ms <= r.call_ms <= r.ringing_ms <= r.answer_ms <= r.hangup_ms
    assert r.ringing_ms - r.call_ms == 1000
    assert r.answer_ms - r.ringing_ms == 2000
    assert r.hangup_ms - r.answer_ms == 6000  # 2 loops of 3 s, then we hang up
    assert r.call_duration_s == 6
    assert r.charged_duration_s == 20  # 20+20
    assert r.cost_micros == 400_000  # 1.2 USD/min x 20 s
    assert r.feedback_value == "5"
    assert await balance(services, account) == before - 400_000
    assert [p.loops for p in line.plays] == [2]
    assert finished(events) == [call_id]
    sample = services.metrics.registry.get_sample_value(
        "simgate_call_attempts_total", {"line": "v", "sip_code": "200"}
    )
    assert sample == 1
    assert await d.reap() == 0
    assert services.metrics.registry.get_sample_value("simgate_calls_queued") == 0


async def test_unanswered_call_is_cancelled_at_max_ringing_time_and_costs_nothing(
    services: Services,
    store: Store,
    clock: FakeClock,
    queue: Queue,
    line: ScriptedVoiceLine,
    voice: tuple[Account, App, int],
) -> None:
    line.rings_forever("8613800000001")
    before = await balance(services, voice[0])
    call_id = await queue(max_ringing_s=20)
    d = dispatcher(services, clock, line)
    await run(d, clock, 30)
    r = await record(store, call_id)
    assert r.sip_code == 487
    assert r.answer_ms is None
    assert r.call_ms is not None
    assert r.hangup_ms is not None
    assert r.hangup_ms - r.call_ms == 20_000
    assert (r.call_duration_s, r.charged_duration_s, r.cost_micros) == (0, 0, 0)
    assert r.feedback_value == "-1"
    assert await balance(services, voice[0]) == before


async def test_max_duration_hangs_up_after_the_answer(
    services: Services, store: Store, clock: FakeClock, queue: Queue, line: ScriptedVoiceLine
) -> None:
    line.answers("8613800000001", after_s=1)
    call_id = await queue(loop_count=9, max_duration_s=5)  # 27 s of audio, cut at 5 s
    d = dispatcher(services, clock, line)
    await run(d, clock, 20)
    r = await record(store, call_id)
    assert r.sip_code == 200
    assert r.call_duration_s == 5
    assert len(line.hangups) == 1


async def test_callee_hanging_up_early_is_billed_for_what_was_talked(
    services: Services, store: Store, clock: FakeClock, queue: Queue, line: ScriptedVoiceLine
) -> None:
    line.answers("8613800000001", hangs_up_after_s=2)
    call_id = await queue(loop_count=3)
    d = dispatcher(services, clock, line)
    await run(d, clock, 15)
    r = await record(store, call_id)
    assert (r.sip_code, r.call_duration_s, r.charged_duration_s) == (200, 2, 20)
    assert line.hangups == []  # the callee ended it


async def test_busy_callee_is_redialled_and_only_the_last_attempt_is_final(
    services: Services,
    store: Store,
    clock: FakeClock,
    queue: Queue,
    line: ScriptedVoiceLine,
    events: list[Change],
) -> None:
    line.busy("8613800000001")
    call_id = await queue(recall_count=2, recall_interval_s=60)
    d = dispatcher(services, clock, line)
    await run(d, clock, 5)
    r = await record(store, call_id)
    assert r.state is CallState.QUEUED  # first attempt done, a redial is due in 60 s
    assert r.recalls_done == 1
    assert finished(events) == []
    await run(d, clock, 130)
    r = await record(store, call_id)
    assert r.state is CallState.DONE
    assert (r.sip_code, r.recalls_done, r.cost_micros) == (486, 2, 0)
    assert len(line.dials) == 3
    assert line.dials[1].call_id == call_id
    assert finished(events) == [call_id]  # one push: the last attempt's


async def test_redial_that_gets_answered(
    services: Services, store: Store, clock: FakeClock, queue: Queue, line: ScriptedVoiceLine
) -> None:
    line.fails_then_answers("8613800000001", failures=1, code=486)
    call_id = await queue(recall_count=3, recall_interval_s=60)
    d = dispatcher(services, clock, line)
    await run(d, clock, 80)
    r = await record(store, call_id)
    assert (r.state, r.sip_code, r.recalls_done) == (CallState.DONE, 200, 1)
    assert len(line.dials) == 2


async def test_no_redial_without_recall_count(
    services: Services, store: Store, clock: FakeClock, queue: Queue, line: ScriptedVoiceLine
) -> None:
    line.unreachable("8613800000001")
    call_id = await queue()
    d = dispatcher(services, clock, line)
    await run(d, clock, 400)
    r = await record(store, call_id)
    assert (r.state, r.sip_code, r.recalls_done) == (CallState.DONE, 480, 0)
    assert len(line.dials) == 1


async def test_pacing_per_second_and_concurrent(
    services: Services, store: Store, clock: FakeClock, queue: Queue
) -> None:
    v = ScriptedVoiceLine("slow", clock=clock, calls_per_second=2, max_concurrent=3)
    v.answers(after_s=5)
    await v.start()
    ids = [await queue(f"86138000000{i:02d}") for i in range(10)]
    d = dispatcher(services, clock, v)
    await run(d, clock, 120, step=0.25)
    await v.stop()
    assert v.peak_concurrent <= 3
    dial_times = [c.call_ms for c in [await record(store, i) for i in ids]]
    assert all(t is not None for t in dial_times)
    ordered = sorted(t for t in dial_times if t is not None)
    assert all(b - a >= 500 for a, b in itertools.pairwise(ordered))  # 2 per second
    codes = [(await record(store, i)).sip_code for i in ids]
    assert codes == [200] * len(ids)


async def test_a_call_lost_with_its_worker_ends_as_500_and_is_never_redialled(
    services: Services,
    store: Store,
    clock: FakeClock,
    queue: Queue,
    line: ScriptedVoiceLine,
    voice: tuple[Account, App, int],
    events: list[Change],
) -> None:
    call_id = await queue(recall_count=5)
    now = clock.now_ms()
    job = functools.partial(
        store.calls.lease, owner="dead", now_ms=now, lease_until_ms=now + 900_000, limit=10
    )
    assert [c.id for c in await store.db.write(job)] == [call_id]
    before = await balance(services, voice[0])
    d = dispatcher(services, clock, line)
    await clock.advance(899)
    assert await d.reap() == 0  # still within the lease
    await clock.advance(2)
    assert await d.reap() == 1
    r = await record(store, call_id)
    assert (r.state, r.sip_code, r.cost_micros) == (CallState.DONE, 500, 0)
    await run(d, clock, 10)
    assert line.dials == []
    assert await balance(services, voice[0]) == before
    assert finished(events) == [call_id]


async def test_stop_hangs_up_calls_in_progress_and_records_them(
    services: Services, store: Store, clock: FakeClock, queue: Queue, line: ScriptedVoiceLine
) -> None:
    line.answers("8613800000001")
    call_id = await queue(loop_count=9)
    d = dispatcher(services, clock, line)
    await run(d, clock, 4)
    assert d.active == 1
    await d.stop()
    r = await record(store, call_id)
    assert (r.state, r.sip_code, r.call_duration_s) == (CallState.DONE, 200, 4)


async def test_a_second_worker_does_not_take_a_leased_call(
    services: Services, store: Store, clock: FakeClock, queue: Queue, line: ScriptedVoiceLine
) -> None:
    line.answers(after_s=1)
    other = ScriptedVoiceLine("v2", clock=clock)
    await other.start()
    call_id = await queue()
    d1 = dispatcher(services, clock, line, owner="w1")
    d2 = dispatcher(services, clock, other, owner="w2")
    assert await d1.run_once() == 1
    assert await d2.run_once() == 0
    await run(d1, clock, 10)
    await other.stop()
    assert (await record(store, call_id)).sip_code == 200
    assert other.dials == []


async def test_leases_of_long_calls_are_renewed_so_the_reaper_leaves_them(
    services: Services, store: Store, clock: FakeClock, queue: Queue, line: ScriptedVoiceLine
) -> None:
    line.answers("8613800000001")
    call_id = await queue(loop_count=9)  # 27 s of audio, the lease is 6 s
    short = VoiceSettings(call_lease_seconds=6, max_call_seconds=600)
    d = dispatcher(services, clock, line, settings=short)
    await run(d, clock, 40, upkeep=True)
    r = await record(store, call_id)
    assert (r.state, r.sip_code, r.call_duration_s) == (CallState.DONE, 200, 27)


async def test_without_renewal_a_long_call_would_be_reaped(
    services: Services, store: Store, clock: FakeClock, queue: Queue, line: ScriptedVoiceLine
) -> None:
    """The counter-test: the same call, nobody renews (a hung worker) → ended as lost."""
    line.answers("8613800000001")
    call_id = await queue(loop_count=9)
    short = VoiceSettings(call_lease_seconds=6, max_call_seconds=600)
    d = dispatcher(services, clock, line, settings=short)
    await run(d, clock, 7)
    assert await d.reap() == 1
    await run(d, clock, 30)  # the call goes on; its late result changes nothing
    r = await record(store, call_id)
    assert (r.state, r.sip_code, r.cost_micros) == (CallState.DONE, 500, 0)


async def test_calls_the_account_can_no_longer_pay_end_with_402_undialled(
    services: Services,
    store: Store,
    clock: FakeClock,
    queue: Queue,
    line: ScriptedVoiceLine,
    voice: tuple[Account, App, int],
) -> None:
    account = voice[0]
    # 100 → 0.9: room for two first steps of 0.4 (1.2 USD/min at 20+20), not a third.
    await services.accounts.correct(account.id, amount="-99.1", reason="test")
    line.answers(after_s=1)
    ids = [await queue(f"86138000000{i:02d}", loop_count=1) for i in range(4)]
    d = dispatcher(services, clock, line)
    await run(d, clock, 20)
    records = [await record(store, i) for i in ids]
    assert [r.sip_code for r in records] == [200, 200, 402, 402]
    assert [r.call_ms is not None for r in records] == [True] * 4
    assert len(line.dials) == 2
    assert all(r.cost_micros == 0 and r.reason == "insufficient balance" for r in records[2:])
    # The two answered calls were charged after the fact (20 s each at 1.2 USD/min).
    assert await balance(services, account) == 900_000 - 2 * 400_000


# ---- voice routes (issue 17) ------------------------------------------------------------------
def routed(**routes: tuple[str, ...]) -> VoiceSettings:
    """Settings with lines "a" and "b" and ``prefix=lines`` routes ("any" = prefix "")."""
    table = [
        {"prefix": "" if p == "any" else p.lstrip("p"), "lines": ls} for p, ls in routes.items()
    ]
    return VoiceSettings.model_validate(
        {
            "lines": {"a": {}, "b": {}},
            "routes": table,
            "batch_size": 50,
            "call_lease_seconds": 900,
        }
    )


def test_voice_route_longest_prefix_first_line_or_any() -> None:
    cfg = routed(any=("a",), p86=("b",), p8613=("a", "b"))
    assert voice_route(cfg, "8613800000001") == ("a", "b")
    assert voice_route(cfg, "8612") == ("b",)
    assert voice_route(cfg, "4412") == ("a",)
    assert voice_route(routed(p86=("b",)), "4412") == ("a",)  # no match: the first line
    assert voice_route(VoiceSettings(), "4412") is None  # no routes: any line


async def test_calls_follow_their_route_and_wait_for_its_line(
    services: Services, store: Store, clock: FakeClock, queue: Queue
) -> None:
    a = ScriptedVoiceLine("a", clock=clock, calls_per_second=100, max_concurrent=5)
    b = ScriptedVoiceLine("b", clock=clock, calls_per_second=100, max_concurrent=1)
    for v in (a, b):
        v.answers(after_s=1)
        await v.start()
    china = [await queue(f"86138000000{i:02d}") for i in range(3)]
    uk = await queue("447700900001")
    d = dispatcher(services, clock, a, b, settings=routed(any=("a",), p86=("b",)))
    await run(d, clock, 60, step=0.5)
    for v in (a, b):
        await v.stop()
    assert [(await record(store, i)).line for i in china] == ["b", "b", "b"]  # one at a time
    assert (await record(store, uk)).line == "a"
    assert b.peak_concurrent == 1
    assert [(await record(store, i)).sip_code for i in [*china, uk]] == [200] * 4


async def test_stop_requeues_calls_still_waiting_for_their_routes_line(
    services: Services, store: Store, clock: FakeClock, queue: Queue
) -> None:
    a = ScriptedVoiceLine("a", clock=clock, calls_per_second=100, max_concurrent=5)
    b = ScriptedVoiceLine("b", clock=clock, calls_per_second=100, max_concurrent=1)
    b.answers(after_s=1)
    await b.start()
    await a.start()
    first, second = await queue("8613800000001", loop_count=9), await queue("8613800000002")
    d = dispatcher(services, clock, a, b, settings=routed(p86=("b",)))
    await run(d, clock, 3)
    await d.stop()
    assert (await record(store, first)).state == CallState.DONE
    waiting = await record(store, second)
    assert (waiting.state, waiting.line) == (CallState.QUEUED, None)  # never dialled, not lost
    assert len(b.dials) == 1
    assert a.dials == []
