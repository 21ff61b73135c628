"""The SMPP package stays pure: stdlib only, and no I/O or clock modules."""

from __future__ import annotations

import ast
import doctest
import sys
from pathlib import Path

import simgate.codecs.smpp as package
from simgate.codecs.smpp import session

FORBIDDEN = {"asyncio", "socket", "time", "selectors", "threading", "ssl", "random"}


def imported_modules(path: Path) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module.split(".")[0])
    return modules


def test_only_stdlib_and_simgate_imports() -> None:
    files = sorted(Path(package.__file__).parent.glob("*.py"))
    assert len(files) >= 10
    for path in files:
        modules = imported_modules(path)
        assert not modules & FORBIDDEN, path.name
        third_party = {m for m in modules if m not in sys.stdlib_module_names}
        assert third_party <= {"simgate"}, (path.name, third_party)


def test_session_docstring_example() -> None:
    result = doctest.testmod(session, raise_on_error=True)
    assert result.attempted >= 4
