"""``simgate run --worker-process``: the worker child's receipts wake the parent's SMPP server.

The parent runs the SMPP server; the child records the sim line's reports, and the receipts
they owe are stored in the child's commits (services/smpp_outbox.py). The deliverers here
read their outbox every 10 minutes only (``deliver_poll_seconds``), as do the worker's loops:
whatever arrives within this test's waits was woken (SQLite: the datagram pair, both ways,
dispatch/pipe_wakeup.py; PostgreSQL: a NOTIFY that the commit delivers).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from simgate.codecs.smpp import SubmitSm
from simgate.settings import load_settings
from simgate.testing.procs import SimgateProcess, free_port
from tests.process.runs import CLEAN_EXITS
from tests.process.support import database_url, open_services, sim_line, simgate_config
from tests.process.worker_children import RUN, started
from tests.support.smpp_server import PASSWORD, SYSTEM_ID, Esme

pytestmark = pytest.mark.slow

POLL_S = 600  # every poll: far beyond this test's waits
ROUNDS = 3


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("pg", marks=pytest.mark.pg)])
async def test_receipts_the_worker_child_stores_wake_the_parents_deliverer(
    tmp_path: Path, backend: str, pg_url: str | None
) -> None:
    url = await database_url(backend, pg_url)
    http_port, smpp_port = free_port(), free_port()
    config = simgate_config(
        tmp_path,
        http_port,
        url,
        worker={"idle_poll_seconds": POLL_S, "idle_max_seconds": POLL_S},
        smpp_server={"enabled": True, "port": smpp_port, "deliver_poll_seconds": POLL_S},
        lines=sim_line(tmp_path),
    )
    rt = await open_services(load_settings(config))
    sv = rt.services
    assert sv is not None
    assert sv.smpp_users is not None
    try:
        await sv.accounts.create_account(name="acme", balance="1000")
        await sv.smpp_users.create(account="acme", system_id=SYSTEM_ID, password=PASSWORD)
    finally:
        await rt.close()
    with SimgateProcess(RUN, workdir=tmp_path, config=config, port=http_port) as proc:
        await started(proc, lines_running=True)
        esme = await Esme.connect(smpp_port)
        try:
            await esme.bind("trx")
            await asyncio.sleep(1.0)  # the bind's first look is over: the deliverer idles
            for i in range(ROUNDS):  # each after the deliverer went back to idling
                await esme.request(
                    SubmitSm(
                        destination_addr="447700900123",
                        short_message=f"m{i}".encode(),
                        registered_delivery=1,
                    ),
                    within=30.0,
                )
                deadline = time.monotonic() + 30  # far below the 600 s polls
                while len(esme.delivered) < i + 1:
                    assert time.monotonic() < deadline, "the receipt did not wake the server"
                    await asyncio.sleep(0.02)
                await asyncio.sleep(0.5)
            assert len(esme.delivered) == ROUNDS
        finally:
            await esme.close()
        assert proc.stop() in CLEAN_EXITS
