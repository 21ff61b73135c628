"""Pushes in the console after migration 0014 (issue 19, second pass): each push has the
account of the records it reports on, so an account's user sees and retries its own; a
push's page shows every attempt; an incoming SMS has a page with its pushes."""

from __future__ import annotations

import re

from tests.console.conftest import Site, attempt_push, make_incoming
from tests.store import util

ATTEMPT_ROW = re.compile(
    r"<tr><td>(\d+)</td><td><time>([^<]+)</time></td><td>(\w+)</td><td>([^<]+)</td><td>([^<]+)</td></tr>"
)


async def test_an_account_user_sees_and_retries_only_its_own_pushes(site: Site) -> None:
    sv = site.services
    acme_sms = await make_incoming(site.rt, site.acme, mo_url="http://127.0.0.1:9/acme")
    (mine,) = await sv.pushes.list()
    await attempt_push(sv, mine.id, ("dead", 503, "HTTP 503"))
    other_sms = await make_incoming(site.rt, site.other, mo_url="http://127.0.0.1:10/other")
    (theirs,) = await sv.pushes.list(states=["pending"])
    await attempt_push(sv, theirs.id, ("dead", 503, "HTTP 503"))
    assert [(p.kind, p.account_id) for p in (mine, theirs)] == [
        ("itnio.mo", site.acme.id),
        ("itnio.mo", site.other.id),
    ]

    user = await site.login("acme-admin")
    dead = '<dt>Pushes dead</dt><dd><a href="/console/pushes?state=dead">{}</a>'
    assert dead.format(1) in (await user.get("/console/")).text  # its own only
    assert dead.format(2) in (await (await site.login("root")).get("/console/")).text
    listing = await user.get("/console/pushes?state=dead")
    assert listing.status_code == 200
    assert f"/console/pushes/{mine.id}" in listing.text
    assert f"/console/pushes/{theirs.id}" not in listing.text
    assert "127.0.0.1:10" not in listing.text  # not even the other's endpoint counts
    assert "/console/pushes/purge" not in listing.text  # purging is the operator's
    assert (await user.get(f"/console/pushes/{theirs.id}")).status_code == 404
    assert (await user.post(f"/console/pushes/{theirs.id}/retry")).status_code == 404
    assert (await user.post("/console/pushes/retry", {"state": "dead"})).status_code == 303
    states = {p.id: p.state for p in await sv.pushes.list()}
    assert states == {mine.id: "pending", theirs.id: "dead"}

    page = await user.get(f"/console/inbound/{acme_sms}")
    assert page.status_code == 200
    assert "hello there" in page.text
    assert f"/console/pushes/{mine.id}" in page.text
    assert (await user.get(f"/console/inbound/{other_sms}")).status_code == 404
    root = await site.login("root")
    page = await root.get(f"/console/inbound/{other_sms}")
    assert f"/console/pushes/{theirs.id}" in page.text
    assert f"/console/inbound/{other_sms}" in (await root.get("/console/inbound")).text


async def test_a_push_page_lists_every_attempt_with_time_status_and_error(site: Site) -> None:
    sv = site.services
    await make_incoming(site.rt, site.acme, mo_url="http://127.0.0.1:9/acme")
    (push,) = await sv.pushes.list()
    await attempt_push(
        sv,
        push.id,
        ("release", None, None),  # given back unsent (a stopping sender): no attempt
        ("retry", 503, "HTTP 503"),
        ("retry", None, "timeout"),
        ("dead", 500, "HTTP 500"),
    )
    root = await site.login("root")
    page = (await root.get(f"/console/pushes/{push.id}")).text
    rows = [m.groups() for m in ATTEMPT_ROW.finditer(page)]
    assert [(n, outcome, status, error) for n, _, outcome, status, error in rows] == [
        ("1", "retry", "503", "HTTP 503"),
        ("2", "retry", "-", "timeout"),
        ("3", "dead", "500", "HTTP 500"),
    ]
    times = [at for _, at, *_ in rows]
    assert all(t.endswith(" UTC") for t in times)
    assert times == sorted(times)
    assert len(set(times)) == 3


async def test_a_message_page_lists_its_dinstar_and_openvox_pushes(site: Site) -> None:
    """A Dinstar push batches messages under one order key: it names them as its subjects.
    A batch of two accounts' messages is the operator's (its body shows both)."""
    sv = site.services
    await sv.dinstar.set_push_target(
        url="http://127.0.0.1:9/dinstar", types=["sms_result", "sms_deliver_status"]
    )
    await sv.openvox.set_push_config(
        site.acme.id, {"url_host": "127.0.0.1", "url_port": "9", "results_enable": 1}
    )
    dinstar_mine, dinstar_mixed = await util.queue(site.rt, site.acme, 2, dialect="dinstar")
    (dinstar_theirs,) = await util.queue(site.rt, site.other, dialect="dinstar")
    (openvox,) = await util.queue(site.rt, site.acme, dialect="openvox")
    now = site.clock.now_ms()
    await util.lease(site.rt.store, now)
    await util.record(site.services, [util.ok(dinstar_mine), util.ok(openvox)], now)
    await util.record(site.services, [util.ok(dinstar_mixed), util.ok(dinstar_theirs)], now)
    pushes = sorted(await sv.pushes.list(), key=lambda p: (p.kind, p.id))
    assert [(p.kind, p.account_id) for p in pushes] == [
        ("dinstar.sms_result", site.acme.id),
        ("dinstar.sms_result", None),
        ("openvox.result", site.acme.id),
    ]
    alone, mixed, result = pushes

    root = await site.login("root")
    page = (await root.get(f"/console/messages/{dinstar_mine}")).text
    assert f"/console/pushes/{alone.id}" in page
    assert f"/console/pushes/{mixed.id}" not in page
    page = (await root.get(f"/console/messages/{dinstar_mixed}")).text
    assert f"/console/pushes/{mixed.id}" in page
    assert (
        f"/console/pushes/{mixed.id}"
        in (await root.get(f"/console/messages/{dinstar_theirs}")).text
    )
    assert f"/console/pushes/{result.id}" in (await root.get(f"/console/messages/{openvox}")).text

    user = await site.login("acme-viewer")
    page = (await user.get(f"/console/messages/{dinstar_mine}")).text
    assert f"/console/pushes/{alone.id}" in page
    page = (await user.get(f"/console/messages/{dinstar_mixed}")).text
    assert f"/console/pushes/{mixed.id}" not in page  # it carries account other's message
    assert (await user.get(f"/console/pushes/{mixed.id}")).status_code == 404
