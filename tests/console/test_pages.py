"""What the console's pages show and do, in-process (the browser test does it in chromium)."""

from __future__ import annotations

import json
import re

from simgate.cli.child_channel import ChildChannel
from simgate.cli.port_remote import RemotePorts
from simgate.domain.accounts import AppKind
from tests.console.conftest import Site, make_call, make_dead_push
from tests.store import util


async def test_overview_carries_its_chart_data_and_live_figures(site: Site) -> None:
    await util.queue(site.rt, site.acme, 2)
    root = await site.login("root")
    page = (await root.get("/console/")).text
    data = json.loads(re.search(r'id="chart-data">(.*?)</script>', page).group(1))  # type: ignore[union-attr]
    assert len(data["hour"]) == 5
    assert len(data["hour"][0]) == 60
    assert sum(data["hour"][1]) == 2  # accepted
    assert len(data["day"][0]) == 144
    live = await root.get("/console/live", headers={"HX-Request": "true"})
    assert "Queue depth" in live.text
    assert "<html" not in live.text
    assert "frame-ancestors 'none'" in live.headers["content-security-policy"]


async def test_message_page_shows_whole_ids_state_changes_and_receipts(site: Site) -> None:
    (mid,) = await util.queue(site.rt, site.acme)
    now = site.clock.now_ms()
    await util.lease(site.rt.store, now)
    await util.record(site.services, [util.ok(mid)], now)
    await util.report(site.services, [(f"{mid}.0", 0)], now + 2000)
    root = await site.login("root")
    listing = (await root.get("/console/messages", params={"number": "8613800138000"})).text
    assert f">{mid}</a>" in listing
    page = (await root.get(f"/console/messages/{mid}")).text
    assert f'<dd class="id">{mid}</dd>' in page
    for state in ("ACCEPTED", "QUEUED", "SENT", "DELIVERED"):
        assert f"<strong>{state}</strong>" in page
    assert "<td>delivered</td>" in page
    assert " UTC</time>" in page


async def test_calls_and_incoming(site: Site) -> None:
    voice = await site.services.accounts.create_app(site.acme.id, kind=AppKind.VOICE)
    call_id = await make_call(site.rt, site.acme, voice.id)
    root = await site.login("root")
    assert str(call_id) in (await root.get("/console/calls?number=8613800138000")).text
    assert "DTMF" in (await root.get(f"/console/calls/{call_id}")).text
    assert "No incoming SMS match." in (await root.get("/console/inbound?number=1")).text


async def test_a_dead_push_is_retried(site: Site) -> None:
    push_id = await make_dead_push(site.services, "http://127.0.0.1:9/hook")
    root = await site.login("root")
    listing = (await root.get("/console/pushes?state=dead")).text
    assert f'href="/console/pushes/{push_id}"' in listing
    assert "http://127.0.0.1:9" in listing
    r = await root.post(f"/console/pushes/{push_id}/retry")
    assert r.status_code == 303
    assert (await site.services.pushes.get(str(push_id))).state == "pending"
    again = await root.post(f"/console/pushes/{push_id}/retry")
    assert again.status_code == 409


async def test_an_api_keys_secret_is_shown_once(site: Site) -> None:
    admin = await site.login("acme-admin")
    created = (await admin.post(f"/console/accounts/{site.acme.id}/keys")).text
    key = re.search(r'id="new-key-id">([^<]+)<', created).group(1)  # type: ignore[union-attr]
    secret = (await site.services.accounts.get_key(key)).secret  # type: ignore[union-attr]
    assert secret in created
    assert secret not in (await admin.get(f"/console/accounts/{site.acme.id}")).text
    r = await admin.post(f"/console/accounts/{site.acme.id}/topup", {"amount": "5"})
    assert r.status_code == 403  # money is the operator's


async def test_operator_moves_money_and_locks(site: Site) -> None:
    root = await site.login("root")
    base = f"/console/accounts/{site.other.id}"
    assert (await root.post(f"{base}/topup", {"amount": "2.5"})).status_code == 303
    assert (await root.post(f"{base}/credit", {"amount": "10"})).status_code == 303
    assert (await root.post(f"{base}/lock", {"locked": "1"})).status_code == 303
    account = await site.services.accounts.get_account(site.other.id)
    assert (account.balance_micros, account.credit_micros, account.locked) == (
        52_500_000,
        10_000_000,
        True,
    )


async def test_push_urls_pass_the_ssrf_guard(site: Site) -> None:
    (app,) = await site.services.accounts.list_apps(site.acme.id)
    root = await site.login("root")
    url = f"/console/accounts/{site.acme.id}/apps/{app.app_id}/push"
    r = await root.post(url, {"report_url": "http://10.0.0.1/x"})
    assert r.status_code == 400
    r = await root.post(url, {"report_url": "https://93.184.215.14/r"})
    assert r.status_code == 303
    assert (await site.services.accounts.get_app(app.app_id)).push == {  # type: ignore[union-attr]
        "report_url": "https://93.184.215.14/r"
    }


async def test_lines_show_ports_and_lock_one(site: Site) -> None:
    root = await site.login("root")
    page = (await root.get("/console/lines")).text
    assert "Line sim" in page
    assert "CSQ" in page
    assert (await root.post("/console/lines/sim/ports/3/lock")).status_code == 303
    assert site.services.lines["sim"].ports()[3].locked
    assert (await root.post("/console/lines/sim/ports/99/lock")).status_code == 404


async def test_a_port_action_says_when_the_worker_process_is_down(site: Site) -> None:
    # `run --worker-process` with no worker child running: its channel has no pair.
    sv = site.services
    sv.line_state.control_ports_with(RemotePorts(ChildChannel(), sv.lines, timeout_s=5))
    root = await site.login("root")
    answer = await root.post("/console/lines/sim/ports/3/lock")
    assert answer.status_code == 503
    assert "worker process" in answer.text
    assert not sv.lines["sim"].ports()[3].locked
