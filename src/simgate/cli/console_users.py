"""``simgate console-users``: who may log in to the web console (issue 19)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from simgate.cli.common import add_columns, console, esc, with_services
from simgate.services.console_auth import ConsoleRole

console_users_app = typer.Typer(help="Web console users (/console).", no_args_is_help=True)


@console_users_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Login name.")],
    password: Annotated[
        str | None, typer.Option("--password", help="At least 8 characters; generated if absent.")
    ] = None,
    role: Annotated[
        ConsoleRole, typer.Option("--role", help="admin acts, viewer only reads.")
    ] = ConsoleRole.ADMIN,
    account: Annotated[
        str | None, typer.Option("--account", help="Only this account's data (name or id).")
    ] = None,
    timezone: Annotated[
        str, typer.Option("--timezone", help="Zone the console shows times in.")
    ] = "UTC",
) -> None:
    """Create a console user; a generated password is printed once."""
    user, chosen = with_services(
        lambda s: s.console_auth.create_user(
            username=name, password=password, role=role.value, account=account, timezone=timezone
        )
    )
    scope = f"account {user.account_id}" if user.account_id is not None else "every account"
    console.print(f"console user {esc(user.username)} ({user.role.value}, {scope})", soft_wrap=True)
    if password is None:
        console.print(f"password: {esc(chosen)}", soft_wrap=True)


@console_users_app.command("list")
def list_users() -> None:
    users = with_services(lambda s: s.console_auth.list_users())
    rows = [
        [
            u.username,
            u.role.value,
            "all" if u.account_id is None else str(u.account_id),
            u.timezone,
        ]
        for u in users
    ]
    table = Table(title="console users")
    add_columns(table, ["name", "role", "account", "time zone"], rows)
    for r in rows:
        table.add_row(*(esc(c) for c in r))
    console.print(table)


@console_users_app.command("delete")
def delete(name: Annotated[str, typer.Argument(help="Login name.")]) -> None:
    """Delete a user; its console sessions end at once."""
    with_services(lambda s: s.console_auth.delete_user(name))
    console.print(f"deleted console user {esc(name)}", soft_wrap=True)
