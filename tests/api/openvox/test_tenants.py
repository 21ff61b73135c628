"""Issue 14 items 1 and 8 on the OpenVox API, red-team shape: two accounts on one gateway,
the attacker (``bob``, account ``beta``) with its own gateway user through the real HTTP API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from simgate.domain.messages import State
from simgate.testing.clock import FakeClock
from tests.api.openvox.conftest import OV, open_ov, settle

REFUSED = 401  # the envelope's code for credentials that may not do this (spec §7)
BOB = {"username": "bob", "password": "bob-pass-12"}
PUSH = {
    "enable": 1,
    "url_http": "http",
    "url_host": "93.184.216.34",
    "url_port": "80",
    "url_path": "/bob",
}


async def _bob(ov: OV) -> None:
    beta = await ov.sv.accounts.create_account(name="beta", balance="100")
    await ov.sv.accounts.create_user(beta.id, username="bob", password=BOB["password"])


async def _as_bob(ov: OV, uri: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    return await ov.post(uri, {**BOB, **(body or {})})


async def test_a_locked_account_is_refused_everywhere(
    backend: str, tmp_path: Path, clock: FakeClock
) -> None:
    rt, ov = await open_ov(backend, tmp_path, clock)
    try:
        await _bob(ov)
        assert (await _as_bob(ov, "/smsoutbox/get_config"))["code"] == 200  # cached login now
        await ov.sv.accounts.set_locked("beta", True)
        await clock.advance(2)  # past the account cache, well inside the login cache
        for uri, body in (
            ("/sms/get_valid_spans", None),
            ("/smsoutbox/get", None),
            ("/smsinbox/get", None),
            ("/smsoutbox/get_config", None),
            ("/smsoutbox/set_config", PUSH),
            ("/sms/send", {"dest_num": "8613800000001", "msg": "hi"}),
        ):
            doc = await _as_bob(ov, uri, body)
            assert doc["code"] == REFUSED, (uri, doc)
            assert "locked" in doc["msg"], (uri, doc)
        await ov.sv.accounts.set_locked("beta", False)
        await clock.advance(2)
        config = (await _as_bob(ov, "/smsoutbox/get_config"))["data"][0]
        assert config["enable"] == 0  # the refused set_config changed nothing
        assert config["url_host"] != PUSH["url_host"]
    finally:
        await ov.client.aclose()
        await rt.close()


async def test_assigned_ports_are_their_accounts(
    backend: str, tmp_path: Path, clock: FakeClock
) -> None:
    rt, ov = await open_ov(
        backend, tmp_path, clock, lines={"sim": {"port_owners": {"0": "acme", "1": "beta"}}}
    )
    try:
        await _bob(ov)
        spans = await _as_bob(ov, "/sms/get_valid_spans")
        # Ports are 1-based on the wire: beta's port 2 and the shared 3..8, not acme's 1.
        assert [s["port"] for s in spans["data"]] == [2, 3, 4, 5, 6, 7, 8]
        doc = await _as_bob(
            ov, "/sms/send", {"spans": [1], "dest_num": "8613800000001", "msg": "x"}
        )
        assert doc["code"] == REFUSED
        assert "another account" in doc["msg"]
        # acme's gateway user sees its own and the shared ports, not beta's.
        mine = await ov.post("/sms/get_valid_spans")
        assert [s["port"] for s in mine["data"]] == [1, 3, 4, 5, 6, 7, 8]
        # Without spans, bob's messages go out on ports he may use only.
        await rt.start_worker()
        dests = ",".join(f"86138000000{i:02d}" for i in range(8))
        doc = await _as_bob(ov, "/sms/send", {"dest_num": dests, "msg": "hi"})
        assert doc["code"] == 200
        rows = await settle(ov, [i["id"] for i in doc["data"]], {State.SENT, State.DELIVERED})
        assert {r.port for r in rows.values()} <= {1, 2, 3, 4, 5, 6, 7}
    finally:
        await ov.client.aclose()
        await rt.close()


async def test_an_account_without_ports_sends_nowhere(
    backend: str, tmp_path: Path, clock: FakeClock
) -> None:
    rt, ov = await open_ov(backend, tmp_path, clock, lines={"sim": {"owner": "acme"}})
    try:
        await _bob(ov)
        assert (await _as_bob(ov, "/sms/get_valid_spans"))["data"] == []
        doc = await _as_bob(ov, "/sms/send", {"dest_num": "8613800000001", "msg": "x"})
        assert doc["code"] == REFUSED  # never "no hint", which would mean any port
        async with ov.rt.store.db.read() as conn:
            assert await ov.rt.store.messages.page(conn, account_id=ov.account.id + 1) == []
    finally:
        await ov.client.aclose()
        await rt.close()
