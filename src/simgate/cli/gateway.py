"""``simgate gateway``: the Dinstar gateway's push target (spec §2.9).

The target is stored in the database (``kv`` document ``dinstar.push``), so every process
sees it at once and it overrides ``[dinstar] push_url``/``push_types``.
"""

from __future__ import annotations

from typing import Annotated

import typer

from simgate.api.dialects.dinstar.settings import PUSH_TYPES
from simgate.cli.common import console, esc, fail, with_services
from simgate.services.container import Services

gateway_app = typer.Typer(help="The Dinstar gateway API: push target.", no_args_is_help=True)


def parse_types(raw: list[str]) -> list[str]:
    types = [t.strip() for item in raw for t in item.split(",") if t.strip()]
    unknown = [t for t in types if t not in PUSH_TYPES]
    if unknown:
        fail(f"unknown push type(s): {', '.join(unknown)} (known: {', '.join(PUSH_TYPES)})")
    return types or list(PUSH_TYPES)


@gateway_app.command("push")
def push(
    url: Annotated[str, typer.Option("--url", help="Receiver URL; empty turns pushes off.")],
    types: Annotated[
        list[str] | None,
        typer.Option("--types", help=f"Event types (comma list): {', '.join(PUSH_TYPES)}."),
    ] = None,
) -> None:
    """Set where the gateway pushes events, and which types."""
    chosen = parse_types(types or [])
    with_services(lambda s: _set_target(s, url, chosen))
    if url:
        console.print(f"pushing {', '.join(chosen)} to {esc(url)}")
    else:
        console.print("gateway pushes are off")


async def _set_target(s: Services, url: str, types: list[str]) -> None:
    if url:
        # The validator every other push URL setting uses (issue 14 item 12): shape (no CR/LF,
        # no userinfo, http(s) only) and the SSRF guard, at configuration time.
        await s.pushes.validate_url(url)
    await s.dinstar.set_push_target(url=url, types=types)


@gateway_app.command("show")
def show() -> None:
    """Show the stored push target."""
    target = with_services(lambda s: s.dinstar.push_target())
    if target is None or not target.url:
        console.print("no push target stored (settings [dinstar] push_url applies)")
        return
    console.print(f"url: {esc(target.url)}\ntypes: {', '.join(target.types)}")
