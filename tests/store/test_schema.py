"""The schema is assembled in one place (store/schema.py), not by import side effects."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

from simgate.store import schema, tables


def _tables_after_importing(module: str) -> set[str]:
    """The tables on ``metadata`` in a fresh interpreter that imported only ``module``."""
    code = (
        f"import json, {module}\n"
        "from simgate.store.tables import metadata\n"
        "print(json.dumps(sorted(metadata.tables)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    return set(json.loads(out.stdout))


def test_the_core_tables_module_imports_no_other_table_module() -> None:
    """store/tables.py declares ``metadata`` and the core tables; it gathers nothing."""
    tree = ast.parse(Path(tables.__file__).read_text(encoding="utf-8"))
    imported = {
        node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
    } | {a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names}
    assert imported == {"__future__", "sqlalchemy"}


def test_the_schema_module_holds_every_table() -> None:
    assert _tables_after_importing("simgate.store.schema") == set(schema.metadata.tables)
    assert {"accounts", "messages", "pushes", "calls", "fx_rates", "dinstar_inbound"} <= set(
        schema.metadata.tables
    )
    indexes = {i.name for t in schema.metadata.tables.values() for i in t.indexes}
    assert {"ix_inbound_sender", "ix_messages_recipient", "ix_pushes_due"} <= indexes
