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

Every other path (a scanner's ``/wp-login.php``, an OpenVox client's unknown uri) is asked of
the few routes with parameters whose regex matches it (``route_shapes``); when none matches,
neither can any route in the router's walk, nor (checked the same way) with a slash added or
removed (the router's redirect), so the request goes straight to the router's ``default``:
the dialects' claims (api/dialects/openvox/routes.py ``claim_unknown``) and the 404. The walk
cost 376 µs of CPU a request under load (issue 15), more than a send: it asked every route
twice (the path, then the redirect's path), the included routers' routes one by one.

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
from starlette.routing import BaseRoute, Match, Route, Router
from starlette.types import ASGIApp, Receive, Scope, Send

from simgate.api.http import SelfAnswering
from simgate.api.route_shapes import Shape, route_lists, shape_of

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
        # The route lists the index was built from, with their lengths then.
        self._built_from: tuple[tuple[list[BaseRoute], int], ...] = ()
        self._index: dict[str, tuple[BaseRoute, ...]] = {}
        # The routes that may match a path that is not in the index, with their shapes.
        self._open: tuple[tuple[BaseRoute, Shape | None], ...] = ()
        self._low_priority = False
        # Exact paths whose first candidate answers every method itself (see direct()).
        self._direct: dict[str, SelfAnswering] = {}

    def _current(self) -> None:
        routes = self._router.routes
        built = self._built_from
        if built and built[0][0] is routes and all(len(r) == n for r, n in built):
            return
        # Routes added after the first request (tests, late mounts, a route added to an
        # included router) rebuild the index.
        shapes = [(r, shape_of(r)) for r in routes]
        self._index = build_index(shapes)
        self._direct = {
            path: endpoint
            for path, candidates in self._index.items()
            if candidates and (endpoint := _self_answering(candidates[0])) is not None
        }
        self._open = tuple((r, s) for r, s in shapes if s is None or s.patterns)
        self._low_priority = _has_low_priority_routes(self._router)
        self._built_from = tuple((r, len(r)) for r in route_lists(routes))

    def routes_for(self, path: str) -> tuple[BaseRoute, ...] | None:
        """The routes tried for ``path`` (none: straight to the router's ``default``), None
        when it takes the router's own walk."""
        self._current()
        exact = self._index.get(path)
        if exact is not None:
            return exact
        if path.endswith("\n") or self._low_priority:  # see route_shapes._PLAIN_MATCHES
            return None
        return tuple(r for r, shape in self._open if shape is None or shape.may_match(path))

    def direct(self, path: str) -> SelfAnswering | None:
        """The endpoint that answers ``path`` whatever the method, when it is one that
        answers every outcome itself (api/http.py ``SelfAnswering``); else None.

        The router would call the same one: the first of the path's candidates matches it
        fully with every method (a ``Route`` with no method list and no middleware of its
        own), so it is the first full match of the walk too (the module docstring)."""
        self._current()
        return self._direct.get(path)

    def _redirect_may_match(self, path: str) -> bool:
        """Whether the router's redirect (a slash added or removed) could find a route."""
        if not self._router.redirect_slashes or path == "/":
            return False
        other = path.rstrip("/") if path.endswith("/") else path + "/"
        return self.routes_for(other) != ()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _TELEMETRY_KEY in scope or scope.get("root_path"):
            # A root_path changes the path the routes see and the redirect's: the walk.
            await self._walk(scope, receive, send)
            return
        path = get_route_path(scope)
        candidates = self.routes_for(path)
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
        if partial is not None:
            route, child_scope = partial
            scope.setdefault("router", self._router)
            scope.update(child_scope)
            await route.handle(scope, receive, send)
            return
        if path in self._index or self._redirect_may_match(path):
            await self._walk(scope, receive, send)  # the walk decides (a redirect, a 404)
            return
        # No route matches this path with any method, nor its redirect: what the walk ends
        # with (starlette.routing.Router.app, fastapi.routing.APIRouter.app).
        scope.setdefault("router", self._router)
        await self._router.default(scope, receive, send)


def install(router: Router) -> ExactPaths:
    """Put the index in front of ``router``'s walk; the router stays the ASGI app."""
    fast = ExactPaths(router)
    router.middleware_stack = fast
    return fast


def build_index(
    shapes: Sequence[tuple[BaseRoute, Shape | None]],
) -> dict[str, tuple[BaseRoute, ...]]:
    """Each exact route path → the routes that could match it, in order."""
    exact = [path for _, shape in shapes if shape is not None for path in sorted(shape.exact)]
    return {
        path: tuple(r for r, shape in shapes if _may_match(r, shape, path))
        for path in dict.fromkeys(exact)
    }


def _may_match(route: BaseRoute, shape: Shape | None, path: str) -> bool:
    if shape is not None:
        return shape.may_match(path)
    for method in _METHODS:  # a kind we cannot read: ask it, with every method
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


def _self_answering(route: BaseRoute) -> SelfAnswering | None:
    """The endpoint of a plain route of every method when it is a :class:`SelfAnswering`
    one itself (middleware of the route's own would wrap it in another app); else None."""
    if type(route) is Route and route.methods is None:
        app = route.app
        if isinstance(app, SelfAnswering):
            return app
    return None


def _has_low_priority_routes(router: Router) -> bool:
    """FastAPI's low-priority routes (``APIRouter.frontend``) answer after the walk and its
    redirect, before ``default``: with any, unknown paths take the walk."""
    low = getattr(router, "_iter_low_priority_routes", None)
    if low is None:
        return hasattr(router, "_low_priority_routes")  # a FastAPI we do not know: walk
    return any(True for _ in low())
