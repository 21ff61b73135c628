"""Issue 14 items 1 and 8, red-team shape: two accounts on one gateway, the attacker acting
with its own gateway user through the real HTTP API.

``admin`` (the fixture's user, account ``acme``) is the operator; ``alice`` (acme) and
``bob`` (account ``beta``) are account users, the role every gateway user gets by default.
"""

from __future__ import annotations

from typing import Any

import httpx

from simgate.domain.messages import State
from tests.api.dinstar.conftest import Gw, GwFactory

REFUSED = 500  # the envelope's "other errors" (spec §2.1): AccessDenied / AccountLocked
ALL_PORTS = ",".join(str(p) for p in range(8))


async def _tenants(gw: Gw) -> tuple[httpx.AsyncClient, httpx.AsyncClient]:
    beta = await gw.sv.accounts.create_account(name="beta", balance="100")
    await gw.sv.accounts.create_user(gw.account.id, username="alice", password="alice-pass-1")
    await gw.sv.accounts.create_user(beta.id, username="bob", password="bob-pass-12")
    transport = gw.client._transport
    alice = httpx.AsyncClient(
        transport=transport, base_url="http://t", auth=("alice", "alice-pass-1")
    )
    bob = httpx.AsyncClient(transport=transport, base_url="http://t", auth=("bob", "bob-pass-12"))
    return alice, bob


async def _call(client: httpx.AsyncClient, path: str, body: dict[str, Any] | None = None) -> Any:
    r = await client.post(path, json=body) if body is not None else await client.get(path)
    assert r.status_code == 200, r.text  # never an HTTP error: the code is in the body
    return r.json()


def _send(number: str) -> dict[str, Any]:
    return {"text": "hi", "param": [{"number": number}]}


async def test_an_account_user_cannot_control_ports(gw: Gw) -> None:
    alice, bob = await _tenants(gw)
    await gw.rt.start_worker()
    for action in ("lock", "power&param=off", "reset", "block"):
        doc = await _call(bob, f"/api/set_port_info?port={ALL_PORTS}&action={action}")
        assert doc["error_code"] == REFUSED, (action, doc)
        assert "operator" in doc["error_msg"]
    assert all(p.usable for p in gw.line.ports())
    # acme's traffic goes on.
    sent = await _call(alice, "/api/send_sms", _send("8613800000001"))
    assert sent["error_code"] == 202
    await gw.settle(await gw.message_ids(), State.DELIVERED)
    # The operator still can.
    doc = await _call(gw.client, "/api/set_port_info?port=0&action=lock")
    assert doc["error_code"] == 200
    assert not gw.line.ports()[0].usable


async def test_ussd_replies_belong_to_the_account_that_asked(gw: Gw) -> None:
    alice, bob = await _tenants(gw)
    doc = await _call(alice, "/api/send_ussd", {"port": [2], "text": "*123#"})
    assert doc["result"] == [{"port": 2, "status": 200}]
    seen = await _call(bob, "/api/query_ussd_reply?port=2")
    assert seen["reply"] == [{"port": 2, "text": " "}]  # nothing for bob
    mine = await _call(alice, "/api/query_ussd_reply?port=2")
    assert mine["reply"] == [{"port": 2, "text": "Menu: 1. Balance 2. Data"}]
    every = await _call(gw.client, "/api/query_ussd_reply?port=2")  # the operator sees all
    assert every["reply"] == mine["reply"]


async def test_the_queue_count_is_the_callers(gw: Gw) -> None:
    alice, bob = await _tenants(gw)
    # No worker runs here: what alice sends stays queued.
    for i in range(3):
        doc = await _call(alice, "/api/send_sms", _send(f"861380000000{i}"))
        assert doc["error_code"] == 202
    assert (await _call(alice, "/api/query_sms_in_queue"))["in_queue"] == 3
    assert (await _call(bob, "/api/query_sms_in_queue"))["in_queue"] == 0
    doc = await _call(bob, "/api/send_sms", _send("8613800000009"))
    assert doc["sms_in_queue"] == 1  # bob's own
    assert (await _call(gw.client, "/api/query_sms_in_queue"))["in_queue"] == 4


async def test_assigned_ports_are_their_accounts(make_gw: GwFactory) -> None:
    gw = await make_gw(lines={"sim": {"port_owners": {"4": "beta", "5": "beta", "0": "acme"}}})
    _, bob = await _tenants(gw)
    info = await _call(bob, "/api/get_port_info")
    # bob: beta's ports 4 and 5, and the unassigned ones (shared) without their SIM ids.
    assert [p["port"] for p in info["info"]] == [1, 2, 3, 4, 5, 6, 7]
    own = {p["port"]: p for p in info["info"]}
    assert own[4]["imsi"]
    assert own[4]["iccid"]
    assert (own[1]["imsi"], own[1]["iccid"], own[1]["number"]) == ("", "", "")
    # acme's port 0: not bob's to read, to send on, or to ask USSD on.
    assert (await _call(bob, "/api/get_port_info?port=0"))["error_code"] == REFUSED
    assert (await _call(bob, "/api/query_ussd_reply?port=0"))["error_code"] == REFUSED
    doc = await _call(bob, "/api/send_ussd", {"port": [0], "text": "*100#"})
    assert doc["error_code"] == REFUSED
    doc = await _call(bob, "/api/send_sms", {**_send("8613800000001"), "port": [0]})
    assert doc["error_code"] == REFUSED
    # Without a port, bob's messages go out on ports he may use, never on acme's.
    await gw.rt.start_worker()
    many = {"text": "hi", "param": [{"number": f"86138000000{i:02d}"} for i in range(8)]}
    doc = await _call(bob, "/api/send_sms", many)
    assert doc["error_code"] == 202
    async with gw.rt.store.db.read() as conn:
        rows = await gw.rt.store.messages.page(conn, account_id=gw.account.id + 1, limit=10)
    await gw.settle([r.id for r in rows], State.DELIVERED)
    async with gw.rt.store.db.read() as conn:
        rows = await gw.rt.store.messages.page(conn, account_id=gw.account.id + 1, limit=10)
    assert len(rows) == 8
    assert {r.port for r in rows} <= {1, 2, 3, 4, 5, 6, 7}
    # The operator sees every port with its SIM ids.
    every = await _call(gw.client, "/api/get_port_info")
    assert [p["port"] for p in every["info"]] == list(range(8))
    assert all(p["imsi"] for p in every["info"])


async def test_a_locked_account_is_refused_everywhere(gw: Gw) -> None:
    """Item 8: like itniotech's -13, a locked account can neither read nor act."""
    alice, bob = await _tenants(gw)
    await _call(bob, "/api/send_ussd", {"port": [3], "text": "*123#"})
    await gw.sv.accounts.set_locked("beta", True)
    await gw.clock.advance(2)  # past the per-process account cache (context.ACCOUNT_TTL_S)
    for path, body in (
        ("/api/query_sms_result", None),
        ("/api/query_sms_deliver_status", None),
        ("/api/query_incoming_sms", None),
        ("/api/query_sms_in_queue", None),
        ("/api/get_port_info", None),
        ("/api/query_ussd_reply?port=3", None),
        ("/api/send_ussd", {"port": [3], "text": "*100#"}),
        ("/api/stop_sms?task_id=1", None),
        ("/api/send_sms", _send("8613800000001")),
    ):
        doc = await _call(bob, path, body)
        assert doc["error_code"] == REFUSED, (path, doc)
        assert "locked" in doc["error_msg"], (path, doc)
    # A locked operator cannot control ports either.
    await gw.sv.accounts.set_locked("acme", True)
    await gw.clock.advance(2)
    doc = await _call(gw.client, f"/api/set_port_info?port={ALL_PORTS}&action=lock")
    assert doc["error_code"] == REFUSED
    assert all(p.usable for p in gw.line.ports())
    # alice (acme, locked too) and the unlocked accounts: unlocking restores service.
    await gw.sv.accounts.set_locked("acme", False)
    await gw.clock.advance(2)
    assert (await _call(alice, "/api/query_sms_in_queue"))["error_code"] == 200


async def test_an_account_without_ports_sends_nowhere(make_gw: GwFactory) -> None:
    gw = await make_gw(lines={"sim": {"owner": "acme"}})
    _, bob = await _tenants(gw)
    assert (await _call(bob, "/api/get_port_info"))["info"] == []
    doc = await _call(bob, "/api/send_sms", _send("8613800000001"))
    assert doc["error_code"] == 550  # no available port (spec §2.2), never "any port"
