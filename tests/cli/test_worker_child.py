"""``simgate run``'s process mode (cli/worker_child.py ``worker_mode``, issue 15).

The worker child itself, started and killed as real processes: tests/process/test_worker_child.py
and its neighbours."""

from __future__ import annotations

import os

import pytest

from simgate.cli.worker_child import cpus_here, worker_mode


def test_the_worker_child_by_default_with_two_cpus_or_more() -> None:
    for cpus in (2, 4, 64):
        child, why = worker_mode(None, cpus=cpus)
        assert child, cpus
        assert f"{cpus} CPUs" in why


def test_one_process_by_default_on_one_cpu() -> None:
    assert worker_mode(None, cpus=1) == (
        False,
        "1 CPU: a worker process would only take turns with HTTP on it",
    )


def test_one_process_by_default_on_postgresql() -> None:
    assert worker_mode(None, cpus=8, sqlite=False) == (
        False,
        "PostgreSQL: a worker process measured no faster there",
    )


def test_with_workers_n_the_first_http_process_runs_the_worker() -> None:
    assert worker_mode(None, cpus=8, workers=3) == (
        False,
        "--workers 3: the first HTTP process runs it",
    )


@pytest.mark.parametrize("cpus", [1, 2])
@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("sqlite", [True, False])
def test_the_flags_win_over_the_machine(cpus: int, workers: int, sqlite: bool) -> None:
    for asked, why in ((True, "--worker-process"), (False, "--one-process")):
        assert worker_mode(asked, cpus=cpus, sqlite=sqlite, workers=workers) == (asked, why)


def test_cpus_are_those_this_process_may_run_on() -> None:
    # The affinity mask, not the machine's count: `taskset -c 0 simgate run` is one CPU.
    assert cpus_here() == len(os.sched_getaffinity(0))
    thread_mask = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(thread_mask)})  # this thread only (Linux: per thread)
    try:
        assert cpus_here() == 1
    finally:
        os.sched_setaffinity(0, thread_mask)
