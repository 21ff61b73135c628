"""The ``simgate`` command line (typer + rich)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from simgate.cli import admin, gateway, serve
from simgate.cli.common import Globals

app = typer.Typer(
    name="simgate",
    help="Self-hosted SMS and voice gateway (itniotech, Dinstar and OpenVox APIs).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _globals(
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Data directory (default ./data).")
    ] = None,
    config: Annotated[Path | None, typer.Option("--config", help="TOML settings file.")] = None,
) -> None:
    Globals.data_dir = data_dir
    Globals.config = config


serve.register(app)
app.add_typer(admin.accounts_app, name="accounts")
app.add_typer(admin.apps_app, name="apps")
app.add_typer(admin.keys_app, name="keys")
app.add_typer(admin.users_app, name="users")
app.add_typer(admin.rates_app, name="rates")
app.add_typer(admin.lines_app, name="lines")
app.add_typer(admin.messages_app, name="messages")
app.add_typer(admin.sim_app, name="sim")
app.add_typer(gateway.gateway_app, name="gateway")
app.command("send")(admin.send)


def main() -> None:
    app()
