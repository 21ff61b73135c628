"""Two workers and two API processes on one PostgreSQL database (design: process roles).

20 000 messages are queued through the service layer while two ``simgate worker`` processes
drive one shared, non-exclusive sim line; the queue is claimed with ``FOR UPDATE SKIP
LOCKED`` leases, so every message must reach the line exactly once (the journal is opened
O_APPEND by both, one ``write`` per line, so lines never interleave) and both workers must
have taken leases. The two ``simgate serve`` processes answer /healthz and /metrics.
``scripts/bench --only scale`` runs the same driver beside a one-worker baseline.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from simgate.domain.messages import State
from tests.process.runs import scale_run
from tests.process.support import empty_pg

pytestmark = [pytest.mark.slow, pytest.mark.pg]

TOTAL = 20_000


async def test_two_workers_two_apis_submit_each_message_exactly_once(
    tmp_path: Path, pg_url: str | None
) -> None:
    run = await scale_run(tmp_path, pg_url=await empty_pg(pg_url), total=TOTAL, workers=2, apis=2)

    assert len(set(run.ids)) == TOTAL
    assert run.final == {State.DELIVERED: TOTAL}
    assert set(run.submitted) == set(run.ids)
    assert set(run.submitted.values()) == {1}, "a message was submitted more than once"
    assert len(run.lease_owners) == 2, f"only these workers took leases: {run.lease_owners}"
    assert run.health == [{"status": "ok"}] * 2
    assert run.queue_depth == [0.0, 0.0]
