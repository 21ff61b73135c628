"""Sync mode across processes (spec §7): ``simgate serve`` answers, ``simgate worker`` sends.

On PostgreSQL the API and the worker are separate processes sharing only the database, so
``/sms/send`` in mode 1 must learn the line's answer from the database (polling), not from
in-process events. Both subprocesses are stopped by their own pids.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from simgate.testing.procs import SimgateProcess, free_port
from tests.api.openvox.conftest import PASSWORD, USER
from tests.process.support import add_user, empty_pg, simgate_config

pytestmark = pytest.mark.slow


async def test_sync_send_with_a_separate_worker_process(pg_url: str | None, tmp_path: Path) -> None:
    port = free_port()
    url = await empty_pg(pg_url)
    cfg = simgate_config(tmp_path, port, url, worker={"idle_poll_seconds": 0.02})
    await add_user(cfg, USER, PASSWORD)
    with (
        SimgateProcess(["worker"], workdir=tmp_path, config=cfg) as worker,
        SimgateProcess(["serve"], workdir=tmp_path, config=cfg, port=port) as api,
    ):
        worker.wait_output("simgate worker running")
        api.wait_healthy(60)
        creds = {"username": USER, "password": PASSWORD}
        async with httpx.AsyncClient(base_url=api.url, timeout=60) as client:
            r = await client.post(
                "/sms/send",
                json={**creds, "spans": [2], "dest_num": "8613800138000", "msg": "x", "mode": 1},
            )
            doc = r.json()
            assert doc["code"] == 200, doc
            (item,) = doc["data"]
            assert (item["status"], item["port"]) == ("SENT", 2)
            r = await client.post("/smsoutbox/get", json=creds)
            (row,) = r.json()["data"]
            assert row["id"] == item["id"]
            assert row["status"] in ("SENT", "DELIVERD")
        worker.stop()
        api.stop()
