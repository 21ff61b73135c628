"""Kannel 1.4.5 (Debian ``kannel``) as an ESME of simgate's SMPP server: a bearerbox whose
``smsc = smpp`` group binds to simgate sends through it (messages queued by smsbox's
sendsms) and gets its delivery reports back (Kannel calls the dlr-url for each)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from simgate.domain.messages import State
from simgate.testing.procs import free_port
from simgate.testing.push_receiver import PushReceiver
from tests.conftest import have, need_peer
from tests.support.smpp_server import running

pytestmark = pytest.mark.peer

KANNEL_CONF = """
group = core
admin-port = {admin}
admin-password = test
admin-interface = 127.0.0.1
smsbox-port = {smsbox}
smsbox-interface = 127.0.0.1
box-allow-ip = 127.0.0.1
log-file = "{dir}/bearerbox.log"
log-level = 1

group = smsc
smsc = smpp
smsc-id = simgate
host = 127.0.0.1
port = {smpp}
transceiver-mode = true
smsc-username = kannel
smsc-password = kpw
system-type = ""
max-pending-submits = 10
enquire-link-interval = 30
reconnect-delay = 1

group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = {smsbox}
sendsms-port = {sendsms}
sendsms-interface = 127.0.0.1
log-file = "{dir}/smsbox.log"
log-level = 1

group = sendsms-user
username = test
password = test

group = sms-service
keyword = default
text = "ok"
"""


def _wait_listening(port: int, within: float = 30.0) -> None:
    end = time.monotonic() + within
    while time.monotonic() < end:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on {port}")


@contextlib.contextmanager
def kannel(workdir: Path, smpp_port: int) -> Iterator[int]:
    ports = {"admin": free_port(), "smsbox": free_port(), "sendsms": free_port()}
    conf = workdir / "kannel.conf"
    conf.write_text(KANNEL_CONF.format(dir=workdir, smpp=smpp_port, **ports))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for prog in ("bearerbox", "smsbox"):
            if prog == "smsbox":  # smsbox gives up when bearerbox is not listening yet
                _wait_listening(ports["smsbox"])
            procs.append(
                subprocess.Popen(
                    [prog, str(conf)],
                    cwd=workdir,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )
        yield ports["sendsms"]
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                os.kill(p.pid, signal.SIGTERM)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    os.kill(p.pid, signal.SIGKILL)
                    p.wait(5)


async def test_kannel_sends_through_simgate_and_gets_delivery_reports(
    tmp_path: Path, sqlite_url: str
) -> None:
    need_peer("kannel", have("bearerbox") and have("smsbox"), "apt-get install kannel")
    count = 5
    dlrs = PushReceiver()
    await dlrs.start()
    try:
        async with running(tmp_path, sqlite_url) as rig:
            users = rig.runtime.services.smpp_users  # type: ignore[union-attr]
            assert users is not None
            await users.create(account="acme", system_id="kannel", password="kpw")
            workdir = tmp_path / "kannel"
            workdir.mkdir()
            with kannel(workdir, rig.port) as sendsms:
                url = f"http://127.0.0.1:{sendsms}/cgi-bin/sendsms"
                async with httpx.AsyncClient(timeout=10) as http:
                    for i in range(count):
                        params = {
                            "username": "test",
                            "password": "test",
                            "from": "Acme",
                            "to": f"44770090012{i}",
                            "text": f"kannel message {i}",
                            "dlr-mask": "3",  # delivered | failed
                            "dlr-url": f"{dlrs.url}/dlr?n={i}&type=%d&smsc_id=%F",
                        }
                        r: httpx.Response | None = None
                        for _ in range(600):  # until smsbox is up (slow on a busy machine)
                            with contextlib.suppress(httpx.HTTPError):
                                r = await http.get(url, params=params)
                                break
                            await asyncio.sleep(0.1)
                        assert r is not None, "smsbox did not answer"
                        assert r.status_code == 202, r.text
                loop = asyncio.get_running_loop()
                end = loop.time() + 60
                while len(dlrs.requests) < count:
                    assert loop.time() < end, f"{len(dlrs.requests)} DLRs of {count}"
                    await asyncio.sleep(0.1)
            async with rig.runtime.store.db.read() as conn:
                rows = await rig.runtime.store.messages.page(conn, limit=100)
    finally:
        await dlrs.stop()
    texts = sorted(r.text for r in rows)
    assert texts == sorted(f"kannel message {i}" for i in range(count))
    assert all(r.dialect == "smpp" and r.state is State.DELIVERED for r in rows)
    reported = [parse_qs(urlsplit(req.target).query) for req in dlrs.requests]
    assert sorted(q["n"][0] for q in reported) == [str(i) for i in range(count)]
    assert {q["type"][0] for q in reported} == {"1"}  # 1: delivered to the phone
