"""Who incoming SMS belong to: number mapping, then port owner, then line owner, then the
first account; and their pushes go to the owning account's apps (itnio MO push, OpenVox
incoming push)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from simgate.clock import Clock
from simgate.codecs.gsm7 import encode_septets
from simgate.codecs.smpp import DeliverSm
from simgate.domain.accounts import AppKind
from simgate.domain.records import InboundRecord
from simgate.errors import ConfigError
from simgate.lines.base import IncomingSms
from simgate.lines.sim import SimLine
from simgate.runtime import Runtime
from simgate.services.inbound import InboundService, OwnerRules
from simgate.settings import load_settings
from simgate.testing.clock import FakeClock
from simgate.testing.smsc import FakeSmsc
from tests.conftest import make_settings
from tests.support.pg import truncate_pg

OWNERS = {
    "lines": {
        # sim ports are numbered 1555100000<port> (lines/sim.py)
        "sim": {"ports": 8, "owner": "acme", "port_owners": {"3": "beta"}},
        "sim2": {"ports": 2, "owner": "beta"},
        "orphan": {"ports": 2, "owner": "ghost"},
        "smsc": {"driver": "smpp", "system_id": "esme", "owner": "acme"},
    },
    "routes": [{"prefix": "", "lines": ["sim"]}],
    "inbound": {"numbers": [{"number": "+1 555 1000005", "account": "beta"}]},
}


@pytest.fixture
async def owned(backend: str, tmp_path: Path, clock: FakeClock) -> AsyncIterator[Runtime]:
    if backend.startswith("postgresql"):
        await truncate_pg(backend)
    rt = Runtime(make_settings(tmp_path, backend, **OWNERS), role="admin", clock=clock)
    await rt.open()
    try:
        yield rt
    finally:
        await rt.close()


def sms(port: int, recipient: str, text: str, clock: Clock) -> IncomingSms:
    return IncomingSms(port, "+447700900001", recipient, text, clock.now_ms())


async def test_each_account_gets_its_own_incoming_sms_and_pushes(
    owned: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    sv = owned.services
    assert sv is not None
    first = await sv.accounts.create_account(name="first")  # the old catch-all
    acme = await sv.accounts.create_account(name="acme")
    beta = await sv.accounts.create_account(name="beta")
    for acc in (acme, beta):
        app = await sv.accounts.create_app(acc.id, kind=AppKind.SMS)
        await sv.accounts.update_app_push(
            app.app_id, {"mo_url": f"http://127.0.0.1:9/mo/{acc.name}"}
        )
        await sv.openvox.set_push_config(
            acc.id, {"enable": 1, "url_host": "127.0.0.1", "url_path": f"/ov/{acc.name}"}
        )
    clock = owned.clock
    got = {
        "line owner": await sv.inbound.receive("sim", [sms(0, "15551000000", "a", clock)]),
        "port owner": await sv.inbound.receive("sim", [sms(3, "15551000003", "b", clock)]),
        "number": await sv.inbound.receive("sim", [sms(5, "15551000005", "c", clock)]),
        "other line": await sv.inbound.receive("sim2", [sms(1, "15551000001", "d", clock)]),
        "smpp line": await sv.inbound.receive("smsc", [sms(0, "4477009", "e", clock)]),
        "smpp number": await sv.inbound.receive("smsc", [sms(0, "00 15551000005", "f", clock)]),
    }
    with caplog.at_level(logging.WARNING, logger="simgate.services.inbound"):
        got["unknown owner"] = await sv.inbound.receive("orphan", [sms(0, "1", "g", clock)])
    async with owned.store.db.read() as conn:
        rows = {r.id: r for r in await owned.store.inbound.get(conn, [i for (i,) in got.values()])}
    owner = {why: rows[i].account_id for why, (i,) in got.items()}
    assert owner == {
        "line owner": acme.id,
        "port owner": beta.id,
        "number": beta.id,
        "other line": beta.id,
        "smpp line": acme.id,
        "smpp number": beta.id,
        "unknown owner": first.id,  # kept, never lost
    }
    assert "lines.orphan.owner names no account 'ghost'" in caplog.text

    # What each account reads: Dinstar query_incoming_sms, itniotech recordMo.
    def texts_of(records: Sequence[InboundRecord]) -> str:
        return "".join(sorted(r.text for r in records))

    window = {"id_from": 0, "id_to": 2**63 - 1, "offset": 0, "limit": 100}
    for acc, texts in ((acme, "ae"), (beta, "bcdf"), (first, "g")):
        page = await sv.dinstar.incoming(
            account_id=acc.id, after_seq=0, read=None, mark_read=False, ports=None, limit=100
        )
        assert texts_of([n.record for n in page.sms]) == texts
        assert texts_of((await sv.itnio.mo_page(account_id=acc.id, **window)).records) == texts

    pushes = await sv.pushes.list(kind="itnio.mo", limit=100)
    by_text = {p.body: p.url for p in pushes}
    assert len(pushes) == 6  # "first" has no app
    assert (
        sorted(p.url for p in pushes)
        == ["http://127.0.0.1:9/mo/acme"] * 2 + ["http://127.0.0.1:9/mo/beta"] * 4
    )
    for body, url in by_text.items():
        assert body is not None
        text = body.decode()
        expected = "acme" if any(f'"content":"{t}"' in text for t in "ae") else "beta"
        assert url.endswith(f"/mo/{expected}"), text
    ov = [p for p in await sv.pushes.list(limit=100) if p.kind.startswith("openvox")]
    paths = sorted(p.url.split("?")[0].rsplit("/", 1)[1] for p in ov)
    assert paths == ["acme", "acme", "beta", "beta", "beta", "beta"]


async def test_an_owner_given_as_an_account_id(
    backend: str, tmp_path: Path, clock: FakeClock
) -> None:
    if backend.startswith("postgresql"):
        await truncate_pg(backend)
    rt = Runtime(make_settings(tmp_path, backend), role="admin", clock=clock)
    await rt.open()
    try:
        sv = rt.services
        assert sv is not None
        await sv.accounts.create_account(name="first")
        second = await sv.accounts.create_account(name="second")
        inbound = InboundService(
            store=rt.store,
            clock=clock,
            publish=rt.changes.publish,
            rules=OwnerRules(lines={"sim": str(second.id)}),
        )
        (mid,) = await inbound.receive("sim", [sms(0, "1", "x", clock)])
        async with rt.store.db.read() as conn:
            (row,) = await rt.store.inbound.get(conn, [mid])
        assert row.account_id == second.id
    finally:
        await rt.close()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"lines": {"sim": {"ports": 2, "port_owners": {"2": "a"}}}}, "port 2 is not in 0..1"),
        ({"lines": {"sim": {"owner": ""}}}, "lines.sim.owner: String should have at least 1"),
        ({"inbound": {"numbers": [{"number": "+44", "acount": "a"}]}}, "inbound.numbers.0"),
        ({"inbound": {"numbers": [{"number": "4477 ext", "account": "a"}]}}, "not a phone"),
        (
            {"inbound": {"numbers": [{"number": "+4477", "account": "a"}] * 2}},
            "is mapped twice",
        ),
        ({"inbound": {"number": []}}, "invalid setting inbound.number: Extra inputs"),
    ],
)
def test_bad_owner_settings_fail_at_start_with_one_line(
    settings: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(None, overrides=settings)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


async def test_both_line_kinds_through_the_worker(
    backend: str, tmp_path: Path, clock: FakeClock
) -> None:
    """What the lines hand over (a sim port's SMS, an SMSC's deliver_sm) lands with its owner."""
    if backend.startswith("postgresql"):
        await truncate_pg(backend)
    async with FakeSmsc() as smsc:
        lines = {
            "sim": {"ports": 4, "owner": "beta", "port_owners": {"2": "acme"}},
            "smsc": {
                "driver": "smpp",
                "port": smsc.port,
                "system_id": "simgate",
                "owner": "acme",
                "reconnect_min": 0.05,
            },
        }
        numbers = [{"number": "+12345", "account": "beta"}]
        settings = make_settings(tmp_path, backend, lines=lines, inbound={"numbers": numbers})
        rt = Runtime(settings, role="run", clock=clock)
        await rt.open()
        try:
            sv = rt.services
            assert sv is not None
            await sv.accounts.create_account(name="first")
            acme = await sv.accounts.create_account(name="acme")
            beta = await sv.accounts.create_account(name="beta")
            await rt.start_worker()
            sim = sv.lines["sim"]
            assert isinstance(sim, SimLine)
            await sim.inject_incoming(port=2, sender="447700900001", text="sim port 2")
            await sim.inject_incoming(port=1, sender="447700900001", text="sim port 1")
            for to, text in (("12345", "smpp mapped"), ("999", "smpp line")):
                mo = DeliverSm(
                    source_addr="447700900123",
                    destination_addr=to,
                    short_message=encode_septets(text),
                )
                for _ in range(200):  # the bind comes up in the background
                    if smsc.binds:
                        break
                    await asyncio.sleep(0.02)
                assert await smsc.deliver(mo) == 0
            window = {"id_from": 0, "id_to": 2**63 - 1, "offset": 0, "limit": 100}
            seen = {
                acc.name: sorted(
                    r.text for r in (await sv.itnio.mo_page(account_id=acc.id, **window)).records
                )
                for acc in (acme, beta)
            }
        finally:
            await rt.close()
    assert seen == {"acme": ["sim port 2", "smpp line"], "beta": ["sim port 1", "smpp mapped"]}
