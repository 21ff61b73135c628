"""Crash safety of voice calls with a real process: SIGKILL ``simgate run`` mid-call.

Issue #8 and the brief's rule "crashes lose nothing and resend nothing blindly": every call
committed by sendGroup ends DONE; a call in progress at the kill is ended as lost (SIP 500,
not charged) one lease after the crash and is never dialled again; no call is charged twice.
The sim voice line's journal is the network's memory: one ``D <id> <attempt>`` line per dial.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import pytest

from simgate.domain.accounts import AppKind
from simgate.domain.calls import CallOptions, CallRecord, CallState
from simgate.settings import load_settings
from simgate.store import Store
from simgate.testing.procs import SimgateProcess, free_port
from tests.api.itnio.conftest import wav_b64
from tests.process.runs import ONE_PROCESS
from tests.process.support import open_services, simgate_config

pytestmark = pytest.mark.slow

CALLEES = [f"8613700{i:06d}" for i in range(120)]


def _dials(journal: Path) -> Counter[int]:
    seen: Counter[int] = Counter()
    if journal.exists():
        for line in journal.read_text(encoding="ascii").splitlines():
            kind, call_id, _attempt = line.split()
            assert kind == "D"
            seen[int(call_id)] += 1
    return seen


async def test_sigkill_mid_call_ends_calls_as_lost_and_dials_nothing_twice(
    tmp_path: Path,
) -> None:
    journal = tmp_path / "voice.journal"
    port = free_port()
    config = simgate_config(
        tmp_path,
        port,
        worker={"reaper_interval_seconds": 0.25},
        voice={
            "call_lease_seconds": 2,
            "idle_poll_seconds": 0.05,
            "lines": {
                "sim-voice": {
                    "seed": 3,
                    "journal": str(journal),
                    "calls_per_second": 40,
                    "max_concurrent": 30,
                    "answer_ratio": 0.9,
                    "busy_ratio": 0.1,
                    "setup_seconds": [0.05, 0.2],
                    "ring_seconds": [0.2, 0.8],
                    "early_hangup_ratio": 0.0,
                    "dtmf_ratio": 0.5,
                    "dtmf_seconds": [0.1, 0.5],
                }
            },
        },
    )
    rt = await open_services(load_settings(config))
    sv = rt.services
    assert sv is not None
    try:
        account = await sv.accounts.create_account(name="calls", balance="1000")
        app = await sv.accounts.create_app(account.id, kind=AppKind.VOICE)
        vf = await sv.voice.upload_file(
            account=account, file_name="tone.wav", file_b64=wav_b64(3.0)
        )
        items = await sv.voice.send_group(
            account=account,
            app=app,
            callees=CALLEES,
            file_id=vf.file_id,
            options=CallOptions(loop_count=1),
        )
        ids = [i.voice_id for i in items if i.voice_id is not None]
        assert len(ids) == len(CALLEES)

        # One process: the kill must hit the calls' worker (in `run`'s default mode it is a
        # child the kernel stops gracefully when the parent is killed, PDEATHSIG).
        with SimgateProcess(
            list(ONE_PROCESS), workdir=tmp_path, config=config, port=port, name="k"
        ) as p:
            await asyncio.to_thread(p.wait_healthy, 30.0)
            deadline = time.monotonic() + 30
            while sum(_dials(journal).values()) < 40:
                assert time.monotonic() < deadline, p.stderr()[-2000:]
                await asyncio.sleep(0.05)
            p.kill()  # calls are up (3 s of audio each): some are mid-call now
        in_flight = await _states(rt.store, ids)
        calling = [i for i, r in in_flight.items() if r.state is CallState.CALLING]
        assert calling, "the kill landed when no call was in progress: it proved nothing"

        with SimgateProcess(
            list(ONE_PROCESS), workdir=tmp_path, config=config, port=port, name="f"
        ) as p:
            await asyncio.to_thread(p.wait_healthy, 30.0)
            deadline = time.monotonic() + 90
            while True:
                final = await _states(rt.store, ids)
                if all(r.state is CallState.DONE for r in final.values()):
                    break
                assert time.monotonic() < deadline, p.stderr()[-2000:]
                await asyncio.sleep(0.2)
            p.stop()
        after = await sv.accounts.get_account(account.id)
    finally:
        await rt.close()

    dials = _dials(journal)
    assert max(dials.values()) == 1, "a call was dialled twice"
    assert set(dials) <= set(ids)
    lost = [i for i in calling if final[i].sip_code == 500]
    assert lost, "no call in progress at the kill was ended as lost"
    for call_id, r in final.items():
        if r.sip_code == 500:
            assert (r.cost_micros, r.charged_duration_s) == (0, 0)
            assert dials[call_id] <= 1
        else:
            assert dials[call_id] == 1, (call_id, r.sip_code)
    charged = sum(r.cost_micros for r in final.values())
    assert charged > 0
    assert account.balance_micros - after.balance_micros == charged  # nothing charged twice


async def _states(store: Store, ids: list[int]) -> dict[int, CallRecord]:
    async with store.db.read() as conn:
        rows = await store.calls.get(conn, ids)
    return {r.id: r for r in rows}
