"""How the itniotech routes are mounted (api/dialects/itnio/routes.py): plain Starlette routes
answer every path the OpenAPI document lists for the dialect, with the same methods."""

from __future__ import annotations

import warnings

import httpx
from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute, Match, Route

from simgate.api import exact_paths
from simgate.api.dialects.itnio import routes

METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE")
ITNIO_PREFIXES = ("/sms/", "/v3/", "/voice/")


def _picked(app: FastAPI, path: str, method: str) -> tuple[BaseRoute | None, bool]:
    """The route the router picks (first full match, else first partial) and whether full."""
    partial: BaseRoute | None = None
    for route in app.router.routes:
        scope = {"type": "http", "path": path, "root_path": "", "method": method, "headers": []}
        match, _ = route.matches(scope)
        if match == Match.FULL:
            return route, True
        if match == Match.PARTIAL and partial is None:
            partial = route
    return partial, False


def test_plain_routes_answer_what_the_document_lists(app: FastAPI) -> None:
    with warnings.catch_warnings():
        # The document's operation ids repeat (one endpoint per path for GET and POST, and
        # per prefix): FastAPI warns, the document is as it always was.
        warnings.simplefilter("ignore", UserWarning)
        document = app.openapi()
    documented = {
        (path, method.upper())
        for path, operations in document["paths"].items()
        if path.startswith(ITNIO_PREFIXES)
        for method in operations
    }
    assert ("/sms/sendSms", "POST") in documented
    assert ("/voice/recordGroup/{voice_id}", "GET") in documented
    paths = {path for path, _ in documented}
    for path in paths:
        concrete = path.replace("{voice_id}", "a/b")
        for method in METHODS:
            route, full = _picked(app, concrete, method)
            # Every method of the path goes to a plain route: its endpoint, or its 405.
            assert isinstance(route, Route), (method, path, route)
            assert not isinstance(route, APIRoute), (method, path)
            assert isinstance(route.app, routes._Endpoint), (method, path)
            assert full  # every method: the endpoint answers it or refuses it (405)
            assert (method in route.app.methods) == ((path, method) in documented), (method, path)


async def test_the_direct_lane_answers_as_the_fastapi_routes_did(app: FastAPI) -> None:
    """The plain routes take every method so that the application hands them exact paths
    straight (api/app.py): the 405 of a method a path does not serve (status, Allow, body)
    and an authentication refusal are the answers of the FastAPI routes they shadow (those
    answer once the plain routes are gone: Starlette's own 405, the layers' handlers)."""
    requests = [
        (method, path)
        for path in ("/sms/sendSms", "/sms/getBalance", "/v3/sendSms", "/sms/sendSms/batch")
        for method in ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH")
    ]
    runs = iter(range(2))

    async def answers() -> list[tuple[int, frozenset[str], bytes]]:
        transport = httpx.ASGITransport(app=app)
        run = next(runs)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            out = []
            for i, (method, path) in enumerate(requests):
                # A key of its own per request: the failure limits (spec §7) stay far off.
                headers = {"Api-Key": f"k{run}-{i}", "Timestamp": "1630468800", "Sign": "0" * 32}
                r = await client.request(method, path, headers=headers)
                allow = frozenset(m.strip() for m in r.headers.get("allow", "").split(",") if m)
                out.append((r.status_code, allow, r.content))
            return out

    exact = app.router.middleware_stack
    assert isinstance(exact, exact_paths.ExactPaths)
    assert isinstance(exact.direct("/sms/sendSms"), routes._Endpoint)
    direct = await answers()
    app.router.routes[:] = [r for r in app.router.routes if not _plain_itnio(r)]
    assert exact.direct("/sms/sendSms") is None
    assert await answers() == direct
    assert {status for status, _, _ in direct} == {200, 405}


def _plain_itnio(route: BaseRoute) -> bool:
    return isinstance(route, Route) and isinstance(route.app, routes._Endpoint)
