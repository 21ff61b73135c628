"""Pushes in the console after migration 0014 (issue 19, second pass): each push has the
account of the records it reports on, so an account's user sees and retries its own; a
push's page shows every attempt; an incoming SMS has a page with its pushes."""

from __future__ import annotations

import re

from tests.console.conftest import Site, attempt_push, make_incoming

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
    assert times == sorted(times) and len(set(times)) == 3
