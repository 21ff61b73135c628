"""End to end: sendCode over HTTP → the call dispatcher → records and pushVoiceReport.

The real call dispatcher dials a scripted voice line on the FakeClock (see
tests/dispatch/test_calls.py): nothing here sleeps for the timing.
"""

from __future__ import annotations

import json

from simgate.dispatch.calls import CallDispatcher
from simgate.lease_loop import CALLS
from simgate.settings import VoiceSettings, WorkerSettings
from simgate.testing.voice_lines import ScriptedVoiceLine
from tests.api.itnio.conftest import Itnio, add_voice_app
from tests.support.calls import run
from tests.support.itnio_voice import SEND_CODE, TODAY, need_espeak


async def test_send_code_with_a_redial_is_pushed_once_after_the_last_attempt(
    itnio: Itnio,
) -> None:
    need_espeak()
    app = await add_voice_app(itnio)
    await itnio.services.accounts.update_app_push(
        app.app_id, {"voice_url": "https://c.example/voice"}
    )
    line = ScriptedVoiceLine("v", clock=itnio.clock, calls_per_second=100, max_concurrent=5)
    line.fails_then_answers("8613800138000", failures=1, code=486, after_s=2)
    await line.start()
    try:
        body = {**SEND_CODE, "appId": app.app_id, "recallCount": 1, "recallInterval": 1}
        sent = await itnio.post("/voice/sendCode", body)
        assert sent["status"] == "0", sent
        assert itnio.rt.wakeup.notified[CALLS] == 1  # the call dispatchers need not poll
        dispatcher = CallDispatcher(
            calls=itnio.services.calls,
            lines={"v": line},
            settings=VoiceSettings(),
            worker=WorkerSettings(),
            clock=itnio.clock,
            metrics=itnio.services.metrics,
            owner="w1",
        )
        await run(dispatcher, itnio.clock, 120, step=1.0)
    finally:
        await line.stop()
    assert len(line.dials) == 2  # busy, then answered a minute later (recallInterval 1)

    pushes = await itnio.services.pushes.list(kind="itnio.voice")
    assert len(pushes) == 1  # §1.11: with redials only the last attempt's result is pushed
    push = json.loads(pushes[0].body or b"")
    assert (push["voiceId"], push["type"], push["terminationCode"]) == (sent["data"], 2, "200")
    assert (push["outRecallCount"], push["ringDuration"], push["voiceFileId"]) == (1, 2, "")
    assert push["callDuration"] > 0
    assert push["calledInfo"] == "calledInfo"

    page = (await itnio.post("/voice/recordGroupQuery", {"params": TODAY}))["data"]
    (record,) = page["records"]
    assert record["voiceId"] == sent["data"]
    assert (record["terminationCode"], record["sipCode"]) == ("200", "200")
    assert record["chargedDuration"] == 60  # the default 60+60 billing period
    assert record["cost"] == "0.05"
