"""End to end through a real SIP far end: itniotech sendGroup over HTTP → the call dispatcher →
the SIP line → sipp → records and pushVoiceReport rows (issue 17 "Done when").

Real time (sipp does not run on a fake clock): a :class:`WallClock` reads the system time,
and jumps forward only to skip a redial's recallInterval (a minute at least, spec §1.11).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from simgate.clock import Alarm, SystemClock
from simgate.dispatch.calls import CallDispatcher
from simgate.lines.sip.line import SipVoiceLine
from simgate.settings import VoiceSettings, WorkerSettings
from simgate.testing.clock import FakeClock
from tests.api.itnio.conftest import Itnio, add_voice_app, make_itnio, wav_b64
from tests.support.itnio_voice import SEND_CODE, need_espeak, send_group, upload
from tests.support.sipp import Sipp, need_sipp

pytestmark = [pytest.mark.peer, pytest.mark.slow]


class WallClock(FakeClock):
    """The system clock, plus an offset :meth:`advance` adds to (nothing waits for it)."""

    def __init__(self) -> None:
        super().__init__()
        self._real = SystemClock()
        self._offset_ms = 0

    def now_ms(self) -> int:
        return self._real.now_ms() + self._offset_ms

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def alarm(self, seconds: float) -> Alarm:
        return self._real.alarm(seconds)

    async def advance(self, seconds: float) -> None:
        self._offset_ms += round(seconds * 1000)


@pytest.fixture
async def env(sqlite_url: str, tmp_path: Path) -> AsyncIterator[Itnio]:
    async with make_itnio(sqlite_url, tmp_path, WallClock()) as e:
        yield e


async def place_calls(env: Itnio, line: SipVoiceLine, *, within_s: float = 90) -> None:
    """Run the dispatcher on ``line`` until no call is queued or in progress; a redial's wait
    is skipped by moving the clock on."""
    d = CallDispatcher(
        calls=env.services.calls,
        lines={line.name: line},
        settings=VoiceSettings(idle_poll_seconds=0.05, call_lease_seconds=120),
        worker=WorkerSettings(),
        clock=env.clock,
        metrics=env.services.metrics,
        owner="w1",
    )
    await line.start()
    await d.start()
    try:
        async with asyncio.timeout(within_s):
            while True:
                await asyncio.sleep(0.3)
                depth = await env.services.calls.queue_depth()
                if d.active == 0 and depth == 0:
                    return
                if d.active == 0:  # only redials left, due in recallInterval
                    await env.clock.advance(61)
    finally:
        await d.stop()
        await line.stop()


async def records(env: Itnio) -> list[dict[str, Any]]:
    now = dt.datetime.fromtimestamp(env.clock.now_ms() / 1000, dt.UTC)
    window = {
        "strTime": (now - dt.timedelta(hours=1)).isoformat(timespec="seconds"),
        "endTime": (now + dt.timedelta(hours=1)).isoformat(timespec="seconds"),
    }
    out: list[dict[str, Any]] = []
    for page in (1, 2, 3):
        got = await env.post(
            "/voice/recordGroupQuery", {"params": window, "current": page, "size": 25}
        )
        assert got["status"] == "0", got
        out += got["data"]["records"]
    return out


async def voice_pushes(env: Itnio) -> list[dict[str, Any]]:
    return [json.loads(p.body or b"") for p in await env.services.pushes.list(kind="itnio.voice")]


async def with_push(env: Itnio) -> None:
    await env.services.accounts.update_app_push(
        env.app.app_id, {"voice_url": "https://c.example/v"}
    )


async def test_answered_with_rfc4733_keys_is_recorded_and_billed(
    env: Itnio, tmp_path: Path
) -> None:
    need_sipp(pcaps=True)
    env.app = await add_voice_app(env)
    await with_push(env)
    up = await upload(env, "three.wav", wav_b64(3.0))
    with Sipp("answer_rfc4733", tmp_path) as sipp:
        sent = await send_group(env, env.app, "8613800138000", fileId=up["data"])
        assert sent["status"] == "0", sent
        await place_calls(env, SipVoiceLine("trunk", sipp.line(), env.clock))
        assert sipp.wait() == 0, sipp.messages()
    (record,) = await records(env)
    assert (record["terminationCode"], record["sipCode"], record["feedbackValue"]) == (
        "200",
        "200",
        "1",
    )
    assert record["callDuration"] == 3  # the audio's length: we hung up when it had played
    assert (record["billPeriod"], record["chargedDuration"], record["cost"]) == (
        "60+60",
        60,
        "0.05",
    )
    (push,) = await voice_pushes(env)
    assert (push["terminationCode"], push["feedbackValue"]) == ("200", "1")


async def test_busy_is_redialled_recall_count_times_then_final_486(
    env: Itnio, tmp_path: Path
) -> None:
    need_sipp()
    need_espeak()
    env.app = await add_voice_app(env)
    await with_push(env)
    with Sipp("fail_486", tmp_path, calls=3) as sipp:
        # sendCode: the request with recallCount / recallInterval (spec §1.11)
        body = {**SEND_CODE, "appId": env.app.app_id, "recallCount": 2, "recallInterval": 1}
        sent = await env.post("/voice/sendCode", body)
        assert sent["status"] == "0", sent
        await place_calls(env, SipVoiceLine("trunk", sipp.line(), env.clock))
        assert sipp.wait() == 0, sipp.messages()
    assert sipp.messages().count("SIP/2.0 486") == 3  # the dial and two redials
    (record,) = await records(env)
    assert (record["terminationCode"], record["cost"], record["feedbackValue"]) == (
        "486",
        "0",
        "-1",
    )
    assert record["voiceId"] == sent["data"]
    (push,) = await voice_pushes(env)  # only the last attempt is pushed (§1.11)
    assert (push["terminationCode"], push["outRecallCount"]) == ("486", 2)


async def test_a_group_of_50_callees_is_paced_and_capped(env: Itnio, tmp_path: Path) -> None:
    need_sipp()
    env.app = await add_voice_app(env)
    await with_push(env)
    callees = [f"86138{n:08d}" for n in range(50)]
    up = await upload(env, "one.wav", wav_b64(1.0))
    with Sipp("answer_to_socket", tmp_path, calls=50, keys={"rtp_port": "9"}) as sipp:
        sent = await send_group(env, env.app, ",".join(callees), fileId=up["data"])
        assert sent["status"] == "0", sent
        line = SipVoiceLine("trunk", sipp.line(calls_per_second=20, max_concurrent=8), env.clock)
        await place_calls(env, line)
        assert sipp.wait() == 0, sipp.messages()
    got = await records(env)
    assert sorted(r["callee"] for r in got) == callees
    assert {r["terminationCode"] for r in got} == {"200"}
    assert len(await voice_pushes(env)) == 50
    assert line.stats.peak_live <= 8  # never above max_concurrent
    assert line.stats.attempts == {200: 50}
    starts = sorted(line.stats.dial_ms)
    assert starts[-1] - starts[0] >= 49 * 1000 / 20 - 5  # at most 20 calls a second


async def test_no_answer_is_cancelled_at_max_ringing_time_with_487(
    env: Itnio, tmp_path: Path
) -> None:
    need_sipp()
    need_espeak()
    env.app = await add_voice_app(env)
    with Sipp("no_answer", tmp_path) as sipp:
        body = {**SEND_CODE, "appId": env.app.app_id, "recallCount": 0, "maxRingingTime": 20}
        sent = await env.post("/voice/sendCode", body)
        assert sent["status"] == "0", sent
        await place_calls(env, SipVoiceLine("trunk", sipp.line(), env.clock))
        assert sipp.wait() == 0, sipp.messages()
    assert "CANCEL sip:" in sipp.messages()
    (record,) = await records(env)
    assert (record["terminationCode"], record["cost"], record["callDuration"]) == ("487", "0", 0)
    ringing = dt.datetime.fromisoformat(record["callTime"])
    hangup = dt.datetime.fromisoformat(record["hangupTime"])
    # The flow ends the call at maxRingingTime itself (not when the 487 came): 20 s, recorded
    # in whole seconds.
    assert (hangup - ringing).total_seconds() in (19, 20, 21)


async def test_a_far_end_bye_mid_play_bills_to_that_moment(env: Itnio, tmp_path: Path) -> None:
    need_sipp()
    env.app = await add_voice_app(env)
    up = await upload(env, "long.wav", wav_b64(10.0))
    with Sipp("far_bye", tmp_path) as sipp:
        sent = await send_group(env, env.app, "8613800138000", fileId=up["data"])
        assert sent["status"] == "0", sent
        await place_calls(env, SipVoiceLine("trunk", sipp.line(), env.clock))
        assert sipp.wait() == 0, sipp.messages()
    (record,) = await records(env)
    # sipp hangs up 1.5 s after its ACK; the audio would have lasted 10 s.
    assert record["terminationCode"] == "200"
    assert 1 <= record["callDuration"] <= 3
    assert (record["chargedDuration"], record["cost"]) == (60, "0.05")
