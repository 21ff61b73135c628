"""The ``simgate`` command line (typer + rich)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from typer._click.exceptions import ClickException, NoArgsIsHelpError

from simgate.cli import admin, calls, fx, gateway, pushes, serve, smpp_users
from simgate.cli.common import Globals, err_console, esc
from simgate.cli.console_users import console_users_app

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
app.add_typer(fx.fx_app, name="fx")
app.add_typer(calls.calls_app, name="calls")
app.add_typer(admin.lines_app, name="lines")
app.add_typer(admin.messages_app, name="messages")
app.add_typer(admin.sim_app, name="sim")
app.add_typer(gateway.gateway_app, name="gateway")
app.add_typer(pushes.pushes_app, name="pushes")
app.add_typer(smpp_users.smpp_users_app, name="smpp-users")
app.add_typer(console_users_app, name="console-users")
app.command("send")(admin.send)


def main() -> None:
    """Run the CLI; usage errors (``--port abc``) are one line on stderr like all others."""
    try:
        code = app(standalone_mode=False)
    except NoArgsIsHelpError as exc:  # bare ``simgate accounts``: show the help
        exc.show()
        sys.exit(exc.exit_code)
    except ClickException as exc:  # exit code 2 for usage errors, as click has it
        message = " ".join(exc.format_message().split())
        err_console.print(f"[bold red]error:[/] {esc(message)}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
