"""The import direction of the design ("Import direction", design.md), checked on the source.

Areas (folders under src/simgate, and the base modules) form a DAG:
codecs → stdlib only; domain → codecs (+ phonenumbers); base modules (settings, clock, errors,
metrics, secretbox, logsetup, lease_loop) → each other and domain.money; media → domain, base;
lines → codecs, domain, base; store → domain, codecs, base; push → domain, codecs, base; services →
domain, store, codecs, media, push, the line protocols, base; dispatch → services, domain, the
line protocols, base; api → services, domain, codecs, lines.base, push.base, base; runtime (the
composition root), cli and testing → anything. Only the store's owners (services, store, runtime,
testing) touch the store, and neither api nor the push formats touch SQLAlchemy. No import
circle, between modules or between areas.
"""

from __future__ import annotations

import ast
import functools
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "simgate"

BASE = tuple(
    f"simgate.{m}"
    # lease_loop: the worker loop of dispatch and push alike (push may not import dispatch).
    # settings_lines: the line and SMPP server models settings.py re-exports.
    for m in (
        "settings",
        "settings_lines",
        "clock",
        "errors",
        "metrics",
        "secretbox",
        "logsetup",
        "lease_loop",
    )
)
LINE_PROTOCOL = "simgate.lines.base"
VOICE_PROTOCOL = "simgate.lines.voice"
EVERYTHING = ("simgate",)

# Source area → module prefixes it may import (besides its own area).
RULES: dict[str, tuple[str, ...]] = {
    "codecs": (),
    "domain": ("simgate.codecs",),
    "media": ("simgate.domain", *BASE),  # audio decoding and text to speech
    "lines": ("simgate.codecs", "simgate.domain", *BASE),
    "store": ("simgate.domain", "simgate.codecs", *BASE),
    # The push engine (sender, transport, ssrf, signing, lanes, policy, outbox) and the
    # PushFormat seam in push/base.py: fed by events, it never reads the store itself.
    "push": ("simgate.domain", "simgate.codecs", *BASE),
    "services": (
        "simgate.domain",
        "simgate.store",
        "simgate.codecs",
        "simgate.media",
        "simgate.push",
        LINE_PROTOCOL,
        VOICE_PROTOCOL,
        *BASE,
    ),
    "dispatch": ("simgate.services", "simgate.domain", LINE_PROTOCOL, VOICE_PROTOCOL, *BASE),
    "api": (
        "simgate.services",
        "simgate.domain",
        "simgate.codecs",
        LINE_PROTOCOL,  # port and capability values the dialects render
        "simgate.push.base",  # the push format seam each dialect implements
        *BASE,
    ),
    # The web console (issue 19): pages over the services; the port values and actions of
    # lines.base; the login limiter and client address every HTTP edge shares (api/auth.py,
    # api/http.py), never a dialect.
    "console": (
        "simgate.services",
        "simgate.domain",
        LINE_PROTOCOL,
        "simgate.api.auth",
        "simgate.api.http",
        *BASE,
    ),
    "runtime": EVERYTHING,  # the composition root
    "cli": EVERYTHING,  # composes through runtime; the store and concrete classes checked below
    "testing": EVERYTHING,  # shipped fakes
    **{base.split(".")[1]: (*BASE, "simgate.domain.money") for base in BASE},
}
FUTURE_AREAS: frozenset[str] = frozenset()

THIRD_PARTY_OK: dict[str, frozenset[str]] = {
    "codecs": frozenset(),
    "domain": frozenset({"phonenumbers"}),
}

# Who may touch the store: import simgate.store*, or hold, pass or reach one (``.store``,
# ``_store``, a ``store`` parameter or keyword).
STORE_OWNERS = frozenset({"services", "store", "runtime", "testing"})
STORE_NAMES = frozenset({"store", "_store"})


def _no_sqlalchemy(module: str) -> bool:
    """api (all of it, the dialects' push formats included), the console, and push/base.py,
    the format seam."""
    return (
        module == "simgate.api"
        or module.startswith(("simgate.api.", "simgate.console"))
        or module in ("simgate.push.base",)
    )


# ---- what is broken today ----------------------------------------------------------------
# Each table lists what breaks a rule today, with the reason and who removes it. A new
# violation fails its test; a fixed one fails it too (remove its line here), so the tables
# only shrink, and are empty when the work that removes them has landed.

# Import edges (source, target) against RULES (store imports: see KNOWN_STORE_ACCESS).
KNOWN: dict[tuple[str, str], str] = {}

# Modules outside STORE_OWNERS that touch the store.
KNOWN_STORE_ACCESS: dict[str, str] = {}

# Modules that must not import SQLAlchemy but do.
KNOWN_SQLALCHEMY: dict[str, str] = {}

# Import circles (their modules), between modules and between areas.
KNOWN_CYCLES: dict[frozenset[str], str] = {}
KNOWN_AREA_CYCLES: dict[frozenset[str], str] = {}


CONCRETE = ("simgate.dispatch", "simgate.lines.")  # only runtime (and cli, testing) import them
CONCRETE_OK = ("runtime", "testing", "dispatch", "lines")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> list[str]:
    return _imports_of(
        _module_name(path), path.read_text(encoding="utf-8"), path.name == "__init__.py"
    )


@functools.cache
def _parse(text: str) -> ast.Module:
    """Each source is read by several checks: parse it once."""
    return ast.parse(text)


def _is_module(name: str) -> bool:
    path = SRC / name.replace(".", "/")
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def _from_base(module: str, node: ast.ImportFrom, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = (module if is_package else module.rsplit(".", 1)[0]).split(".")
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports_of(module: str, text: str, is_package: bool = False) -> list[str]:
    """Absolute names of every module imported anywhere in ``text`` (also inside functions)."""
    out: list[str] = []
    for node in ast.walk(_parse(text)):
        if isinstance(node, ast.Import):
            out.extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            name = _from_base(module, node, is_package)
            out.append(name)
            # ``from simgate.store import tables`` imports a module: count it as such.
            for a in node.names:
                if (SRC / name.replace(".", "/") / f"{a.name}.py").exists():
                    out.append(f"{name}.{a.name}")
    return out


def _graph_targets(module: str, text: str, is_package: bool = False) -> list[str]:
    """The modules ``text`` makes Python run, as edges of the import graph.

    Unlike ``_imports_of``, ``from package import submodule`` is an edge to the submodule
    only: a package's own ``__init__`` importing its submodules is then not a circle.
    """
    out: list[str] = []
    for node in ast.walk(_parse(text)):
        if isinstance(node, ast.Import):
            out.extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            name = _from_base(module, node, is_package)
            subs = [f"{name}.{a.name}" for a in node.names if _is_module(f"{name}.{a.name}")]
            out.extend(subs)
            if len(subs) < len(node.names):
                out.append(name)
    return [t for t in out if t != module]


def _area(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "simgate"


def _allowed(source: str, target: str) -> bool:
    area = _area(source)
    if target == "simgate" or _area(target) == area:
        return True
    return any(target == p or target.startswith(p + ".") or p == "simgate" for p in RULES[area])


def _is_store(target: str) -> bool:
    return target == "simgate.store" or target.startswith("simgate.store.")


SOURCES = sorted(p for p in PACKAGE.rglob("*.py"))
TEXTS = {_module_name(p): (p, p.read_text(encoding="utf-8")) for p in SOURCES}


@functools.cache
def _edges() -> list[tuple[str, str]]:
    edges: list[tuple[str, str]] = []
    for path in SOURCES:
        source = _module_name(path)
        edges.extend((source, t) for t in _imports(path) if t.startswith("simgate"))
    return edges


def _direction_broken(source: str, target: str) -> bool:
    # Store imports from outside its owners are the store-access test's to report.
    if _is_store(target) and _area(source) not in STORE_OWNERS:
        return False
    return not _allowed(source, target)


def test_every_area_has_a_rule() -> None:
    areas = {_area(_module_name(p)) for p in SOURCES} - {"simgate"}
    assert areas <= set(RULES), areas - set(RULES)


def test_future_areas_do_not_exist_yet() -> None:
    """A rule for an area that has no folder guards nothing: it must say so."""
    areas = {_area(_module_name(p)) for p in SOURCES}
    assert set(RULES) - areas == FUTURE_AREAS, "move arrived areas out of FUTURE_AREAS"


def test_import_direction() -> None:
    broken = sorted(
        {(s, t) for s, t in _edges() if _direction_broken(s, t) and (s, t) not in KNOWN}
    )
    assert broken == [], "\n".join(f"{s} imports {t}" for s, t in broken)


def test_known_exceptions_still_exist() -> None:
    edges = {e for e in _edges() if _direction_broken(*e)}
    stale = [edge for edge in KNOWN if edge not in edges]
    assert stale == [], f"fixed: remove from KNOWN: {stale}"


def test_only_the_composition_root_knows_concrete_classes() -> None:
    broken = sorted(
        (s, t)
        for s, t in _edges()
        if t.startswith(CONCRETE)
        and not t.startswith((LINE_PROTOCOL, VOICE_PROTOCOL))
        and _area(s) not in CONCRETE_OK
    )
    # The CLI reaches lines and the dispatcher only through runtime.Runtime.
    assert broken == [], "\n".join(f"{s} imports {t}" for s, t in broken)


@pytest.mark.parametrize("area", sorted(THIRD_PARTY_OK))
def test_pure_areas_use_only_the_stdlib(area: str) -> None:
    allowed = THIRD_PARTY_OK[area] | set(sys.stdlib_module_names) | {"simgate", "__future__"}
    broken = sorted(
        (_module_name(p), name)
        for p in SOURCES
        if _area(_module_name(p)) == area
        for name in _imports(p)
        if name.split(".")[0] not in allowed
    )
    assert broken == [], broken


# ---- store access --------------------------------------------------------------------------
@dataclass(frozen=True)
class Access:
    line: int
    what: str


def _store_access_of(module: str, text: str, is_package: bool = False) -> list[Access]:
    """Every place ``text`` reaches a store: imports of simgate.store*, attributes and names
    ``store``/``_store``, parameters and keywords named so."""
    out: list[Access] = []
    for node in ast.walk(_parse(text)):
        if isinstance(node, ast.Import | ast.ImportFrom):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                names = [_from_base(module, node, is_package)]
            out.extend(Access(node.lineno, f"imports {n}") for n in names if _is_store(n))
        elif isinstance(node, ast.Attribute) and node.attr in STORE_NAMES:
            out.append(Access(node.lineno, f"{ast.unparse(node)}"))
        elif isinstance(node, ast.Name) and node.id == "_store":
            out.append(Access(node.lineno, "name _store"))
        elif isinstance(node, ast.arg) and node.arg in STORE_NAMES:
            out.append(Access(node.lineno, f"parameter {node.arg}"))
        elif isinstance(node, ast.keyword) and node.arg in STORE_NAMES:
            out.append(Access(node.lineno, f"keyword {node.arg}="))
    return out


@functools.cache
def _store_access() -> dict[str, list[Access]]:
    found: dict[str, list[Access]] = {}
    for module, (path, text) in TEXTS.items():
        if _area(module) in STORE_OWNERS:
            continue
        hits = _store_access_of(module, text, path.name == "__init__.py")
        if hits:
            found[module] = hits
    return found


def test_only_its_owners_touch_the_store() -> None:
    found = _store_access()
    broken = {m: hits for m, hits in found.items() if m not in KNOWN_STORE_ACCESS}
    assert broken == {}, "\n".join(
        f"{m}:{h.line}: {h.what}"
        for m, hits in sorted(broken.items())
        for h in sorted(hits, key=lambda h: (h.line, h.what))
    )


def test_known_store_access_still_exists() -> None:
    stale = sorted(set(KNOWN_STORE_ACCESS) - set(_store_access()))
    assert stale == [], f"fixed: remove from KNOWN_STORE_ACCESS: {stale}"


# ---- SQLAlchemy ----------------------------------------------------------------------------
def _sqlalchemy_users() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for module, (path, text) in TEXTS.items():
        if not _no_sqlalchemy(module):
            continue
        names = [
            n
            for n in _imports_of(module, text, path.name == "__init__.py")
            if n.split(".")[0] == "sqlalchemy"
        ]
        if names:
            found[module] = names
    return found


def test_api_and_push_formats_never_import_sqlalchemy() -> None:
    broken = {m: n for m, n in _sqlalchemy_users().items() if m not in KNOWN_SQLALCHEMY}
    assert broken == {}, "\n".join(f"{m} imports {', '.join(n)}" for m, n in broken.items())


def test_known_sqlalchemy_users_still_exist() -> None:
    stale = sorted(set(KNOWN_SQLALCHEMY) - set(_sqlalchemy_users()))
    assert stale == [], f"fixed: remove from KNOWN_SQLALCHEMY: {stale}"


# ---- circles -------------------------------------------------------------------------------
def _cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan), each as one circle
    through its nodes where one is found, else its sorted nodes."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(node: str) -> None:
        # Recursion depth is bounded by the number of modules (a few hundred).
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                out.append(_circle(graph, set(component)))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(out)


def _circle(graph: Mapping[str, Iterable[str]], component: set[str]) -> list[str]:
    """One closed walk from the component's first node back to it (breadth first)."""
    start = min(component)
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for nxt in sorted(graph.get(node, ())):
            if nxt == start:
                return [*paths[node], start]
            if nxt in component and nxt not in paths:
                paths[nxt] = [*paths[node], nxt]
                queue.append(nxt)
    return sorted(component)  # pragma: no cover (a strongly connected component has a circle)


@functools.cache
def _module_graph() -> dict[str, frozenset[str]]:
    graph: dict[str, frozenset[str]] = {}
    for module, (path, text) in TEXTS.items():
        targets = _graph_targets(module, text, path.name == "__init__.py")
        graph[module] = frozenset(t for t in targets if t in TEXTS)
    return graph


def _area_graph() -> dict[str, frozenset[str]]:
    graph: dict[str, set[str]] = {}
    for source, targets in _module_graph().items():
        graph.setdefault(_area(source), set()).update(
            _area(t) for t in targets if _area(t) != _area(source)
        )
    return {area: frozenset(targets) for area, targets in graph.items()}


def _check_cycles(found: list[list[str]], known: Mapping[frozenset[str], str], what: str) -> None:
    new = [c for c in found if frozenset(c) not in known]
    stale = [sorted(k) for k in known if k not in {frozenset(c) for c in found}]
    assert new == [], f"{what} circles:\n" + "\n".join(" → ".join(c) for c in new)
    assert stale == [], f"fixed: remove from the known {what} circles: {stale}"


def test_no_module_import_circle() -> None:
    _check_cycles(_cycles(_module_graph()), KNOWN_CYCLES, "module")


def test_no_area_import_circle() -> None:
    _check_cycles(_cycles(_area_graph()), KNOWN_AREA_CYCLES, "area")


def test_the_rules_themselves_form_a_dag() -> None:
    """What RULES allow between areas has no circle (else no code could satisfy them)."""
    base = {b.split(".")[1] for b in BASE}  # one group: they may import each other

    def group(area: str) -> str:
        return "base" if area in base else area

    allowed: dict[str, set[str]] = {}
    for area, prefixes in RULES.items():
        if prefixes != EVERYTHING:
            targets = {group(_area(p)) for p in prefixes} - {group(area)}
            allowed.setdefault(group(area), set()).update(targets)
    assert _cycles(allowed) == []


# ---- the checker itself --------------------------------------------------------------------
def test_the_checker_itself() -> None:
    """Relative imports, imports inside functions and imported submodules are all seen."""
    text = (
        "from . import ids\n"
        "from ..store import tables\n"
        "def f():\n"
        "    import simgate.dispatch.worker\n"
    )
    names = _imports_of("simgate.domain.messages", text)
    assert names == [
        "simgate.domain",
        "simgate.domain.ids",
        "simgate.store",
        "simgate.store.tables",
        "simgate.dispatch.worker",
    ]
    assert _graph_targets("simgate.domain.messages", text) == [
        "simgate.domain.ids",
        "simgate.store.tables",
        "simgate.dispatch.worker",
    ]
    assert _allowed("simgate.api.dialects.itnio.sms", "simgate.services.sending")
    assert _allowed("simgate.lines.sim", "simgate.settings")
    assert _allowed("simgate.settings", "simgate.domain.money")
    assert _allowed("simgate.dispatch.worker", "simgate.services.sending")
    assert _allowed("simgate.api.dialects.itnio.push", "simgate.push.base")
    assert not _allowed("simgate.api.dialects.itnio.push", "simgate.push.outbox")
    assert not _allowed("simgate.codecs.gsm7", "simgate.errors")
    assert not _allowed("simgate.api.app", "simgate.dispatch.worker")
    assert not _allowed("simgate.domain.ids", "simgate.store")
    assert not _allowed("simgate.services.sending", "simgate.lines.sim")
    assert not _allowed("simgate.settings", "simgate.store")
    assert not _allowed("simgate.settings", "simgate.domain.messages")
    assert not _allowed("simgate.push.outbox", "simgate.store")
    assert not _allowed("simgate.push.sender", "simgate.services.container")
    assert not _allowed("simgate.dispatch.worker", "simgate.store.messages")
    assert not _allowed("simgate.api.dialects.itnio.sms", "simgate.store.itnio")


def test_the_store_access_checker() -> None:
    """Imports (relative too), attribute access, ``_store`` names, parameters and keywords."""
    text = (
        "from ..store import Store\n"
        "import simgate.store.tables\n"
        "from simgate.services import sending\n"
        "def f(services, sv, store):\n"
        "    services.store.db\n"
        "    sv.store\n"
        "    _store = 1\n"
        "    self._store.messages\n"
        "    Worker(store=x)\n"
        "    services.stored, storefront, restore\n"
    )
    hits = _store_access_of("simgate.dispatch.worker", text)
    assert sorted((h.line, h.what) for h in hits) == [
        (1, "imports simgate.store"),
        (2, "imports simgate.store.tables"),
        (4, "parameter store"),
        (5, "services.store"),
        (6, "sv.store"),
        (7, "name _store"),
        (8, "self._store"),
        (9, "keyword store="),
    ]
    assert _store_access_of("simgate.dispatch.worker", "from simgate import services\n") == []


def test_the_sqlalchemy_checker() -> None:
    assert _no_sqlalchemy("simgate.api.app")
    assert _no_sqlalchemy("simgate.api.dialects.itnio.push")
    assert _no_sqlalchemy("simgate.push.base")
    assert not _no_sqlalchemy("simgate.push.outbox")
    text = "def f():\n    from sqlalchemy.ext.asyncio import AsyncConnection\n"
    assert [n for n in _imports_of("simgate.api.app", text) if n.split(".")[0] == "sqlalchemy"] == [
        "sqlalchemy.ext.asyncio"
    ]


def test_the_circle_finder() -> None:
    graph = {
        "a": ["b"],
        "b": ["c", "d"],
        "c": ["a"],  # a → b → c → a
        "d": ["e"],
        "e": [],
        "x": ["y"],
        "y": ["x"],  # x ⇄ y
        "z": ["z"],  # a module importing itself is no circle here
    }
    assert _cycles(graph) == [["a", "b", "c", "a"], ["x", "y", "x"]]
    assert _cycles({"a": ["b"], "b": ["c"], "c": []}) == []
    with pytest.raises(AssertionError, match=r"a → b → c → a"):
        _check_cycles(_cycles(graph), {frozenset({"x", "y"}): "known"}, "module")
    with pytest.raises(AssertionError, match="fixed"):
        _check_cycles([], {frozenset({"x", "y"}): "known"}, "module")
