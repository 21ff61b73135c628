"""A line of 4 FakeModems (2 on ptys, 2 over TCP) behind the three APIs: mixed
messages to DELIVERED from inline and stored reports, before and after the +CMGS answer;
every part's PDU read by an independent decoder; ``ref_id`` and ``imsi`` as the modems gave
them; incoming SMS (parts out of order, UCS-2) once each in the three inboxes; port info."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from gsmmodem import pdu as oracle

from simgate.api.dialects.dinstar.settings import PUSH_TYPES
from simgate.api.dialects.itnio.auth import sign
from simgate.domain.accounts import Account, ApiKey, App, AppKind, GatewayRole
from simgate.domain.messages import State
from simgate.lines.base import PortAction
from simgate.lines.modem import ModemLine
from simgate.runtime import Runtime
from simgate.testing.clock import FakeClock
from simgate.testing.fake_modem import FakeModem
from tests.api.dinstar.conftest import PushLog
from tests.conftest import make_settings
from tests.lines.modem.conftest import FAST, until
from tests.support.pg import truncate_pg

USER, PASSWORD = "admin", "s3cret-pass"
TEXTS = [
    "short gsm",
    "Grüße aus Köln, 你好",  # UCS-2
    "A long GSM-7 text that needs more than one part to go out. " * 4,
    "Длинное сообщение в UCS-2, которое не помещается в одну часть. " * 2,
]


@dataclass(repr=False)
class Site:
    rt: Runtime
    client: httpx.AsyncClient
    clock: FakeClock
    account: Account
    modems: list[FakeModem]
    app: App
    key: ApiKey

    @property
    def line(self) -> ModemLine:
        line = self.rt.services.lines["gsm"] if self.rt.services else None
        assert isinstance(line, ModemLine)
        return line

    async def until(self, check: Any, what: str) -> None:
        for _ in range(6000):
            if await check():
                return
            await self.clock.advance(0.05)
            await asyncio.sleep(0.005)
        states: dict[str, int] = {}
        for st in await self.states():
            states[st.name] = states.get(st.name, 0) + 1
        ports = [(p.reg, p.usable) for p in self.line.ports()]
        raise AssertionError(f"never reached: {what}; messages {states}; ports {ports}")

    async def states(self) -> list[State]:
        async with self.rt.store.db.read() as conn:
            rows = await self.rt.store.messages.page(conn, account_id=self.account.id, limit=1000)
        return [r.state for r in rows]


@pytest.fixture
async def site(backend: str, tmp_path: Path, clock: FakeClock) -> AsyncIterator[Site]:
    if backend.startswith("postgresql"):
        await truncate_pg(backend)
    modems = [FakeModem(imsi=f"46000999000000{i}", imei=f"35693803564380{i}") for i in range(4)]
    modems[1].behaviour.reports = "stored"
    modems[2].behaviour.report_first = True
    modems[3].behaviour.reports, modems[3].behaviour.report_first = "stored", True
    urls = [await m.open_pty() for m in modems[:2]] + [await m.serve_tcp() for m in modems[2:]]
    # Timeouts on the fake clock, which ``until`` moves by 0.05 s a turn whatever the real
    # I/O takes: short ones fire spuriously on a loaded machine (a modem answering late
    # made a message UNKNOWN). Nothing here needs them: a dropped TCP line ends in EOF.
    slack = {"command_timeout": 60.0, "send_timeout": 60.0}
    line = {"driver": "modem", "ports": urls, "owner": "acme", **FAST, **slack}
    settings = make_settings(
        tmp_path, backend, lines={"gsm": line}, routes=[{"prefix": "", "lines": ["gsm"]}]
    )
    rt = Runtime(settings, role="admin", clock=clock)
    sv = await rt.open()
    account = await sv.accounts.create_account(name="acme", balance="100")
    await sv.accounts.create_user(
        account.id, username=USER, password=PASSWORD, role=GatewayRole.OPERATOR
    )
    app = await sv.accounts.create_app(account.id, kind=AppKind.SMS)
    key = await sv.accounts.create_key(account.id)
    transport = httpx.ASGITransport(app=rt.app(), client=("127.0.0.1", 5000))
    client = httpx.AsyncClient(transport=transport, base_url="http://t", auth=(USER, PASSWORD))
    await rt.start_worker()
    s = Site(rt, client, clock, account, modems, app, key)

    async def ready() -> bool:
        return all(p.usable for p in s.line.ports())

    await s.until(ready, "ports ready")
    try:
        yield s
    finally:
        await client.aclose()
        # Bounded: a stop that hangs fails here, with its stack, not at the CI's timeout.
        await asyncio.wait_for(rt.close(), 60)
        for m in modems:
            await m.close()


async def post(s: Site, path: str, body: dict[str, Any]) -> dict[str, Any]:
    r = await s.client.post(path, json=body)
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()
    return data


async def ov(s: Site, uri: str, body: dict[str, Any]) -> dict[str, Any]:
    return await post(s, uri, {"username": USER, "password": PASSWORD, **body})


async def itnio(s: Site, path: str, body: dict[str, Any]) -> dict[str, Any]:
    ts = str(s.clock.now_ms() // 1000)
    headers = {
        "Content-Type": "application/json;charset=UTF-8",
        "Api-Key": s.key.key,
        "Timestamp": ts,
        "Sign": sign(s.key.key, s.key.secret, ts),
    }
    r = await s.client.post(path, json={"appId": s.app.app_id, **body}, headers=headers)
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()
    return data


async def send_mix(s: Site, rounds: int) -> dict[str, str]:
    """Per port and round: the 4 texts through Dinstar, one through OpenVox, one through
    itniotech. Returns recipient → text."""
    wanted: dict[str, str] = {}
    for r in range(rounds):
        for port in range(4):
            for i, text in enumerate(TEXTS):
                uid = 1000 * r + 100 * port + i + 1
                number = f"49170{uid:07d}"
                doc = await post(
                    s,
                    "/api/send_sms",
                    {"text": text, "port": [port], "param": [{"number": number, "user_id": uid}]},
                )
                assert doc["error_code"] == 202
                wanted[number] = text
            number = f"4917055{r:03d}{port}"
            body = {"spans": [port + 1], "dest_num": number, "msg": TEXTS[port]}
            assert (await ov(s, "/sms/send", body))["code"] == 200
            wanted[number] = TEXTS[port]
            number = f"4917066{r:03d}{port}"
            doc = await itnio(s, "/sms/sendSms", {"numbers": number, "content": TEXTS[port]})
            assert doc["status"] == "0", doc
            wanted[number] = TEXTS[port]
    return wanted


async def all_delivered_once(
    s: Site, wanted: dict[str, str], *, unknown_ok_on: int | None = None
) -> None:
    """Every message DELIVERED (or, on port ``unknown_ok_on``, UNKNOWN: its +CMGS answer
    lost with the line, so it may have left and is never resent), each sent once, whole
    (an UNKNOWN one: the parts that went before the line dropped, none twice)."""

    async def delivered() -> bool:
        async with s.rt.store.db.read() as conn:
            rows = await s.rt.store.messages.page(conn, account_id=s.account.id, limit=1000)
        return len(rows) == len(wanted) and all(
            r.state is State.DELIVERED or (r.state is State.UNKNOWN and r.port == unknown_ok_on)
            for r in rows
        )

    await s.until(delivered, "every message DELIVERED")
    async with s.rt.store.db.read() as conn:
        rows = await s.rt.store.messages.page(conn, account_id=s.account.id, limit=1000)
    unknown = {r.recipient.lstrip("+") for r in rows if r.state is State.UNKNOWN}
    # Every part decodes right with an independent decoder, and each message went once, whole.
    got: dict[str, str] = {}
    for modem in s.modems:
        on_modem: dict[str, str] = {}
        for h in modem.submits:
            theirs = oracle.decodeSmsPdu(h)
            assert theirs["type"] == "SMS-SUBMIT"
            on_modem[theirs["number"]] = on_modem.get(theirs["number"], "") + theirs["text"]
        assert not set(on_modem) & set(got)  # no message on two ports
        got.update(on_modem)

    # A message sent twice would read twice here. (Compared by hand: pytest's diff of two
    # dicts of 200 long texts takes minutes.)
    def went_right(number: str) -> bool:
        sent, text = got.get(number, ""), wanted.get(number, "")
        return sent == text or (number in unknown and text.startswith(sent))

    wrong = sorted(k for k in set(got) | set(wanted) if not went_right(k))
    assert not wrong, [
        (k, k in unknown, len(got.get(k, "")), len(wanted.get(k, "")), got.get(k, "")[:40])
        for k in wrong[:5]
    ]


async def test_messages_through_the_three_apis_reach_delivered(site: Site) -> None:
    s = site
    await all_delivered_once(s, await send_mix(s, rounds=1))
    # query_sms_result: ref_id = the modem's TP-MR of the first part, imsi = the port's SIM.
    q = await post(s, "/api/query_sms_result", {"user_id": [301, 302, 303, 304]})
    rows = sorted(q["result"], key=lambda r: r["user_id"])
    # The fake modem numbers parts 0, 1, 2... in the order it took them.
    numbers = [oracle.decodeSmsPdu(h)["number"] for h in s.modems[3].submits]
    firsts = [numbers.index(r["number"]) for r in rows]
    assert len(set(firsts)) == 4
    assert [r["ref_id"] for r in rows] == firsts
    assert {r["imsi"] for r in rows} == {"460009990000003"}
    assert {r["status"] for r in rows} == {"DELIVERED"}
    info = await post(s, "/api/get_port_info", {"port": "0,3", "info_type": "imei,imsi,reg,signal"})
    assert info["info"][1] == {
        "port": 3,
        "imei": "356938035643803",
        "imsi": "460009990000003",
        "reg": "REGISTER_OK",
        "signal": 23,
    }
    spans = await ov(s, "/sms/get_valid_spans", {})
    assert [sp["status"] for sp in spans["data"]] == [1, 1, 1, 1]


async def test_incoming_parts_out_of_order_and_ucs2_once_each(site: Site) -> None:
    s = site
    long_text = "An incoming long message, in three parts or so. " * 8  # 392: 3 parts
    s.modems[0].deliver(sender="+4915100000001", text=long_text, order=[2, 0, 1])
    s.modems[1].deliver(sender="+4915100000002", text="Привет 😀", stored=True)
    s.modems[2].deliver(sender="+4915100000003", text="plain")

    async def three() -> bool:
        doc = await post(s, "/api/query_incoming_sms", {"incoming_sms_id": 0})
        return len(doc.get("sms", [])) >= 3

    await s.until(three, "three incoming SMS")
    doc = await post(s, "/api/query_incoming_sms", {"incoming_sms_id": 0})
    texts = sorted(m["text"] for m in doc["sms"])
    assert texts == sorted([long_text, "Привет 😀", "plain"])
    assert {m["port"] for m in doc["sms"]} == {0, 1, 2}
    inbox = await ov(s, "/smsinbox/get", {})
    assert sorted(r["message"] for r in inbox["data"]) == texts
    now = dt.datetime.fromtimestamp(s.clock.now_ms() / 1000, dt.UTC)
    window = {
        "strTime": (now - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S+00:00"),
        "endTime": (now + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S+00:00"),
    }
    mo = await itnio(s, "/sms/recordMo", {"current": 1, "size": 10, "params": window})
    assert mo["status"] == "0", mo
    assert sorted(r["content"] for r in mo["data"]["records"]) == texts


async def test_wrong_pin_shows_pin_require_and_stops_that_port_only(site: Site) -> None:
    s = site
    assert s.rt.services is not None
    await s.rt.services.dinstar.set_push_target(url="http://push.example/d", types=PUSH_TYPES)
    pushes = PushLog(s.rt, s.rt.services)
    assert s.rt.events is not None
    s.rt.events.subscribe(pushes)
    s.modems[2].wrong_pin("9999")
    assert await s.line.control_port(2, PortAction.RESET)

    async def pin_require() -> bool:
        return s.line.ports()[2].reg == "PIN_REQUIRE"

    await s.until(pin_require, "PIN_REQUIRE")
    info = await post(s, "/api/get_port_info", {"port": "1,2", "info_type": "reg"})
    assert [i["reg"] for i in info["info"]] == ["REGISTER_OK", "PIN_REQUIRE"]
    spans = await ov(s, "/sms/get_valid_spans", {})
    assert [sp["status"] for sp in spans["data"]] == [1, 1, 0, 1]
    # The Dinstar register push: port 2 went down (its SIM ids hidden, spec §2.9).
    (down,) = pushes.of("register")
    assert (down["port"], down["status"], down["imsi"]) == (2, "down", "<NULL>")


async def test_report_after_a_restart_between_submit_and_report(
    backend: str, tmp_path: Path, clock: FakeClock
) -> None:
    """simgate stops after the +CMGS answer; the report waits in the modem's storage (its
    +CDSI unheard); the next start sweeps storage and the journal finds the message.

    The report is held until simgate is gone, not sent after a delay: a delay raced the
    SENT poll and the shutdown under load (then the report was heard live, and read)."""
    if backend.startswith("postgresql"):
        await truncate_pg(backend)
    modem = FakeModem()
    modem.behaviour.reports = "stored"
    modem.holds_reports()
    url = await modem.serve_tcp()
    line = {"driver": "modem", "ports": [url], "owner": "acme", **FAST}
    settings = make_settings(
        tmp_path, backend, lines={"gsm": line}, routes=[{"prefix": "", "lines": ["gsm"]}]
    )

    async def started() -> tuple[Runtime, httpx.AsyncClient]:
        rt = Runtime(settings, role="admin", clock=clock)
        await rt.open()
        transport = httpx.ASGITransport(app=rt.app())
        client = httpx.AsyncClient(transport=transport, base_url="http://t", auth=(USER, PASSWORD))
        await rt.start_worker()
        return rt, client

    async def state_is(rt: Runtime, want: State) -> None:
        for _ in range(2000):
            async with rt.store.db.read() as conn:
                rows = await rt.store.messages.page(conn, account_id=account.id, limit=10)
            if rows and all(r.state is want for r in rows):
                return
            await clock.advance(0.05)
            await asyncio.sleep(0.005)
        raise AssertionError(f"not {want.name}")

    rt, client = await started()
    try:
        assert rt.services is not None
        account = await rt.services.accounts.create_account(name="acme", balance="100")
        await rt.services.accounts.create_user(
            account.id, username=USER, password=PASSWORD, role=GatewayRole.OPERATOR
        )
        for _ in range(300):
            if all(p.usable for p in rt.services.lines["gsm"].ports()):
                break
            await asyncio.sleep(0.01)
        r = await client.post(
            "/api/send_sms", json={"text": "hi", "param": [{"number": "4917012345678"}]}
        )
        assert r.json()["error_code"] == 202
        await state_is(rt, State.SENT)
    finally:
        await client.aclose()
        await rt.close()
    modem.release_reports()  # it lands in the modem's memory while simgate is away
    assert modem._store
    rt, client = await started()
    try:
        await state_is(rt, State.DELIVERED)
        # Read, then deleted: the sweep deletes the report after its commit (modem/port.py
        # ``_sweep``, TS 27.005 §3.5.4), so DELIVERED may show before the +CMGD is done.
        await until(lambda: not modem._store)
    finally:
        await client.aclose()
        await rt.close()
        await modem.close()


@pytest.mark.slow
async def test_two_hundred_messages_with_faults(site: Site) -> None:
    """216 messages; meanwhile one modem answers +CMS ERROR: 500 twice (the message is
    retried), another drops its line once (reopened; reports stored meanwhile are swept):
    none lost, none doubled. (Blocking and reset: tests/lines/modem/test_line.py.)"""
    s = site
    s.modems[0].cms_errors(500, times=2)
    wanted = await send_mix(s, rounds=9)  # 9 rounds x 4 ports x 6 messages
    s.modems[3].drops_line()
    await all_delivered_once(s, wanted, unknown_ok_on=3)
    assert s.modems[0].behaviour.cms_times == 0  # both errors were answered


async def test_a_message_whose_answer_went_with_the_line_is_settled_by_its_report(
    site: Site,
) -> None:
    """The +CMGS answer is lost with the line (UNKNOWN: it may have left); the report,
    stored by the modem meanwhile and swept once the port is back, matches the part's
    journalled intent and the message reaches DELIVERED, sent once."""
    s = site
    s.modems[2].loses_answers(times=1)
    body = {"text": "lost answer", "port": [2], "param": [{"number": "4917077700", "user_id": 7}]}
    assert (await post(s, "/api/send_sms", body))["error_code"] == 202

    async def settled() -> bool:
        return await s.states() == [State.DELIVERED]

    await s.until(settled, "the message DELIVERED from its report")
    assert len(s.modems[2].submits) == 1  # never resent


async def test_an_incoming_long_sms_with_a_part_across_a_restart_appears_once(
    backend: str, tmp_path: Path, clock: FakeClock
) -> None:
    """The first part is read (and deleted from the SIM) before simgate stops; the second comes
    while it is away; after the restart the two make one SMS (the parts are kept durably,
    services/inbound.py), shown once."""
    if backend.startswith("postgresql"):
        await truncate_pg(backend)
    modem = FakeModem()
    url = await modem.serve_tcp()
    line = {"driver": "modem", "ports": [url], "owner": "acme", **FAST}
    settings = make_settings(
        tmp_path, backend, lines={"gsm": line}, routes=[{"prefix": "", "lines": ["gsm"]}]
    )
    text = "A long incoming message whose second part comes after a restart. " * 4  # 2 parts

    async def started() -> tuple[Runtime, httpx.AsyncClient]:
        rt = Runtime(settings, role="admin", clock=clock)
        await rt.open()
        transport = httpx.ASGITransport(app=rt.app())
        client = httpx.AsyncClient(transport=transport, base_url="http://t", auth=(USER, PASSWORD))
        await rt.start_worker()
        assert rt.services is not None
        for _ in range(300):
            if all(p.usable for p in rt.services.lines["gsm"].ports()):
                break
            await asyncio.sleep(0.01)
        return rt, client

    async def incoming(client: httpx.AsyncClient) -> list[dict[str, Any]]:
        r = await client.post("/api/query_incoming_sms", json={"incoming_sms_id": 0})
        sms: list[dict[str, Any]] = r.json().get("sms", [])
        return sms

    async def read_from_sim() -> None:
        for _ in range(2000):
            if not modem._store:
                return
            await clock.advance(0.05)
            await asyncio.sleep(0.005)
        raise AssertionError("the part stayed on the SIM")

    rt, client = await started()
    try:
        assert rt.services is not None
        account = await rt.services.accounts.create_account(name="acme", balance="100")
        await rt.services.accounts.create_user(
            account.id, username=USER, password=PASSWORD, role=GatewayRole.OPERATOR
        )
        assert modem.deliver(sender="+4915100000009", text=text, stored=True, only=[0]) == 2
        await read_from_sim()  # deleted from the SIM only once committed
        assert await incoming(client) == []  # half a message is not shown
    finally:
        await client.aclose()
        await rt.close()
    modem.redeliver_ref()  # the second part: the same concatenation reference
    modem.deliver(sender="+4915100000009", text=text, stored=True, only=[1])
    rt, client = await started()
    try:
        await read_from_sim()  # the start-up sweep reads what came while simgate was away
        for _ in range(2000):
            if await incoming(client):
                break
            await clock.advance(0.05)
            await asyncio.sleep(0.005)
        sms = await incoming(client)
        assert [(m["text"], m["number"]) for m in sms] == [(text, "+4915100000009")]
    finally:
        await client.aclose()
        await rt.close()
        await modem.close()
