"""The call dispatcher's policy as properties, over random callee behaviours and options.

Whatever the callees do (answer after a while, press a key, hang up early, be busy, be
unreachable, ring forever, fail then answer) and whatever the request asked (loops,
maxDuration, maxRingingTime, recalls), every call ends DONE with consistent times, within its
limits, dialled at most 1 + recallCount times, billed by the formula, and the account is
debited exactly the sum of the costs. SQLite only, a fresh database per example.
"""

from __future__ import annotations

import asyncio
import functools
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from simgate.dispatch.calls import REDIAL_CODES
from simgate.domain.accounts import AppKind
from simgate.domain.billing import BillPeriod
from simgate.domain.calls import (
    Audio,
    CallKind,
    CallOptions,
    CallState,
    NewCall,
    Pricing,
)
from simgate.runtime import Runtime
from simgate.testing.clock import FakeClock
from simgate.testing.voice_lines import ScriptedVoiceLine
from tests.conftest import make_settings
from tests.support.calls import dispatcher, run
from tests.support.examples import examples

RATE = 600_000  # 0.6 USD per minute
PERIOD = "6+6"
AUDIO_MS = 2000


@dataclass(frozen=True)
class Behaviour:
    kind: str  # answers | busy | unreachable | rings | flaky
    after_s: float = 0.0
    dtmf: str = ""
    hangs_up_after_s: float | None = None


behaviours = st.one_of(
    st.builds(
        Behaviour,
        kind=st.just("answers"),
        after_s=st.sampled_from([0.0, 1.0, 5.0, 30.0]),  # 30 s beats a 20 s maxRingingTime
        dtmf=st.sampled_from(["", "1", "#"]),
        hangs_up_after_s=st.sampled_from([None, 0.5, 3.0]),
    ),
    st.sampled_from(
        [Behaviour("busy"), Behaviour("unreachable"), Behaviour("rings"), Behaviour("flaky")]
    ),
)
options = st.builds(
    CallOptions,
    loop_count=st.integers(1, 3),
    recall_count=st.integers(0, 2),
    recall_interval_s=st.just(20),  # the dispatcher takes any; the wire's minimum is 60
    max_duration_s=st.one_of(st.none(), st.integers(1, 5)),
    max_ringing_s=st.sampled_from([20, 25]),
)

ONE_LOOP = CallOptions(
    loop_count=1, recall_count=0, recall_interval_s=20, max_duration_s=None, max_ringing_s=20
)


def _script(line: ScriptedVoiceLine, callee: str, b: Behaviour) -> None:
    if b.kind == "answers":
        line.answers(
            callee, after_s=b.after_s, dtmf=b.dtmf, dtmf_after_s=0.2,
            hangs_up_after_s=b.hangs_up_after_s,
        )  # fmt: skip
    elif b.kind == "busy":
        line.busy(callee)
    elif b.kind == "unreachable":
        line.unreachable(callee)
    elif b.kind == "rings":
        line.rings_forever(callee)
    else:
        line.fails_then_answers(callee, failures=1, code=486, after_s=1)


async def _scenario(template: Path, cases: list[tuple[Behaviour, CallOptions]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "simgate.db"
        shutil.copyfile(template, db)
        clock = FakeClock()
        rt = Runtime(
            make_settings(Path(tmp), f"sqlite+aiosqlite:///{db}"), role="admin", clock=clock
        )
        services = await rt.open()
        try:
            store = rt.store
            account = await services.accounts.create_account(name="p", balance="100")
            app = await services.accounts.create_app(account.id, kind=AppKind.VOICE)
            audio = Audio(b"\x00\x00" * (8 * AUDIO_MS))
            put = functools.partial(
                store.voice_files.put_audio, sha256="b" * 64, pcm=audio.pcm,
                duration_ms=audio.duration_ms, now_ms=0,
            )  # fmt: skip
            audio_id = await store.db.write(put)
            line = ScriptedVoiceLine("v", clock=clock, calls_per_second=50, max_concurrent=4)
            await line.start()
            ids = await store.new_ids(len(cases), clock.now_ms())
            calls = []
            for i, (call_id, (b, opts)) in enumerate(zip(ids, cases, strict=True)):
                callee = f"86138{i:08d}"
                _script(line, callee, b)
                calls.append(
                    NewCall(
                        call_id,
                        account.id,
                        app.id,
                        CallKind.GROUP,
                        callee,
                        audio_id,
                        "f.wav",
                        "China",
                        opts,
                        Pricing(RATE, PERIOD, "USD", None),
                        clock.now_ms(),
                    )
                )
            await store.db.write(functools.partial(store.calls.insert, calls=calls))
            d = dispatcher(services, clock, line)
            await run(d, clock, 200, step=2.0)  # ≤ 3 attempts of ≤ 25 s ringing, 20 s apart
            await line.stop()
            async with store.db.read() as conn:
                records = {r.id: r for r in await store.calls.get(conn, ids)}
            dials: dict[int, int] = {}
            for request in line.dials:
                dials[request.call_id] = dials.get(request.call_id, 0) + 1
            for call_id, (b, opts) in zip(ids, cases, strict=True):
                r = records[call_id]
                assert r.state is CallState.DONE, (b, opts, r)
                assert r.call_ms is not None
                assert r.hangup_ms is not None
                stamps = [r.submit_ms, r.call_ms, r.ringing_ms, r.answer_ms, r.hangup_ms]
                present = [t for t in stamps if t is not None]
                assert present == sorted(present), r
                assert 1 <= dials[call_id] <= 1 + opts.recall_count
                assert r.recalls_done == dials[call_id] - 1
                if r.sip_code == 200:
                    assert r.answer_ms is not None
                    assert r.call_duration_s <= opts.loop_count * AUDIO_MS // 1000
                    if opts.max_duration_s is not None:
                        assert r.call_duration_s <= opts.max_duration_s
                    period = BillPeriod.parse(PERIOD)
                    assert r.charged_duration_s == period.charged_seconds(r.call_duration_s)
                    assert r.cost_micros == RATE * r.charged_duration_s // 60
                else:
                    assert r.answer_ms is None
                    assert (r.cost_micros, r.charged_duration_s, r.dtmf) == (0, 0, "")
                    assert r.hangup_ms - r.call_ms <= opts.max_ringing_s * 1000
                    if r.sip_code in REDIAL_CODES:
                        assert dials[call_id] == 1 + opts.recall_count  # every redial spent
                if b.kind == "answers" and b.after_s < 20:
                    assert r.sip_code == 200
                if b.kind == "rings" or (b.kind == "answers" and b.after_s >= 25):
                    assert r.sip_code == 487
            spent = 100_000_000 - (await services.accounts.get_account(account.id)).balance_micros
            assert spent == sum(r.cost_micros for r in records.values())
        finally:
            await rt.close()


@settings(
    max_examples=examples(25),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(cases=st.lists(st.tuples(behaviours, options), min_size=1, max_size=6))
# Found by Hypothesis: the busy call paces the second one 20 ms into a 2 s clock step, so the
# dispatcher played its audio at the step's end; the callee's hang-up 3 s after the answer
# came before the audio's end and the call lasted 3 s of 2 s of audio (lines/sim_voice.py:
# the audio now starts at the answer the caller reacts to).
@example(
    cases=[
        (Behaviour("busy"), ONE_LOOP),
        (Behaviour("answers", after_s=0.0, hangs_up_after_s=3.0), ONE_LOOP),
    ]
)
def test_call_policy_properties(
    sqlite_template: Path, cases: list[tuple[Behaviour, CallOptions]]
) -> None:
    asyncio.run(_scenario(sqlite_template, cases))
