"""Cheap dispatch to the routes of exact paths (issue 15: route matching was ~15 % of the
server's CPU on a one-number send).

Starlette (and FastAPI's router on top of it) tries every route in order until one matches:
an OpenVox ``/sms/send`` walked ~17 routes, two of them FastAPI's included itniotech routers,
which match every route of theirs and then match again to handle. :func:`install` puts an
index in front of that walk: for each path that some route spells exactly (no ``{param}``),
the routes that could match that path at all, in their original order. A request for such a
path tries those few routes the way the router would; every other request, and a request
none of them matches (redirects, low-priority routes, the dialects' 404s through the
router's ``default``), takes the router's own walk.

Why the answer is the same: the router answers with the first route that matches fully, else
the first that matches the path with another method (the 405); a route left out of a path's
list is one that cannot match that path with any method, so dropping it changes neither.
A plain route (Starlette ``Route``, FastAPI ``APIRoute``) or ``Mount`` matches by its path
regex alone; any other kind (FastAPI's included routers) is asked with every HTTP method
when the index is built, and unknown kinds are always kept.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette._utils import get_route_path
from starlette.routing import BaseRoute, Match, Mount, Route, Router
from starlette.types import ASGIApp, Receive, Scope, Send

# Every method a client may send that a route could tell apart (RFC 9110 §9 and PATCH).
_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH")
# FastAPI adds this key when its own telemetry is on; it records the route in the router's
# walk, so such requests take that walk (telemetry is off in api/app.py).
_TELEMETRY_KEY = "fastapi.telemetry"


class ExactPaths:
    """The router's entry point with the index in front (see the module docstring)."""

    def __init__(self, router: Router) -> None:
        self._router = router
        self._walk: ASGIApp = router.middleware_stack
        self._built_for: list[BaseRoute] | None = None
        self._built_count = -1
        self._index: dict[str, tuple[BaseRoute, ...]] = {}

    def routes_for(self, path: str) -> tuple[BaseRoute, ...] | None:
        """The routes tried for ``path``, None when it takes the router's own walk."""
        routes = self._router.routes
        if routes is not self._built_for or len(routes) != self._built_count:
            # Routes added after the first request (tests, late mounts) rebuild the index.
            self._index = build_index(routes)
            self._built_for, self._built_count = routes, len(routes)
        return self._index.get(path)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _TELEMETRY_KEY in scope:
            await self._walk(scope, receive, send)
            return
        candidates = self.routes_for(get_route_path(scope))
        if candidates is None:
            await self._walk(scope, receive, send)
            return
        partial: tuple[BaseRoute, Scope] | None = None
        for route in candidates:
            match, child_scope = route.matches(scope)
            if match == Match.FULL:
                scope.setdefault("router", self._router)
                scope.update(child_scope)
                await route.handle(scope, receive, send)
                return
            if match == Match.PARTIAL and partial is None:
                partial = (route, child_scope)
        if partial is None:  # nothing matches after all: the router's walk decides
            await self._walk(scope, receive, send)
            return
        route, child_scope = partial
        scope.setdefault("router", self._router)
        scope.update(child_scope)
        await route.handle(scope, receive, send)


def install(router: Router) -> ExactPaths:
    """Put the index in front of ``router``'s walk; the router stays the ASGI app."""
    fast = ExactPaths(router)
    router.middleware_stack = fast
    return fast


def build_index(routes: Sequence[BaseRoute]) -> dict[str, tuple[BaseRoute, ...]]:
    """Each exact route path → the routes that could match it, in order."""
    exact = [
        r.path
        for r in routes
        if isinstance(r, Route) and not r.param_convertors and r.path.startswith("/")
    ]
    return {path: tuple(r for r in routes if _may_match(r, path)) for path in dict.fromkeys(exact)}


def _may_match(route: BaseRoute, path: str) -> bool:
    if isinstance(route, (Route, Mount)):
        return route.path_regex.match(path) is not None
    for method in _METHODS:
        probe: Scope = {
            "type": "http",
            "path": path,
            "root_path": "",
            "method": method,
            "headers": [],
            "query_string": b"",
        }
        try:
            match, _ = route.matches(probe)
        except Exception:  # a kind we cannot ask safely: keep it
            return True
        if match != Match.NONE:
            return True
    return False
