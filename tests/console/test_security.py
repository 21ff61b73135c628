"""Who may see and do what (issue 19 "Security"): every console route is walked from the
application's own route table, so a route added later is covered without editing this file."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.routing import APIRoute

from simgate.domain.accounts import AppKind
from tests.console.conftest import PASSWORD, Site, attempt_push, make_call, make_incoming
from tests.store.util import queue

OPEN = {("GET", "/console/login"), ("POST", "/console/login")}
PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")


def _flat(routes: list[Any]) -> list[Any]:
    """The routes, those of included routers too (FastAPI keeps those behind a wrapper
    whose ``original_router`` holds them)."""
    out = []
    for route in routes:
        inner = getattr(route, "original_router", None)
        out.extend(_flat(inner.routes) if inner is not None else [route])
    return out


def routes(site: Site) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for route in _flat(site.web.routes):
        if isinstance(route, APIRoute) and route.path.startswith("/console"):
            out.extend((m, route.path) for m in sorted(route.methods or ()) if m != "HEAD")
    assert len(out) > 20
    return out


async def ids_of_other(site: Site) -> dict[str, str]:
    """A value for every path parameter, each naming something of account ``other``."""
    sv = site.services
    (app,) = await sv.accounts.list_apps(site.other.id)
    (key,) = await sv.accounts.list_keys(site.other.id)
    voice = await sv.accounts.create_app(site.other.id, kind=AppKind.VOICE)
    (message_id,) = await queue(site.rt, site.other)
    inbound_id = await make_incoming(site.rt, site.other, mo_url="http://127.0.0.1:9/mo")
    (push,) = await sv.pushes.list(account_id=site.other.id)
    await attempt_push(sv, push.id, ("dead", 503, "HTTP 503"))
    return {
        "account_id": str(site.other.id),
        "app_id": app.app_id,
        "key": key.key,
        "message_id": str(message_id),
        "call_id": str(await make_call(site.rt, site.other, voice.id)),
        # The MO push of an incoming SMS of ``other``: that account's push (migration 0014).
        "inbound_id": str(inbound_id),
        "push_id": str(push.id),
        "line": "sim",
        "port": "0",
        "action": "lock",
    }


def fill(path: str, values: dict[str, str]) -> str:
    return PARAM.sub(lambda m: values[m.group(1)], path)


async def test_nothing_without_a_session(site: Site) -> None:
    values = await ids_of_other(site)
    async with site.client() as c:
        for method, path in routes(site):
            if (method, path) in OPEN:
                continue
            r = await c.request(method, fill(path, values), data={"csrf": "x"})
            if method == "GET":
                assert (r.status_code, r.headers.get("location")) == (303, "/console/login"), path
            else:
                assert r.status_code == 401, (method, path)
        # An htmx fragment asks without following a redirect: 401.
        assert (await c.get("/console/live", headers={"HX-Request": "true"})).status_code == 401


@pytest.mark.parametrize("token", [None, "", "wrong"])
async def test_every_post_checks_the_csrf_token(site: Site, token: str | None) -> None:
    values = await ids_of_other(site)
    root = await site.login("root")
    for method, path in routes(site):
        if method != "POST" or (method, path) in OPEN:
            continue
        data = {} if token is None else {"csrf": token}
        r = await root.c.post(fill(path, values), data=data)
        assert r.status_code == 403, (path, r.text)
    # The same session with its token: the key is revoked.
    r = await root.post(fill("/console/accounts/{account_id}/keys/{key}/revoke", values))
    assert r.status_code == 303
    assert (await site.services.accounts.get_key(values["key"])).revoked  # type: ignore[union-attr]


async def test_a_viewer_cannot_act(site: Site) -> None:
    values = await ids_of_other(site)
    before = (await site.services.accounts.get_account(site.other.id)).balance_micros
    viewer = await site.login("watcher")
    for method, path in routes(site):
        if method != "POST" or (method, path) in OPEN or path == "/console/logout":
            continue
        r = await viewer.post(fill(path, values), {"amount": "5", "state": "dead"})
        assert r.status_code == 403, (path, r.text)
    # It reads everything.
    for method, path in routes(site):
        if method == "GET" and (method, path) not in OPEN:
            assert (await viewer.get(fill(path, values))).status_code == 200, path
    assert (await site.services.accounts.get_account(site.other.id)).balance_micros == before


async def test_an_account_user_gets_404_for_every_other_accounts_id(site: Site) -> None:
    values = await ids_of_other(site)
    before = (await site.services.accounts.get_account(site.other.id)).balance_micros
    with_ids = [(m, p) for m, p in routes(site) if "{" in p]
    assert len(with_ids) > 10
    for name in ("acme-admin", "acme-viewer"):
        user = await site.login(name)
        for method, path in with_ids:
            url = fill(path, values)
            r = await (user.get(url) if method == "GET" else user.post(url, {"amount": "5"}))
            assert r.status_code == 404, (name, method, url, r.status_code)
    # Nothing of ``other`` changed; and the same pages of acme answer.
    assert (await site.services.accounts.get_account(site.other.id)).balance_micros == before
    assert not (await site.services.accounts.get_key(values["key"])).revoked  # type: ignore[union-attr]
    acme_admin = await site.login("acme-admin")
    assert (await acme_admin.get(f"/console/accounts/{site.acme.id}")).status_code == 200
    listing = await acme_admin.get("/console/messages")
    assert values["message_id"] not in listing.text


async def test_account_users_search_only_their_account(site: Site) -> None:
    (mine,) = await queue(site.rt, site.acme)
    (theirs,) = await queue(site.rt, site.other)
    user = await site.login("acme-viewer")
    page = (await user.get("/console/messages", params={"number": "8613800138000"})).text
    assert str(mine) in page
    assert str(theirs) not in page
    page = (await user.get("/console/messages", params={"account": "other"})).text
    assert str(theirs) not in page
    root = await site.login("root")
    page = (await root.get("/console/messages", params={"number": "8613800138000"})).text
    assert str(mine) in page
    assert str(theirs) in page


async def test_login_is_throttled_and_a_wrong_name_is_told_like_a_wrong_password(
    site: Site,
) -> None:
    async with site.client() as c:

        async def attempt(username: str, password: str) -> int:
            page = await c.get("/console/login")
            token = re.search(r'name="csrf" value="([^"]+)"', page.text)
            assert token is not None
            form = {"username": username, "password": password, "csrf": token.group(1)}
            return (await c.post("/console/login", data=form)).status_code

        assert await attempt("nobody", "x") == 401
        for _ in range(4):
            assert await attempt("root", "wrong") == 401
        assert await attempt("root", "wrong") == 401  # the fifth failure locks the pair
        assert await attempt("root", PASSWORD) == 429  # even the right password, for now
        await site.clock.advance(901)
        assert await attempt("root", PASSWORD) == 303


async def test_login_form_needs_its_own_token(site: Site) -> None:
    async with site.client() as c:
        r = await c.post("/console/login", data={"username": "root", "password": PASSWORD})
        assert r.status_code == 403


async def test_session_cookie_flags_and_logout_ends_the_session(site: Site) -> None:
    for base, secure in (("http://t", False), ("https://t", True)):
        async with site.client(base) as c:
            page = await c.get("/console/login")
            token = re.search(r'name="csrf" value="([^"]+)"', page.text)
            assert token is not None
            form = {"username": "root", "password": PASSWORD, "csrf": token.group(1)}
            r = await c.post("/console/login", data=form)
            cookies = [v for k, v in r.headers.multi_items() if k == "set-cookie"]
            cookie = next(v for v in cookies if "simgate_console=" in v)
            assert "HttpOnly" in cookie
            assert "SameSite=strict" in cookie
            assert ("Secure" in cookie) is secure
    user = await site.login("root")
    saved = dict(user.c.cookies)
    assert (await user.post("/console/logout")).status_code == 303
    async with site.client() as c:
        c.cookies.update(saved)  # the old cookie, replayed after logout
        assert (await c.get("/console/")).status_code == 303


async def test_deleting_a_user_ends_its_sessions(site: Site) -> None:
    user = await site.login("watcher")
    assert (await user.get("/console/")).status_code == 200
    await site.services.console_auth.delete_user("watcher")
    assert (await user.get("/console/")).status_code == 303


async def test_bad_input_is_a_page_not_a_500(site: Site) -> None:
    root = await site.login("root")
    for url, status in (
        ("/console/messages?from=yesterday", 400),
        ("/console/messages?id=12x", 400),
        ("/console/messages?state=lost", 400),
        ("/console/messages?account=nobody", 404),
        ("/console/messages/99999999999999999999", 400),
        ("/console/pushes?state=sideways", 400),
        ("/console/accounts/999", 404),
    ):
        r = await root.get(url)
        assert r.status_code == status, (url, r.text)
        assert "<h1>" in r.text
    r = await root.post(f"/console/accounts/{site.acme.id}/topup", {"amount": "-3"})
    assert r.status_code == 400
    assert "more than 0" in r.text
