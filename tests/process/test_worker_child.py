"""``simgate run --worker-process``: the worker in a child (cli/worker_child.py, issue 15).

Real processes:

- ``run`` without a flag starts the worker child on SQLite where it may use 2+ CPUs, and keeps
  one process on PostgreSQL or when pinned to one CPU (its affinity mask: ``taskset -c 0``),
  saying which and why;
- the wake-up reaches the child: with polls 10 minutes apart, a send over HTTP is still
  submitted (only the parent's datagram, or NOTIFY on PostgreSQL, can tell the child);
- the child dies with its parent, even when the parent is SIGKILLed;
- SIGKILL of the child, again and again mid-dispatch: the parent starts a new one, nothing
  accepted is lost and nothing is submitted twice;
- the child SIGKILLed between the line's answer and recording it (the worker's fault point),
  each child started again dying the same way: the batches the line took and nobody recorded
  are never sent again, and their late reports settle them;
- SIGTERM of the parent: HTTP stops, then the child records its batch in flight
  (test_graceful_stop.py's ``run --worker-process`` case).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from pathlib import Path

import httpx
import pytest

from simgate.dispatch.worker import KILL_AFTER_SUBMITS_ENV
from simgate.domain.messages import State
from simgate.settings import load_settings
from simgate.testing.procs import SimgateProcess, free_port
from tests.process.runs import (
    CHILD_KILLED,
    CLEAN_EXITS,
    LATE_REPORTS_LINE,
    UNSETTLED,
    crash_config,
)
from tests.process.support import (
    add_user,
    counts,
    database_url,
    enqueue,
    journal_submits,
    make_account,
    open_services,
    states,
)
from tests.process.worker_children import (
    RUN,
    child_config,
    gone,
    one_worker_child,
    started,
    worker_children,
)

pytestmark = pytest.mark.slow

USER, PASSWORD = "gw", "gw-password-1"


async def _send_one_until_submitted(proc: SimgateProcess, journal: Path) -> None:
    async with httpx.AsyncClient(base_url=proc.url, timeout=30) as http:
        body = {"username": USER, "password": PASSWORD, "msg": "m", "dest_num": "8613800000001"}
        answer = await http.post("/sms/send", json=body)
        assert '"code":200' in answer.text.replace(" ", ""), answer.text
    deadline = time.monotonic() + 30
    while not journal_submits(journal, live=True):
        assert time.monotonic() < deadline, proc.stderr()[-2000:]
        await asyncio.sleep(0.05)


async def test_run_starts_the_worker_child_by_default_on_two_cpus(tmp_path: Path) -> None:
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("one CPU here: `run` keeps one process (the next test)")
    port = free_port()
    config = child_config(tmp_path, port)
    await add_user(config, USER, PASSWORD)
    with SimgateProcess(["run"], workdir=tmp_path, config=config, port=port) as proc:
        child = await started(proc)
        assert "simgate run: the worker in a child process (" in proc.stdout(), proc.stdout()
        await _send_one_until_submitted(proc, tmp_path / "sim.journal")
        assert worker_children(proc.pid) == [child]
        assert proc.stop() in CLEAN_EXITS


@pytest.mark.pg
async def test_run_keeps_one_process_on_postgresql(tmp_path: Path, pg_url: str | None) -> None:
    port = free_port()
    config = child_config(tmp_path, port, await database_url("pg", pg_url))
    await add_user(config, USER, PASSWORD)
    with SimgateProcess(["run"], workdir=tmp_path, config=config, port=port) as proc:
        await asyncio.to_thread(proc.wait_healthy, 60.0)
        line = "simgate run: the worker in this process (PostgreSQL: "
        assert line in proc.stdout(), proc.stdout()
        await _send_one_until_submitted(proc, tmp_path / "sim.journal")  # by this process
        assert worker_children(proc.pid) == []
        assert proc.stop() in CLEAN_EXITS


async def test_run_keeps_one_process_on_one_cpu(tmp_path: Path) -> None:
    port = free_port()
    config = child_config(tmp_path, port)
    await add_user(config, USER, PASSWORD)
    # One CPU for the process started now (the mask of this thread, inherited by its child,
    # as `taskset -c 0 simgate run` would give it), then this thread's mask back.
    mask = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(mask)})
    try:
        proc = SimgateProcess(["run"], workdir=tmp_path, config=config, port=port).start()
    finally:
        os.sched_setaffinity(0, mask)
    with proc:
        await asyncio.to_thread(proc.wait_healthy, 60.0)
        line = "simgate run: the worker in this process (1 CPU: "
        assert line in proc.stdout(), proc.stdout()
        await _send_one_until_submitted(proc, tmp_path / "sim.journal")  # by this process
        assert worker_children(proc.pid) == []
        assert proc.stop() in CLEAN_EXITS


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("pg", marks=pytest.mark.pg)])
async def test_a_send_wakes_the_worker_child(
    tmp_path: Path, backend: str, pg_url: str | None
) -> None:
    url = await database_url(backend, pg_url)
    port = free_port()
    # Polls 10 minutes apart: a message submitted in this test was woken, not polled.
    config = child_config(tmp_path, port, url, idle_poll_seconds=600, idle_max_seconds=600)
    await add_user(config, USER, PASSWORD)
    with SimgateProcess(RUN, workdir=tmp_path, config=config, port=port) as proc:
        await started(proc)
        await asyncio.sleep(1.0)  # the child's start-up look is over: it idles now
        async with httpx.AsyncClient(base_url=proc.url, timeout=30) as http:
            body = {"username": USER, "password": PASSWORD, "msg": "wake"}
            for i in range(3):
                answer = await http.post("/sms/send", json={**body, "dest_num": f"8613{i:09d}"})
                assert '"code":200' in answer.text.replace(" ", ""), answer.text
                deadline = time.monotonic() + 30  # far below the 600 s poll
                while len(journal_submits(tmp_path / "sim.journal", live=True)) < i + 1:
                    assert time.monotonic() < deadline, "the worker child was not woken"
                    await asyncio.sleep(0.05)
        assert proc.stop() in CLEAN_EXITS


async def test_the_worker_child_dies_with_its_parent(tmp_path: Path) -> None:
    port = free_port()
    config = child_config(tmp_path, port)
    with SimgateProcess(RUN, workdir=tmp_path, config=config, port=port) as proc:
        child = await started(proc)
        proc.kill()  # SIGKILL: the parent cannot stop it, the kernel tells it (PDEATHSIG)
        assert await gone(child), "the worker child outlived its killed parent"


async def test_sigkill_of_the_worker_child_loses_nothing(tmp_path: Path) -> None:
    rng = random.Random(20_261_204)
    port = free_port()
    journal = tmp_path / "sim.journal"
    config = crash_config(tmp_path, journal, port)
    rt = await open_services(load_settings(config))
    assert rt.services is not None
    sv = rt.services
    try:
        account = await make_account(sv)
        accepted = await enqueue(sv, account, 1_000, batch=500)
        in_flight: list[int] = []
        with SimgateProcess(RUN, workdir=tmp_path, config=config, port=port) as proc:
            await asyncio.to_thread(proc.wait_healthy, 60.0)
            killed: frozenset[int] = frozenset()
            for _ in range(4):
                child = await one_worker_child(proc.pid, not_in=killed)
                # Until this child submits (the sim line journals it), then a little more:
                # the kill lands mid-dispatch, not in its start-up.
                before = len(journal_submits(journal, live=True))
                deadline = time.monotonic() + 60
                while len(journal_submits(journal, live=True)) == before:
                    assert time.monotonic() < deadline, "the worker child never submitted"
                    await asyncio.sleep(0.02)
                await asyncio.sleep(rng.uniform(0.0, 0.2))
                os.kill(child, signal.SIGKILL)  # our test's own grandchild, by its pid
                killed |= {child}
                now = await counts(rt.store)
                in_flight.append(now.get(State.SUBMITTING, 0) + now.get(State.SENT, 0))
                accepted += await enqueue(sv, account, 1_000, batch=500, start=len(accepted))
            # The parent started a new child after each kill; it settles everything.
            await one_worker_child(proc.pid, not_in=killed)
            deadline = time.monotonic() + 120
            while True:
                now = await counts(rt.store)
                if not any(now.get(s, 0) for s in UNSETTLED):
                    break
                assert time.monotonic() < deadline, now
                await asyncio.sleep(0.2)
            assert proc.poll() is None, "the parent died with its child"
            assert proc.stop() in CLEAN_EXITS
        final = await states(rt.store, accepted)
    finally:
        await rt.close()
    assert any(in_flight), in_flight  # some kills landed mid-dispatch
    assert set(final) == set(accepted), "an accepted message was lost"
    submitted = journal_submits(journal)
    assert {mid: n for mid, n in submitted.items() if n > 1} == {}, "submitted twice"
    for mid, state in final.items():
        if state in (State.SENT, State.DELIVERED, State.FAILED):
            assert submitted[mid] == 1, (mid, state.name)
        elif state in (State.QUEUED, State.REJECTED, State.EXPIRED):
            assert submitted[mid] == 0, (mid, state.name)


async def test_the_worker_child_killed_before_recording_its_answers_sends_nothing_twice(
    tmp_path: Path,
) -> None:
    """``run``'s default mode, the crash window of tests/process/test_late_reports.py: each
    worker child SIGKILLs itself once the line has answered its first batch, before the
    answers are recorded (SIMGATE_TEST_KILL_AFTER_SUBMITS=1, inherited by every child the
    parent starts again). The next child's reaper marks that batch UNKNOWN, never resends it,
    and the line's reports (replayed from the sim journal) settle it; the parent lives on."""
    port = free_port()
    journal = tmp_path / "sim.journal"
    config = crash_config(
        tmp_path,
        journal,
        port,
        batch_size=20,
        line=LATE_REPORTS_LINE,
    )
    rt = await open_services(load_settings(config))
    assert rt.services is not None
    try:
        ids = await enqueue(rt.services, await make_account(rt.services), 60, batch=60)
        env = {KILL_AFTER_SUBMITS_ENV: "1"}
        with SimgateProcess(RUN, workdir=tmp_path, config=config, port=port, env=env) as proc:
            deadline = time.monotonic() + 120
            while True:
                final = await states(rt.store, ids)
                if all(s in (State.DELIVERED, State.FAILED) for s in final.values()):
                    break
                assert proc.poll() is None, proc.stderr()[-2000:]
                assert time.monotonic() < deadline, sorted(s.name for s in final.values())
                await asyncio.sleep(0.2)
            kills = proc.stderr().count(CHILD_KILLED)
            assert proc.stop() in CLEAN_EXITS
        async with rt.store.db.read() as conn:
            crashed = [
                r for r in await rt.store.messages.get(conn, ids) if r.unknown_ms is not None
            ]
    finally:
        await rt.close()
    assert kills >= 2, kills  # children died at the fault point, and were started again
    submitted = journal_submits(journal)
    assert set(submitted) == set(ids)
    assert set(submitted.values()) == {1}, "a message was submitted twice"
    assert len(crashed) >= 20, len(crashed)  # a whole batch was taken and left unrecorded
