"""How the itniotech routes are mounted (api/dialects/itnio/routes.py): plain Starlette routes
answer every path the OpenAPI document lists for the dialect, with the same methods."""

from __future__ import annotations

import warnings

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute, Match, Route

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
            assert full == ((path, method) in documented), (method, path)
