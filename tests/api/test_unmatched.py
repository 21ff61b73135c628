"""Requests no route serves (issue 15: a 404 cost more CPU than a send): what each answers,
pinned byte for byte before api/exact_paths.py sent them past the router's walk, and the
mechanism: an unmatched path is asked of no route, and the 404 is sent, not raised."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import PlainTextResponse
from starlette.exceptions import HTTPException
from starlette.routing import Route
from starlette.types import Message

from simgate.api import exact_paths, not_found
from simgate.api.route_shapes import shape_of
from tests.conftest import make_settings, opened

ITNIO = {"Api-Key": "k", "Timestamp": "1630468800", "Sign": "0" * 32}
JSON = [(b"content-length", b"22"), (b"content-type", b"application/json")]
NOT_FOUND = (404, JSON, b'{"detail":"Not Found"}')


def envelope(uri: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """OpenVox's unknown uri: HTTP 200, code 404 in the envelope (spec Amendments)."""
    body = json.dumps(
        {"uri": uri, "code": 404, "msg": f"unknown uri {uri}", "data": []}, separators=(",", ":")
    ).encode()
    return 200, [(b"content-length", str(len(body)).encode()), JSON[1]], body


def redirect(to: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    return 307, [(b"content-length", b"0"), (b"location", b"http://t" + to.encode())], b""


# (path, with itniotech's headers) -> the answer, for GET and POST alike.
PINNED = {
    ("/nope", False): NOT_FOUND,
    ("/nope", True): NOT_FOUND,
    ("/", False): NOT_FOUND,
    ("/nope/", False): NOT_FOUND,
    ("/wp-login.php?x=1", False): NOT_FOUND,
    ("/api/nope", False): NOT_FOUND,  # Dinstar's namespace: the application's 404
    ("/v3/nope", True): NOT_FOUND,  # itniotech's
    ("/console/nope", False): NOT_FOUND,
    ("/sms/nope", False): envelope("/sms/nope"),  # OpenVox's, shared with itniotech
    ("/sms/nope", True): NOT_FOUND,  # itniotech's headers: not OpenVox's to answer
    ("/sms", False): envelope("/sms"),
    ("/sms/sendSms/x?q=1", False): envelope("/sms/sendSms/x"),
    ("/sms/sendSms/x", True): NOT_FOUND,
    ("/smsoutbox/nope", False): envelope("/smsoutbox/nope"),  # OpenVox's own namespace
    ("/smsoutbox/nope", True): envelope("/smsoutbox/nope"),
    ("/smsinbox", False): envelope("/smsinbox"),
    ("/smsinbox/x/y", True): envelope("/smsinbox/x/y"),
    ("/healthz/", False): redirect("/healthz"),  # the router's redirect stays
    ("/sms/send/", False): redirect("/sms/send"),
    ("/api/send_sms/", True): redirect("/api/send_sms"),
}


async def _answer(app: FastAPI, method: str, path: str, itnio: bool) -> tuple[object, ...]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as client:
        r = await client.request(
            method,
            path,
            headers=ITNIO if itnio else {},
            content=b'{"username":"x"}' if method == "POST" else None,
            follow_redirects=False,
        )
    return r.status_code, r.headers.raw, r.content


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_unmatched_answers_are_pinned(app: FastAPI, method: str) -> None:
    for (path, itnio), expected in PINNED.items():
        assert await _answer(app, method, path, itnio) == expected, (method, path, itnio)


async def test_head_gets_the_same_head_without_a_body(app: FastAPI) -> None:
    status, headers, _ = NOT_FOUND
    assert await _answer(app, "HEAD", "/nope", False) == (status, headers, b"")
    status, headers, _ = envelope("/sms/nope")
    assert await _answer(app, "HEAD", "/sms/nope", False) == (status, headers, b"")


# Paths whose Starlette URL differs from the scope's path, or that a regex's `$` matches
# with a final newline: the same answer with the index as with the router's own walk.
ODD_PATHS = [
    "//sms/x",
    "///sms/x",
    "/sms/%09x",
    "/s%09ms/x",
    "/sms/send%0A",
    "/sms/send%0A/",
    "/healthz%0A",
    "/%3Fsms",
    "/sms/a%23b",
    "/sms/%5Cx",
    "/sms/%C3%A9",
    "/SMS/x",
    "/sms/send/x",
    "/smsoutbox/%0A",
    "/console/lines/abc",
    "/console/static/nope.css",
    "/voice/recordGroup/",
    "/healthz//",
]


async def test_odd_paths_answer_as_the_routers_walk(app: FastAPI) -> None:
    cases = [(m, p, i) for p in ODD_PATHS for m in ("GET", "POST") for i in (False, True)]
    fast = [await _answer(app, *case) for case in cases]
    app.router.middleware_stack = app.router.app  # the router's own walk
    assert [await _answer(app, *case) for case in cases] == fast


def _index(app: FastAPI) -> exact_paths.ExactPaths:
    fast = app.router.middleware_stack
    assert isinstance(fast, exact_paths.ExactPaths)
    return fast


def test_an_unmatched_path_is_asked_of_no_route(app: FastAPI) -> None:
    fast = _index(app)
    for path in ("/nope", "/wp-login.php", "/sms/nope", "/api/nope", "/v3/nope", "/console/x/y"):
        assert fast.routes_for(path) == (), path  # on main: None, the walk of every route
    catch_all = fast.routes_for("/smsoutbox/nope")
    assert catch_all is not None
    assert [getattr(r, "path", None) for r in catch_all] == ["/smsoutbox/{rest:path}"]


def test_every_route_of_the_app_has_a_shape(app: FastAPI) -> None:
    # FastAPI's included routers (itniotech's, the console's) are read through FastAPI
    # internals (api/route_shapes.py): an upgrade that changes them fails here, not slowly.
    unread = [r for r in app.router.routes if shape_of(r) is None]
    assert unread == []


def _handlers_scope(app: FastAPI) -> dict[str, object]:
    handlers = {k: v for k, v in app.exception_handlers.items() if k not in (500, Exception)}
    return {
        "type": "http",
        "method": "GET",
        "path": "/nope",
        "headers": [],
        "app": app,  # inside an application: Starlette's not_found raises
        "starlette.exception_handlers": (
            {c: h for c, h in handlers.items() if not isinstance(c, int)},
            {c: h for c, h in handlers.items() if isinstance(c, int)},
        ),
    }


async def _nothing() -> Message:
    raise AssertionError("the 404 reads no body")


async def test_the_404_is_sent_not_raised() -> None:
    app = FastAPI()
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    await not_found.default(app.router)(_handlers_scope(app), _nothing, send)
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert sent[0]["status"] == 404
    assert sent[1]["body"] == NOT_FOUND[2]

    async def mine(request: Request, exc: Exception) -> PlainTextResponse:
        return PlainTextResponse("mine", status_code=404)

    app.add_exception_handler(404, mine)  # the application's own: raised for it, as before
    with pytest.raises(HTTPException):
        await not_found.default(app.router)(_handlers_scope(app), _nothing, send)


async def test_an_applications_own_404_handler_still_answers() -> None:
    app = FastAPI()

    async def mine(request: Request, exc: Exception) -> PlainTextResponse:
        return PlainTextResponse("mine", status_code=404)

    async def here(request: Request) -> PlainTextResponse:
        return PlainTextResponse("here")

    app.add_exception_handler(HTTPException, mine)
    app.router.routes.append(Route("/here", here))
    app.router.default = not_found.default(app.router)
    exact_paths.install(app.router)
    assert await _answer(app, "GET", "/nope", False) == (
        404,
        [(b"content-length", b"4"), (b"content-type", b"text/plain; charset=utf-8")],
        b"mine",
    )
    assert (await _answer(app, "GET", "/here", False))[2] == b"here"


async def test_a_route_added_to_an_included_router_is_found() -> None:
    app = FastAPI()
    router = APIRouter(prefix="/inc")

    async def first() -> str:
        return "first"

    async def later() -> str:
        return "later"

    router.add_api_route("/first", first)
    app.include_router(router)
    app.router.default = not_found.default(app.router)
    exact_paths.install(app.router)
    assert (await _answer(app, "GET", "/inc/later", False))[0] == 404
    router.add_api_route("/later", later)  # FastAPI serves it: so must the index
    assert await _answer(app, "GET", "/inc/later", False) == (
        200,
        [(b"content-length", b"7"), (b"content-type", b"application/json")],
        b'"later"',
    )


@pytest.fixture
async def metrics_app(sqlite_url: str, tmp_path: Path) -> AsyncIterator[FastAPI]:
    """The /metrics-only application of ``[http] metrics_listen`` (api/app.py)."""
    settings = make_settings(tmp_path, sqlite_url, http={"metrics_listen": "127.0.0.1:0"})
    async with opened(settings) as rt:
        yield rt.metrics_app()


# The metrics application's answers, pinned before it took the same path as the API's.
METRICS_PINNED = {
    "/nope": NOT_FOUND,
    "/": NOT_FOUND,
    "/sms/send": NOT_FOUND,  # the API's routes are not there
    "/healthz": NOT_FOUND,
    "/wp-login.php?x=1": NOT_FOUND,
    "/metrics/": redirect("/metrics"),  # the router's redirect stays
}


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_the_metrics_apps_unmatched_answers_are_pinned(
    metrics_app: FastAPI, method: str
) -> None:
    for path, expected in METRICS_PINNED.items():
        assert await _answer(metrics_app, method, path, False) == expected, (method, path)
    status, headers, _ = NOT_FOUND
    assert await _answer(metrics_app, "HEAD", "/nope", False) == (status, headers, b"")


def test_the_metrics_app_asks_no_route_for_an_unmatched_path(metrics_app: FastAPI) -> None:
    fast = _index(metrics_app)  # on main: the router's walk, the 404 raised
    assert fast.routes_for("/nope") == ()
    assert fast.routes_for("/wp-login.php") == ()
    assert metrics_app.router.default is not metrics_app.router.not_found
