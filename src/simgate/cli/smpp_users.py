"""``simgate smpp-users create|list``: SMPP accounts that bind to the SMPP server (issue 18)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from simgate.cli.common import console, esc, with_services
from simgate.services.container import Services
from simgate.services.smpp_users import SmppUser, SmppUserService, UserListing

smpp_users_app = typer.Typer(help="SMPP accounts (the SMPP server).", no_args_is_help=True)


def _users(s: Services) -> SmppUserService:
    assert s.smpp_users is not None
    return s.smpp_users


@smpp_users_app.command("create")
def create(
    account: Annotated[str, typer.Argument(help="The simgate account (name or id) it bills.")],
    *,
    system_id: Annotated[str, typer.Option("--system-id", help="Bind system_id (<= 15).")],
    password: Annotated[
        str | None, typer.Option("--password", help="<= 8 characters; generated if left out.")
    ] = None,
    allow: Annotated[
        list[str] | None, typer.Option("--allow", help="Address or CIDR a bind may come from.")
    ] = None,
    max_binds: Annotated[int, typer.Option("--max-binds", help="Binds open at once.")] = 4,
    tps: Annotated[int, typer.Option("--tps", help="submit_sm per second; 0 = no cap.")] = 0,
) -> None:
    """Create an SMPP account of ACCOUNT; prints the password once."""

    async def action(s: Services) -> tuple[SmppUser, str]:
        return await _users(s).create(
            account=account,
            system_id=system_id,
            password=password,
            allow=allow or [],
            max_binds=max_binds,
            tps=tps,
        )

    user, secret = with_services(action)
    console.print(f"smpp user {esc(user.system_id)} created for account {esc(account)}")
    if password is None:
        console.print(f"password: {esc(secret)}")


@smpp_users_app.command("list")
def list_users() -> None:
    """SMPP accounts with the binds open now (from every process)."""
    rows: list[UserListing] = with_services(lambda s: _users(s).listing())
    table = Table(title="smpp users")
    for column in ("system_id", "account", "allow", "max_binds", "tps", "live binds"):
        table.add_column(column)
    for r in rows:
        u = r.user
        table.add_row(
            esc(u.system_id),
            esc(r.account_name),
            esc(", ".join(u.allow_cidrs) or "any"),
            str(u.max_binds),
            str(u.tps or "no cap"),
            str(r.live_binds),
        )
    console.print(table)
