"""kill -9 in the middle of a 500-message batch, 20 times (issue 14 item 3, "Done when").

Each run leases one batch of 500 and dies (the worker's fault point
``SIMGATE_TEST_KILL_AFTER_WRITES=N``) once the sim line has taken its N-th message, N drawn
from 1..499: the rest of the batch was leased but never written to the line. The sim line's
journal says which messages were written when the kill came. Only those may end UNKNOWN; every
other message is sent exactly once by a later run, and none is submitted twice.

``run --one-process``: the fault point kills the process that answers HTTP too, as before the
worker child became the default (one process also keeps this test's 21 start-ups at one
process each). The worker child killed at a fault point, restarted by its parent:
tests/process/test_worker_child.py.
"""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

import pytest

from simgate.dispatch.worker import KILL_AFTER_WRITES_ENV
from simgate.domain.messages import State
from simgate.settings import load_settings
from simgate.testing.procs import SimgateProcess, free_port
from tests.process.runs import ONE_PROCESS, crash_config, run_to_fault_point
from tests.process.support import (
    enqueue,
    journal_submits,
    make_account,
    open_services,
    states,
)

pytestmark = pytest.mark.slow

KILLS = 20
BATCH = 500
_SENT_ONCE = (State.SENT, State.DELIVERED, State.FAILED)


async def test_kill_mid_batch_leaves_unknown_only_what_the_line_took(tmp_path: Path) -> None:
    rng = random.Random(14_03)
    journal = tmp_path / "sim.journal"
    port = free_port()
    # Every submit of a batch waits, then they are written one after another: the kill after
    # the N-th leaves the others leased and unwritten.
    config = crash_config(
        tmp_path,
        journal,
        port,
        batch_size=BATCH,
        line={"seed": 14, "submit_latency_ms": 5, "failure_ratio": 0.0},
    )
    rt = await open_services(load_settings(config))
    assert rt.services is not None
    sv = rt.services
    written_at_kills: set[int] = set()
    leased_unwritten = 0
    try:
        account = await make_account(sv)
        ids: list[int] = []
        for k in range(KILLS):
            ids += await enqueue(sv, account, BATCH, batch=BATCH, start=len(ids))
            env = {KILL_AFTER_WRITES_ENV: str(rng.randint(1, BATCH - 1))}
            await run_to_fault_point(tmp_path, config, port, env, f"k{k}")
            written = set(journal_submits(journal))
            leased_unwritten += len(set(ids) - written)
            written_at_kills |= written
        with SimgateProcess(
            list(ONE_PROCESS), workdir=tmp_path, config=config, port=port, name="final"
        ):
            deadline = time.monotonic() + 90
            while True:
                final = await states(rt.store, ids)
                if all(s in (*_SENT_ONCE, State.UNKNOWN) for s in final.values()):
                    break
                if time.monotonic() > deadline:
                    left = {m: s.name for m, s in final.items() if s not in _SENT_ONCE}
                    raise AssertionError(f"not sent: {len(left)}, e.g. {list(left.items())[:5]}")
                await asyncio.sleep(0.2)
    finally:
        await rt.close()

    assert leased_unwritten > 0  # the kills did leave messages that never reached the line
    submitted = journal_submits(journal)
    assert set(submitted.values()) == {1}, "a message was submitted twice"
    unknown = {m for m, s in final.items() if s is State.UNKNOWN}
    assert unknown <= written_at_kills, sorted(unknown - written_at_kills)[:10]
    for mid, state in final.items():  # the rest was sent, once
        if state is not State.UNKNOWN:
            assert submitted[mid] == 1, (mid, state.name)
