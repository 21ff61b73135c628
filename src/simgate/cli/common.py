"""What every CLI command shares: settings from options, a runtime, one-line errors."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

import typer
import uvloop
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from simgate.errors import SimgateError
from simgate.runtime import Role, Runtime
from simgate.services.container import Services
from simgate.settings import Settings, load_settings

T = TypeVar("T")

console = Console()
err_console = Console(stderr=True)


class Globals:
    """Options given before the command (``simgate --data-dir D accounts list``)."""

    data_dir: Path | None = None
    config: Path | None = None


def esc(value: object) -> str:
    """``value`` as text rich prints verbatim: every string the CLI prints that holds user
    data (names, URLs, messages) goes through here, or rich reads ``[...]`` as markup and
    drops it (``http://[fe80::1]:18080/`` printed as ``http://:18080/``, issue 14 item 17)."""
    return escape(str(value))


def fail(message: str, code: int = 1) -> None:
    err_console.print(f"[bold red]error:[/] {esc(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def settings_from(
    *,
    data_dir: Path | None = None,
    config: Path | None = None,
    host: str | None = None,
    port: int | None = None,
) -> Settings:
    config = config or Globals.config
    if config is None and os.environ.get("SIMGATE_CONFIG"):
        config = Path(os.environ["SIMGATE_CONFIG"])
    overrides: dict[str, Any] = {
        "data_dir": str(data_dir or Globals.data_dir) if (data_dir or Globals.data_dir) else None,
        "http.host": host,
        "http.port": port,
    }
    return load_settings(config, environ=os.environ, overrides=overrides)


def run_async(coro_fn: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine, turning simgate's errors into one line on stderr and exit code 1."""
    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(coro_fn())
    except SimgateError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        sys.exit(130)
    raise AssertionError("unreachable")


def with_services(action: Callable[[Services], Awaitable[T]], *, role: Role = "admin") -> T:
    """Open the runtime (migrating the database), run ``action`` with its services, close;
    errors as one line."""

    async def main() -> T:
        runtime = Runtime(settings_from(), role=role)
        try:
            services = await runtime.open()
            return await action(services)
        finally:
            await runtime.close()

    return run_async(main)


# A cell without spaces is a token (a msgId, a number, a key): it is never cut short or
# broken; the columns of free text give way instead (issue 19: "2612031…" on 80 columns).
_TOKEN_MAX = 40


def add_columns(table: Table, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Add ``columns`` to ``table`` sized for ``rows``: token columns keep their width,
    other columns fold (wrap, never an ellipsis)."""
    for i, name in enumerate(columns):
        cells = [r[i] for r in rows if i < len(r) and r[i]]
        longest = max((len(c) for c in cells), default=0)
        if cells and longest <= _TOKEN_MAX and not any(" " in c for c in cells):
            table.add_column(name, no_wrap=True, min_width=longest, overflow="fold")
        else:
            table.add_column(name, overflow="fold")
