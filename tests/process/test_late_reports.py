"""A late report settles a message left UNKNOWN by a crash (issue 13 item 9), real processes.

``simgate run`` is killed exactly between the line's answer and recording it, 20 times: the
worker's test fault point (``SIMGATE_TEST_KILL_AFTER_SUBMITS``, dispatch/worker.py) SIGKILLs
the process once the sim line has answered its N-th batch. Each kill leaves a batch the line
took but simgate never recorded; the reaper of a later run marks it UNKNOWN. Its reports come
from the line (sent before the kill, or replayed from the sim journal, "the SMSC's memory", by
the next run) carrying the line's hint, and must settle every such message: in the end each
message is DELIVERED or FAILED as the line decided, none UNKNOWN, none submitted twice.

``run --one-process``: the fault point kills the whole gateway, each run once (one process also
keeps the 21 start-ups of this test at one process each). The same crash window in ``run``'s
default mode, the worker child killed and restarted by its parent: test_worker_child.py.
"""

from __future__ import annotations

import asyncio
import random
import signal
import time
from pathlib import Path

import pytest

from simgate.dispatch.worker import KILL_AFTER_SUBMITS_ENV
from simgate.domain.messages import State
from simgate.domain.records import MessageRecord
from simgate.runtime import Runtime
from simgate.settings import load_settings
from simgate.testing.procs import SimgateProcess, free_port
from tests.process.runs import (
    LATE_REPORTS_LINE,
    ONE_PROCESS,
    crash_config,
    run_to_fault_point,
)
from tests.process.support import enqueue, journal_submits, make_account, open_services

pytestmark = pytest.mark.slow

KILLS = 20
_ENDED = (State.DELIVERED, State.FAILED)
PER_RUN = 60  # messages queued before each run: three batches of 20, more than a run takes


def journal_codes(path: Path) -> dict[int, int]:
    """The report code the sim line decided for each submitted message (``S`` lines)."""
    codes: dict[int, int] = {}
    for line in path.read_text(encoding="ascii").splitlines():
        fields = line.split()
        if fields[0] == "S":
            codes[int(fields[1])] = int(fields[3])
    return codes


async def test_reports_settle_messages_whose_submit_a_crash_left_unrecorded(
    tmp_path: Path,
) -> None:
    rng = random.Random(13_09)
    journal = tmp_path / "sim.journal"
    port = free_port()
    # Some reports say failed (those end FAILED); every submit leaves, so each has a report.
    config = crash_config(
        tmp_path,
        journal,
        port,
        batch_size=20,
        line=LATE_REPORTS_LINE,
    )
    rt = await open_services(load_settings(config))
    assert rt.services is not None
    sv = rt.services
    exits: list[int] = []
    try:
        account = await make_account(sv)
        ids: list[int] = []
        for k in range(KILLS):
            ids += await enqueue(sv, account, PER_RUN, batch=PER_RUN, start=len(ids))
            env = {KILL_AFTER_SUBMITS_ENV: str(rng.choice((1, 2)))}
            exits.append(await run_to_fault_point(tmp_path, config, port, env, f"k{k}"))
        with SimgateProcess(
            list(ONE_PROCESS), workdir=tmp_path, config=config, port=port, name="final"
        ):
            deadline = time.monotonic() + 60
            while True:
                rows = await _rows(rt, ids)
                if all(r.state in _ENDED for r in rows):
                    break
                if time.monotonic() > deadline:
                    left = {r.id: r.state.name for r in rows if r.state not in _ENDED}
                    raise AssertionError(f"not settled: {len(left)}, e.g. {list(left.items())[:5]}")
                await asyncio.sleep(0.2)
    finally:
        await rt.close()

    assert exits == [-signal.SIGKILL] * KILLS  # each run died at the fault point, nowhere else
    submitted = journal_submits(journal)
    assert set(submitted) == set(ids)
    assert set(submitted.values()) == {1}, "a message was submitted twice"
    codes = journal_codes(journal)
    by_id = {r.id: r for r in rows}
    for mid in ids:  # each ends as its report said, none stays UNKNOWN
        want = State.DELIVERED if codes[mid] == 0 else State.FAILED
        assert by_id[mid].state is want, (mid, by_id[mid].state.name, codes[mid])
    # The crash window was hit: every kill left a batch the reaper had to mark UNKNOWN, and
    # those too ended from their reports.
    crashed = [r for r in rows if r.unknown_ms is not None]
    assert len(crashed) >= KILLS, len(crashed)
    assert {r.state for r in crashed} == {State.DELIVERED, State.FAILED}


async def _rows(rt: Runtime, ids: list[int]) -> list[MessageRecord]:
    async with rt.store.db.read() as conn:
        return await rt.store.messages.get(conn, ids)
