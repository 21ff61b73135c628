"""``simgate run --worker-process``: one /metrics with the worker child's counters (issue 15).

Real processes: the worker child dispatches (it alone counts submits), and the parent's
/metrics shows its count; after a SIGKILL of the child the count does not go down, neither
while the parent starts a new child nor after (Prometheus would read a drop as a reset and
count everything again), and what the new child submits adds to it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from simgate.settings import load_settings
from simgate.testing.procs import SimgateProcess, free_port
from tests.process.runs import CLEAN_EXITS
from tests.process.support import (
    database_url,
    enqueue,
    make_account,
    metric_total,
    open_services,
)
from tests.process.worker_children import (
    RUN,
    child_config,
    one_worker_child,
    started,
    worker_children,
)

pytestmark = pytest.mark.slow


def _submits(text: str) -> float:
    """Submits counted by every process behind this /metrics (every outcome)."""
    return metric_total(text, "simgate_line_submits")


def _samples(text: str, name: str) -> list[Any]:
    return [s for f in text_string_to_metric_families(text) for s in f.samples if s.name == name]


async def _metrics(http: httpx.AsyncClient) -> str:
    answer = await http.get("/metrics")
    assert answer.status_code == 200, answer.text
    return answer.text


async def _until_submits(http: httpx.AsyncClient, want: float) -> str:
    deadline = time.monotonic() + 60
    while True:
        text = await _metrics(http)
        if _submits(text) >= want:
            return text
        assert time.monotonic() < deadline, f"{_submits(text)} submits on /metrics, want {want}"
        await asyncio.sleep(0.1)


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("pg", marks=pytest.mark.pg)])
async def test_the_parent_metrics_show_the_worker_childs_counters(
    tmp_path: Path, backend: str, pg_url: str | None
) -> None:
    url = await database_url(backend, pg_url)
    port = free_port()
    # Quick polls: the test process queues (it is not the parent, whose wake-ups it lacks).
    config = child_config(tmp_path, port, url, idle_poll_seconds=0.05, idle_max_seconds=0.2)
    rt = await open_services(load_settings(config))
    assert rt.services is not None
    try:
        account = await make_account(rt.services)
        with SimgateProcess(RUN, workdir=tmp_path, config=config, port=port) as proc:
            first = await started(proc)
            async with httpx.AsyncClient(base_url=proc.url, timeout=30) as http:
                assert _submits(await _metrics(http)) == 0
                await enqueue(rt.services, account, 30, batch=10)
                text = await _until_submits(http, 30)
                assert _submits(text) == 30  # the child's count, once (not per process)
                assert len(_samples(text, "simgate_queue_depth")) == 1  # one family, merged

                os.kill(first, signal.SIGKILL)  # our test's own grandchild, by its pid
                # While the parent has no child, and after it started the next: never less.
                second = 0
                deadline = time.monotonic() + 60
                while not second:
                    assert _submits(await _metrics(http)) == 30
                    found = [c for c in worker_children(proc.pid) if c != first]
                    second = found[0] if found else 0
                    assert time.monotonic() < deadline, "no new worker child"
                    await asyncio.sleep(0.05)
                await one_worker_child(proc.pid, not_in=frozenset({first}))
                assert _submits(await _metrics(http)) == 30

                await enqueue(rt.services, account, 20, batch=10, start=30)
                text = await _until_submits(http, 50)
                assert _submits(text) == 50
            assert proc.stop() in CLEAN_EXITS
    finally:
        await rt.close()
