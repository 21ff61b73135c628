"""Crash safety with a real process: SIGKILL ``simgate run`` mid-dispatch, again and again.

In both of ``run``'s modes: the default (the worker in a child process: the kill hits the HTTP
parent, the kernel stops the child, PDEATHSIG, and the next run waits for it) and
``--one-process`` (the kill hits the worker). A kill of the worker child alone, which its
parent starts again: tests/process/test_worker_child.py.

Design principle 3 and spec §7: a message committed before the API answered is never lost,
and a message that may have reached the line is never submitted again (it becomes UNKNOWN).
The sim line's journal is the SMSC's memory: every ``S <id>`` line is one submission.
Kill points come from a seeded RNG; each kill lands after start-up, while the worker leases,
submits (20 ms latency) and waits for reports (300 ms delay), so some land between a submit
and its recorded result, others between a submit and its report. ``bench/`` has a longer run.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from simgate.domain.messages import State
from tests.process.runs import CLEAN_EXITS, ONE_PROCESS, SPLIT, UNSETTLED, crash_run

pytestmark = pytest.mark.slow

# States a message can only reach through a submission the line recorded exactly once.
SUBMITTED_ONCE = (State.SENT, State.DELIVERED, State.FAILED)
# States a message reaches without the line keeping it (the sim line journals no rejects).
NEVER_SUBMITTED = (State.QUEUED, State.REJECTED, State.EXPIRED)


@pytest.mark.parametrize("role", [SPLIT, ONE_PROCESS], ids=["worker-child", "one-process"])
async def test_sigkill_mid_dispatch_loses_nothing_and_submits_nothing_twice(
    tmp_path: Path, role: tuple[str, ...]
) -> None:
    run = await crash_run(tmp_path, seed=20_261_122, kills=5, first=2_000, between=300, role=role)

    assert run.final_exit in CLEAN_EXITS
    # Some kills must have landed mid-flight, or this test proved nothing about crashes.
    assert any(run.in_flight_at_kill), run.in_flight_at_kill
    assert len(run.accepted) == 2_000 + 5 * 300
    assert set(run.final) == set(run.accepted), "an accepted message was lost"
    submitted = run.submitted
    assert submitted, "the sim line journal is empty"
    twice = {mid: n for mid, n in submitted.items() if n > 1}
    assert not twice, f"submitted more than once: {sorted(twice)[:10]}"
    assert set(submitted) <= set(run.final), "the line saw a message simgate does not know"
    by_state: dict[State, int] = {}
    for mid, state in run.final.items():
        by_state[state] = by_state.get(state, 0) + 1
        if state in SUBMITTED_ONCE:
            assert submitted[mid] == 1, (mid, state.name, submitted[mid])
        elif state in NEVER_SUBMITTED:
            assert submitted[mid] == 0, (mid, state.name, submitted[mid])
        else:
            assert state is State.UNKNOWN, (mid, state.name)
            assert submitted[mid] <= 1
    assert by_state.get(State.DELIVERED, 0) > 0
    assert not any(by_state.get(s, 0) for s in UNSETTLED), by_state
