"""``simgate run --worker-process`` on SQLite: every wake-up the parent makes reaches the child.

The parent answers HTTP; the worker child sends. Work the parent stores wakes the child
through the datagram pair (dispatch/pipe_wakeup.py), or the child finds it only at its poll.
The polls here are 10 minutes apart, so whatever arrives in this test was woken, not polled.

The wake-up topics the parent makes: QUEUE (accepts, resends: test_worker_child.py), CALLS
(voice sends, told after their commit like QUEUE) and PUSHES. A push the parent stores (here a
Dinstar USSD reply, spec §2.9: the parent asks its line, records the reply, and the push outbox
stores the push in that transaction) was announced with ``relay=False`` (its NOTIFY rides its
own transaction on PostgreSQL), so on SQLite the child never heard of it before its poll.
An operator's push retry wakes through the same relay (tests/services/test_pushes.py).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from simgate.domain.accounts import GatewayRole
from simgate.testing.procs import SimgateProcess, free_port
from simgate.testing.push_receiver import PushReceiver
from tests.process.runs import CLEAN_EXITS
from tests.process.support import add_user, sim_line, simgate_config
from tests.process.worker_children import RUN, started

pytestmark = pytest.mark.slow

USER, PASSWORD = "gw", "gw-password-1"
POLL_S = 600  # every poll of the child: far beyond this test's waits


async def test_a_push_stored_by_the_parent_wakes_the_child(tmp_path: Path) -> None:
    receiver = PushReceiver()
    await receiver.start()
    port = free_port()
    config = simgate_config(
        tmp_path,
        port,
        worker={"idle_poll_seconds": POLL_S, "idle_max_seconds": POLL_S},
        push={"allow_cidrs": ["127.0.0.1/32"], "idle_poll_seconds": POLL_S},
        dinstar={"push_url": receiver.url + "/dinstar", "push_types": ["ussd"]},
        lines=sim_line(tmp_path),
    )
    try:
        await add_user(config, USER, PASSWORD, GatewayRole.OPERATOR)
        with SimgateProcess(RUN, workdir=tmp_path, config=config, port=port) as proc:
            await started(proc, lines_running=True)
            await asyncio.sleep(1.0)  # the child's start-up look is over: it idles now
            async with httpx.AsyncClient(
                base_url=proc.url, timeout=30, auth=(USER, PASSWORD)
            ) as http:
                for i in range(3):  # each push after the child went back to idling
                    answer = await http.post("/api/send_ussd", json={"port": [1], "text": "*100#"})
                    assert answer.status_code == 200, answer.text
                    assert answer.json()["error_code"] == 202, answer.text
                    deadline = time.monotonic() + 30  # far below the 600 s poll
                    while len(receiver.requests) < i + 1:
                        assert time.monotonic() < deadline, "the worker child was not woken"
                        await asyncio.sleep(0.05)
                    await asyncio.sleep(0.5)
            assert b"Balance" in receiver.requests[0].body
            assert proc.stop() in CLEAN_EXITS
    finally:
        await receiver.stop()
