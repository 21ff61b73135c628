"""Gammu 1.42 (Debian ``gammu``) drives the FakeModem over a pty: ``--identify`` reads what a
modem line reads, and ``sendsms`` hands it an SMS-SUBMIT built by Gammu's own encoder, which
our TPDU decoder (codecs/tpdu.py) must read right."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from simgate.codecs import tpdu
from simgate.testing.fake_modem import FakeModem
from tests.conftest import have, need_peer

pytestmark = pytest.mark.peer


async def gammu(rc: Path, *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        "gammu", "-c", str(rc), *args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
    except TimeoutError:
        proc.kill()  # the process this test started
        await proc.wait()
        raise
    assert proc.returncode == 0, out.decode()
    return out.decode()


async def test_gammu_identifies_and_sends_through_the_fake_modem(tmp_path: Path) -> None:
    need_peer("gammu", have("gammu"), "apt-get install gammu")
    modem = FakeModem()
    path = await modem.open_pty()
    rc = tmp_path / "gammurc"
    rc.write_text(f"[gammu]\ndevice = {path}\nconnection = at\n", encoding="utf-8")
    try:
        out = await gammu(rc, "--identify")
        assert modem.imei in out
        assert modem.imsi in out
        await gammu(rc, "sendsms", "TEXT", "+4917012345678", "-text", "hello from gammu")
    finally:
        await modem.close()
    (pdu_hex,) = modem.submits
    submit = tpdu.decode_submit(bytes.fromhex(pdu_hex))
    assert submit.recipient == "+4917012345678"
    assert submit.smsc == "+15550000000"  # Gammu puts the +CSCA number in front
    assert tpdu.submit_text(submit).text == "hello from gammu"
