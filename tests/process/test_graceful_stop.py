"""SIGTERM stops a process gracefully: the batch in flight is recorded, no lease is left.

The dispatcher's ``stop()`` finishes its cycle so that nothing it submitted is left in
SUBMITTING for the reaper to turn into UNKNOWN (spec §7: UNKNOWN is for crashes, not for
an operator's ``systemctl stop``).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from simgate.domain.messages import State
from simgate.settings import load_settings
from simgate.testing.procs import SimgateProcess, free_port
from tests.process.runs import CLEAN_EXITS, crash_config
from tests.process.support import counts, enqueue, make_account, open_services

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("role", ["run --one-process", "run --worker-process", "worker"])
async def test_sigterm_records_the_batch_in_flight(tmp_path: Path, role: str) -> None:
    port = free_port()
    # Submits of 500 ms: a batch is in flight nearly all the time, so the SIGTERM finds one.
    config = crash_config(tmp_path, tmp_path / "sim.journal", port, submit_latency_ms=500)
    rt = await open_services(load_settings(config))
    assert rt.services is not None
    sv = rt.services
    try:
        await enqueue(sv, await make_account(sv), 3_000, batch=500)
        proc = SimgateProcess(
            role.split(), workdir=tmp_path, config=config, port=None if role == "worker" else port
        )
        with proc:
            if role != "worker":
                await asyncio.to_thread(proc.wait_healthy, 30.0)
            else:
                await asyncio.to_thread(proc.wait_output, "simgate worker running", 30.0)
            # Until the dispatcher is busy. Up to 60 s: under load a `--worker-process`
            # child took more than the 5 s this loop once allowed to import and lease.
            for _ in range(1200):
                if (await counts(rt.store)).get(State.SUBMITTING, 0):
                    break
                await asyncio.sleep(0.05)
            else:
                pytest.fail("the dispatcher never took a batch")
            rc = proc.stop()
        after = await counts(rt.store)
    finally:
        await rt.close()
    assert rc in CLEAN_EXITS
    assert after.get(State.SENT, 0) + after.get(State.DELIVERED, 0) > 0, after
    assert after.get(State.QUEUED, 0) > 0, "the stop came too late to test anything"
    assert after.get(State.SUBMITTING, 0) == 0, after
