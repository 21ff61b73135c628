"""The exact-path index in front of the router (api/exact_paths.py): the same answers as the
router's own walk, for every dialect path, unknown paths and wrong methods."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from starlette.responses import PlainTextResponse
from starlette.routing import BaseRoute, Match, Route

from simgate.api import exact_paths
from simgate.api.http import SelfAnswering

METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH")
ITNIO_HEADERS = {"Api-Key": "k", "Timestamp": "1630468800", "Sign": "0" * 32}


def _index(app: FastAPI) -> exact_paths.ExactPaths:
    fast = app.router.middleware_stack
    assert isinstance(fast, exact_paths.ExactPaths)
    return fast


def _first_match(routes: tuple[BaseRoute, ...] | list[BaseRoute], path: str, method: str) -> int:
    """What the router picks: the first full match, else the first partial one (-1: none)."""
    partial = -1
    for route in routes:
        scope = {"type": "http", "path": path, "root_path": "", "method": method, "headers": []}
        match, _ = route.matches(scope)
        if match == Match.FULL:
            return id(route)
        if match == Match.PARTIAL and partial == -1:
            partial = id(route)
    return partial


def test_every_exact_path_picks_the_route_the_walk_picks(app: FastAPI) -> None:
    fast = _index(app)
    paths = [r.path for r in app.router.routes if isinstance(r, Route) and not r.param_convertors]
    for dialect_path in ("/sms/send", "/api/send_sms", "/smsoutbox/get", "/healthz"):
        assert dialect_path in paths
    for path in paths:
        candidates = fast.routes_for(path)
        assert candidates is not None, path
        for method in METHODS:
            assert _first_match(candidates, path, method) == _first_match(
                app.router.routes, path, method
            ), (method, path)


def test_a_send_tries_few_routes(app: FastAPI) -> None:
    candidates = _index(app).routes_for("/sms/send")
    assert candidates is not None
    assert len(candidates) == 1 < len(app.router.routes)
    assert _index(app).routes_for("/sms/nope") == ()  # no route can match: straight to default


Answer = tuple[str, str, int, str | None, bytes]


async def _answers(app: FastAPI, requests: list[tuple[str, str, dict[str, str]]]) -> list[Answer]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as client:
        out: list[Answer] = []
        for method, path, headers in requests:
            r = await client.request(method, path, headers=headers, follow_redirects=False)
            out.append((method, path, r.status_code, r.headers.get("allow"), r.content))
        return out


async def test_answers_match_the_routers_walk(app: FastAPI) -> None:
    requests = [
        (method, path, headers)
        for path in (
            "/sms/send",
            "/sms/sendSms",
            "/sms/nope",
            "/sms",
            "/smsoutbox/get",
            "/smsoutbox/nope",
            "/api/send_sms",
            "/api/nope",
            "/healthz",
            "/healthz/",
            "/nope",
        )
        for method in ("GET", "POST", "DELETE")
        for headers in ({}, ITNIO_HEADERS)
    ]
    with_index = await _answers(app, requests)
    app.router.middleware_stack = app.router.app  # the router's own walk
    assert await _answers(app, requests) == with_index
    statuses = {
        (method, path, bool(headers)): answer[2]
        for (method, path, headers), answer in zip(requests, with_index, strict=True)
    }
    assert statuses[("DELETE", "/sms/sendSms", True)] == 405
    assert statuses[("DELETE", "/api/send_sms", False)] == 405
    assert statuses[("GET", "/nope", False)] == 404


async def test_routes_added_later_are_found(app: FastAPI) -> None:
    fast = _index(app)
    assert fast.routes_for("/late") == ()  # no route can match it: straight to default

    async def late(_: object) -> PlainTextResponse:
        return PlainTextResponse("late")

    app.router.routes.insert(0, Route("/late", late))
    assert fast.routes_for("/late") is not None
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as client:
        assert (await client.get("/late")).text == "late"


def test_direct_names_only_the_self_answering_route_the_walk_picks(app: FastAPI) -> None:
    fast = _index(app)
    send = fast.direct("/sms/send")
    assert isinstance(send, SelfAnswering)  # the OpenVox envelope, whatever the method
    for method in METHODS:
        assert _first_match(app.router.routes, "/sms/send", method) == id(
            next(r for r in app.router.routes if getattr(r, "app", None) is send)
        )
    # itniotech: its plain route of every method answers (or refuses with 405) itself.
    assert isinstance(fast.direct("/sms/sendSms"), SelfAnswering)
    assert fast.direct("/healthz") is None  # a GET route: another method is a 405
    assert fast.direct("/sms/nope") is None

    async def shadow(_: object) -> PlainTextResponse:
        return PlainTextResponse("first")

    # A route ahead of it for that path: the walk would pick that one for GET.
    app.router.routes.insert(0, Route("/sms/send", shadow))
    assert fast.direct("/sms/send") is None
