"""Sync mode across processes (spec §7): ``simgate serve`` answers, ``simgate worker`` sends.

On PostgreSQL the API and the worker are separate processes sharing only the database, so
``/sms/send`` in mode 1 must learn the line's answer from the database (polling), not from
in-process events. Both subprocesses are stopped by their own pids.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from simgate.settings import load_settings
from simgate.testing.procs import SimgateProcess, free_port, write_config
from tests.api.openvox.conftest import PASSWORD, USER
from tests.conftest import need_peer
from tests.process.support import open_services
from tests.support.pg import truncate_pg

pytestmark = pytest.mark.slow


def _settings(tmp_path: Path, url: str, port: int) -> dict[str, Any]:
    return {
        "data_dir": str(tmp_path / "data"),
        "database_url": url,
        "master_key": "openvox-process-test-key-0123456789",
        "log_level": "warning",
        "demo": {"create": False},
        "http": {"port": port},
        "worker": {"idle_poll_seconds": 0.02},
    }


async def test_sync_send_with_a_separate_worker_process(pg_url: str | None, tmp_path: Path) -> None:
    need_peer("postgresql", pg_url is not None)
    assert pg_url is not None
    await truncate_pg(pg_url)
    port = free_port()
    data = _settings(tmp_path, pg_url, port)
    rt = await open_services(load_settings(None, overrides=data))
    try:
        assert rt.services is not None
        account = await rt.services.accounts.create_account(name="acme", balance="10")
        await rt.services.accounts.create_user(account.id, username=USER, password=PASSWORD)
    finally:
        await rt.close()
    cfg = write_config(tmp_path / "simgate.toml", data)
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
