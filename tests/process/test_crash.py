"""Crash safety with a real process: SIGKILL ``simgate run`` mid-dispatch, again and again.

Design principle 3 and spec §7: a message committed before the API answered is never lost,
and a message that may have reached the line is never submitted again (it becomes UNKNOWN).
The sim line's journal is the SMSC's memory: every ``S <id>`` line is one submission.
Kill points come from a seeded RNG; each kill lands after start-up, while the worker leases,
submits (20 ms latency) and waits for reports (300 ms delay), so some land between a submit
and its recorded result, others between a submit and its report.
"""

from __future__ import annotations

import asyncio
import random
import signal
import time
from pathlib import Path

import pytest

from simgate.domain.messages import State
from simgate.settings import load_settings
from simgate.testing.procs import SimgateProcess, free_port, write_config
from tests.process.support import (
    counts,
    enqueue,
    journal_submits,
    make_account,
    open_services,
    states,
)

pytestmark = pytest.mark.slow

SEED = 20_261_122
KILLS = 6
FIRST_BATCH = 2_000
BETWEEN_KILLS = 300
UNSETTLED = (State.QUEUED, State.SUBMITTING, State.SENT)
# States a message can only reach through a submission the line recorded exactly once.
SUBMITTED_ONCE = (State.SENT, State.DELIVERED, State.FAILED)
# States a message reaches without the line keeping it (the sim line journals no rejects).
NEVER_SUBMITTED = (State.QUEUED, State.REJECTED, State.EXPIRED)


def _config(tmp_path: Path, journal: Path, port: int, *, policy: str = "unknown") -> Path:
    return write_config(
        tmp_path / "simgate.toml",
        {
            "data_dir": str(tmp_path / "data"),
            "master_key": "crash-test-master-key-0123456789",
            "log_level": "warning",
            "demo": {"create": False},
            "http": {"port": port},
            "worker": {
                "lease_seconds": 1,
                "batch_size": 50,
                "reaper_interval_seconds": 0.25,
                "idle_poll_seconds": 0.02,
                "expired_lease_policy": policy,
            },
            "lines": {
                "sim": {
                    "driver": "sim",
                    "ports": 8,
                    "seed": 7,
                    "journal": str(journal),
                    "submit_latency_ms": 20,
                    "report_delay_ms": 300,
                    "delivery_ratio": 0.9,
                    "failure_ratio": 0.02,
                }
            },
        },
    )


async def test_sigkill_mid_dispatch_loses_nothing_and_submits_nothing_twice(
    tmp_path: Path,
) -> None:
    rng = random.Random(SEED)
    journal = tmp_path / "sim.journal"
    port = free_port()
    config = _config(tmp_path, journal, port)
    rt = await open_services(load_settings(config))
    assert rt.services is not None
    sv = rt.services
    try:
        account = await make_account(sv)
        accepted = await enqueue(sv, account, FIRST_BATCH, batch=500)
        in_flight_at_kill: list[int] = []
        for k in range(KILLS):
            proc = SimgateProcess(["run"], workdir=tmp_path, config=config, port=port, name=f"k{k}")
            with proc:
                await asyncio.to_thread(proc.wait_healthy, 30.0)
                await asyncio.sleep(rng.uniform(0.0, 1.2))
                assert proc.poll() is None, proc.stderr()[-2000:]
                proc.kill()
            now = await counts(sv)
            in_flight_at_kill.append(now.get(State.SUBMITTING, 0) + now.get(State.SENT, 0))
            # More work arrives while simgate is down (committed, so it must not be lost).
            accepted += await enqueue(
                sv, account, BETWEEN_KILLS, batch=BETWEEN_KILLS, start=len(accepted)
            )

        with SimgateProcess(
            ["run"], workdir=tmp_path, config=config, port=port, name="final"
        ) as proc:
            await asyncio.to_thread(proc.wait_healthy, 30.0)
            deadline = time.monotonic() + 30
            while True:
                now = await counts(sv)
                if not any(now.get(s, 0) for s in UNSETTLED):
                    break
                assert time.monotonic() < deadline, f"did not settle: {now}"
                await asyncio.sleep(0.2)
            # uvicorn re-raises the SIGTERM it handled, so a clean stop ends by that signal.
            assert proc.stop() in (0, -signal.SIGTERM), proc.stderr()[-2000:]

        final = await states(sv, accepted)
    finally:
        await rt.close()

    print("in flight at each kill:", in_flight_at_kill)
    # Some kills must have landed mid-flight, or this test proved nothing about crashes.
    assert any(in_flight_at_kill), in_flight_at_kill
    assert len(accepted) == FIRST_BATCH + KILLS * BETWEEN_KILLS
    assert set(final) == set(accepted), "an accepted message was lost"
    submitted = journal_submits(journal)
    assert submitted, "the sim line journal is empty"
    twice = {mid: n for mid, n in submitted.items() if n > 1}
    assert not twice, f"submitted more than once: {sorted(twice)[:10]}"
    assert set(submitted) <= set(final), "the line saw a message simgate does not know"
    by_state: dict[State, int] = {}
    for mid, state in final.items():
        by_state[state] = by_state.get(state, 0) + 1
        if state in SUBMITTED_ONCE:
            assert submitted[mid] == 1, (mid, state.name, submitted[mid])
        elif state in NEVER_SUBMITTED:
            assert submitted[mid] == 0, (mid, state.name, submitted[mid])
        else:
            assert state is State.UNKNOWN, (mid, state.name)
            assert submitted[mid] <= 1
    print("final states:", {s.name: n for s, n in by_state.items()})
    assert by_state.get(State.DELIVERED, 0) > 0
    assert not any(by_state.get(s, 0) for s in UNSETTLED), by_state
