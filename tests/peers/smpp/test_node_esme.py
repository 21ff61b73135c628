"""The npm ``smpp`` client (a real ESME nobody here wrote) against simgate's SMPP server:
it binds, submits, and gets a receipt for every message."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from tests.conftest import need_peer
from tests.support.smpp_server import PASSWORD, SYSTEM_ID, running

from .support import NODE_DIR, node_smpp_missing

pytestmark = pytest.mark.peer


async def test_node_smpp_client_submits_and_gets_its_receipts(
    tmp_path: Path, sqlite_url: str
) -> None:
    problem = node_smpp_missing()
    need_peer("node-smpp", not problem, problem)
    count = 20
    async with running(tmp_path, sqlite_url) as rig:
        script = {
            "port": rig.port,
            "system_id": SYSTEM_ID,
            "password": PASSWORD,
            "count": count,
            "dest": "447700900123",
            "wait_ms": 20000,
        }
        proc = await asyncio.create_subprocess_exec(
            "node",
            str(NODE_DIR / "esme.js"),
            cwd=NODE_DIR,
            env={**os.environ, "SMPP_ESME": json.dumps(script)},
            stdout=asyncio.subprocess.PIPE,
        )
        try:
            stdout, _ = await asyncio.wait_for(proc.communicate(), 30)
        finally:
            if proc.returncode is None:
                proc.kill()
        result = json.loads(stdout.decode().strip().splitlines()[-1])
    assert result["bind"] == 0
    ids = [message_id for status, message_id in result["submits"] if status == 0]
    assert len(ids) == count
    assert len(set(ids)) == count
    assert sorted(result["receipts"]) == sorted(ids)
