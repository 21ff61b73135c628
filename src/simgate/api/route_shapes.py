"""Which paths a route can match at all, read from the route once (api/exact_paths.py).

A route's shape is the exact paths it spells (no ``{param}``) and the regexes of the rest;
a route matches a path with some HTTP method only if the path is one of the exact ones or
one of the regexes matches it. ``None`` is a route whose matching we cannot read (a kind we
do not know, a subclass that overrides ``matches``, a Host): it may match anything, and is
always asked.

FastAPI (>= 0.13x) includes a router as one ``_IncludedRouter`` route that walks the
included routes on every ``matches``; its shape is the union of the shapes of what it
walks (``effective_candidates()``: each an ``_EffectiveRouteContext`` with the prefixed
``path_regex`` of an ``APIRoute``, or a ``starlette_route``, or a nested included router).
These are FastAPI internals: if a FastAPI upgrade changes them the shape is ``None`` (the
route is asked, as before, only slower) and tests/api/test_unmatched.py fails to say so.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import fastapi.routing
from fastapi.routing import APIRoute, APIRouter
from starlette.routing import BaseRoute, Mount, Route

# A path spelled without parameters compiles to ^path$; `$` also matches before a final
# newline, so "/sms/send\n" matches the route "/sms/send": paths ending in one are walked.
_PLAIN_MATCHES = {Route.matches, Mount.matches, APIRoute.matches}
_INCLUDED = getattr(fastapi.routing, "_IncludedRouter", None)


@dataclass(frozen=True)
class Shape:
    exact: frozenset[str]
    # Each regex with the literal start of the path it matches (compile_path's ^escaped
    # text before the first parameter): most paths are told apart by a startswith.
    patterns: tuple[tuple[str, re.Pattern[str]], ...]

    def may_match(self, path: str) -> bool:
        if path in self.exact:
            return True
        for start, pattern in self.patterns:
            if path.startswith(start) and pattern.match(path):
                return True
        return False


def shape_of(route: object) -> Shape | None:
    """What ``route`` can match (see the module docstring), None when we cannot tell."""
    if isinstance(route, (Route, Mount)):
        if type(route).matches not in _PLAIN_MATCHES:
            return None
        return _of_regex(route.path_regex, route.path_format if isinstance(route, Route) else None)
    if _INCLUDED is not None and type(route) is _INCLUDED:
        candidates = getattr(route, "effective_candidates", None)
        router = getattr(route, "original_router", None)
        # APIRouter.matches walks effective_candidates(): a subclass may not.
        if callable(candidates) and isinstance(router, APIRouter):
            if type(router).matches is not APIRouter.matches:
                return None
            return _union(_context_shape(c) for c in candidates())
    return None


def _context_shape(candidate: object) -> Shape | None:
    if _INCLUDED is not None and type(candidate) is _INCLUDED:
        return shape_of(candidate)
    starlette_route = getattr(candidate, "starlette_route", None)
    if starlette_route is not None:
        return shape_of(starlette_route)
    original = getattr(candidate, "original_route", None)
    regex = getattr(candidate, "path_regex", None)
    if (
        isinstance(original, APIRoute)
        and type(original).matches is APIRoute.matches
        and isinstance(regex, re.Pattern)
    ):
        return _of_regex(regex, getattr(candidate, "path_format", None))
    return None


def _of_regex(regex: re.Pattern[str], path_format: str | None) -> Shape:
    """A regex that spells one path (Starlette's compile_path of a path without parameters:
    ^escaped$) is that path; any other stays a regex."""
    if path_format is not None and regex.pattern == "^" + re.escape(path_format) + "$":
        return Shape(frozenset((path_format,)), ())
    return Shape(frozenset(), ((_literal_start(regex.pattern), regex),))


def _literal_start(pattern: str) -> str:
    """The text every match of ``pattern`` starts with: compile_path's ``^`` and the escaped
    text before the first ``(?P<``; "" (always try the regex) for anything else."""
    head = pattern[1 : pattern.find("(?P<")] if "(?P<" in pattern else ""
    if not pattern.startswith("^") or not head:
        return ""
    text = re.sub(r"\\(.)", r"\1", head)
    return text if re.escape(text) == head else ""


def _union(shapes: Iterable[Shape | None]) -> Shape | None:
    exact: set[str] = set()
    patterns: list[tuple[str, re.Pattern[str]]] = []
    for shape in shapes:
        if shape is None:
            return None
        exact |= shape.exact
        patterns.extend(shape.patterns)
    return Shape(frozenset(exact), tuple(patterns))


def route_lists(routes: list[BaseRoute]) -> list[list[BaseRoute]]:
    """``routes`` and the route list of every router included in it, however deep: the
    shapes hold while none of these lists changes length (a route added or removed)."""
    out = [routes]
    for route in routes:
        included = getattr(route, "original_router", None)
        if _INCLUDED is not None and type(route) is _INCLUDED and included is not None:
            out.extend(route_lists(included.routes))
    return out
