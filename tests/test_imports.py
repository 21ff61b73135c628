"""The import direction of the design ("Import direction", design.md), checked on the source.

codecs → stdlib only; domain → codecs (+ phonenumbers); store → domain; services → domain,
store, codecs; lines → codecs, domain; dispatch → store, domain, the line protocol; api →
services, domain; only runtime.py (and the CLI, which composes through it) knows concrete
lines and the dispatcher. Base modules (settings, clock, errors, metrics, secretbox, logsetup)
may be imported from anywhere but codecs, and import only each other.
"""

from __future__ import annotations

import ast
import functools
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "simgate"

BASE = tuple(
    f"simgate.{m}" for m in ("settings", "clock", "errors", "metrics", "secretbox", "logsetup")
)
LINE_PROTOCOL = "simgate.lines.base"
VOICE_PROTOCOL = "simgate.lines.voice"
EVERYTHING = ("simgate",)

# Source area → module prefixes it may import (besides its own area).
RULES: dict[str, tuple[str, ...]] = {
    "codecs": (),
    "domain": ("simgate.codecs", *BASE),
    "store": ("simgate.domain", "simgate.codecs", *BASE),
    "services": (
        "simgate.domain",
        "simgate.store",
        "simgate.codecs",
        "simgate.media",
        "simgate.push",  # the push service: URL guard, push settings, planned pushes
        LINE_PROTOCOL,
        VOICE_PROTOCOL,
        *BASE,
    ),
    "lines": ("simgate.codecs", "simgate.domain", *BASE),
    "media": ("simgate.domain", *BASE),  # audio decoding and text to speech
    "dispatch": ("simgate.domain", "simgate.store", LINE_PROTOCOL, VOICE_PROTOCOL, *BASE),
    "push": ("simgate.domain", "simgate.store", "simgate.codecs", *BASE),
    "api": (
        "simgate.services",
        "simgate.domain",
        "simgate.codecs",
        LINE_PROTOCOL,  # port and capability values the dialects render
        "simgate.push.base",  # the planner seam each dialect implements
        *BASE,
    ),
    "console": ("simgate.services", "simgate.domain", *BASE),
    "runtime": EVERYTHING,  # the composition root
    "cli": EVERYTHING,  # composes through runtime; concrete classes checked below
    "testing": EVERYTHING,  # shipped fakes
    **{base.split(".")[1]: BASE for base in BASE},
}

THIRD_PARTY_OK: dict[str, frozenset[str]] = {
    "codecs": frozenset(),
    "domain": frozenset({"phonenumbers"}),
}

# Edges that break the rules today, each with its reason. A new violation fails the test; a
# fixed one fails it too (remove it here), so this list only shrinks.
KNOWN: dict[tuple[str, str], str] = {
    # Amounts in settings are checked at start with the money parser (stdlib only itself).
    ("simgate.settings", "simgate.domain.money"): "settings validate amounts once, at start",
    # The outbox hook stores planned pushes through the push service until it moves to services.
    ("simgate.push.outbox", "simgate.services.pushes"): "outbox hook not yet in services",
}


def _dialect_store(source: str, target: str) -> bool:
    """A dialect may use its own store module (``simgate.store.<dialect>*``) and the Store.

    Not in the design's picture (api → services only): the dialects keep their queries and
    push planners next to their tables; push planners get a connection from the push seam.
    """
    parts = source.split(".")
    if parts[:3] != ["simgate", "api", "dialects"] or len(parts) < 4:
        return False
    return target == "simgate.store" or target.startswith(f"simgate.store.{parts[3]}")


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


def _imports_of(module: str, text: str, is_package: bool = False) -> list[str]:
    """Absolute names of every module imported anywhere in ``text`` (also inside functions)."""
    package = module if is_package else module.rsplit(".", 1)[0]
    out: list[str] = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            out.extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            out.append(name)
            # ``from simgate.store import tables`` imports a module: count it as such.
            for a in node.names:
                if (SRC / name.replace(".", "/") / f"{a.name}.py").exists():
                    out.append(f"{name}.{a.name}")
    return out


def _area(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "simgate"


def _allowed(source: str, target: str) -> bool:
    area = _area(source)
    if target == "simgate" or _area(target) == area:
        return True
    return any(target == p or target.startswith(p + ".") or p == "simgate" for p in RULES[area])


SOURCES = sorted(p for p in PACKAGE.rglob("*.py"))


@functools.cache
def _edges() -> list[tuple[str, str]]:
    edges: list[tuple[str, str]] = []
    for path in SOURCES:
        source = _module_name(path)
        edges.extend((source, t) for t in _imports(path) if t.startswith("simgate"))
    return edges


def test_every_area_has_a_rule() -> None:
    areas = {_area(_module_name(p)) for p in SOURCES} - {"simgate"}
    assert areas <= set(RULES), areas - set(RULES)


def test_import_direction() -> None:
    broken = sorted(
        {
            (s, t)
            for s, t in _edges()
            if not (_allowed(s, t) or (s, t) in KNOWN or _dialect_store(s, t))
        }
    )
    assert broken == [], "\n".join(f"{s} imports {t}" for s, t in broken)


def test_known_exceptions_still_exist() -> None:
    edges = set(_edges())
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
    assert _allowed("simgate.api.dialects.itnio.sms", "simgate.services.sending")
    assert _allowed("simgate.lines.sim", "simgate.settings")
    assert not _allowed("simgate.codecs.gsm7", "simgate.errors")
    assert not _allowed("simgate.api.app", "simgate.dispatch.worker")
    assert not _allowed("simgate.domain.ids", "simgate.store")
    assert not _allowed("simgate.services.sending", "simgate.lines.sim")
    assert not _allowed("simgate.settings", "simgate.store")
    assert _dialect_store("simgate.api.dialects.itnio.sms", "simgate.store.itnio")
    assert not _dialect_store("simgate.api.dialects.itnio.sms", "simgate.store.dinstar")
    assert not _dialect_store("simgate.api.app", "simgate.store")
