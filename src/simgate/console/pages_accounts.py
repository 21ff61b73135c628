"""Accounts: balance, top-up, credit, lock; apps with their push settings; API keys (create
with the secret shown once, revoke); the rates and exchange rates.

Money moves (top-up, credit, lock) are the operator's; an account's admin manages its own
keys. Another account's id answers 404 to an account's user, whatever the action.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from simgate.console.context import PREFIX, Console
from simgate.console.security import Refused, in_scope, require_admin, scope
from simgate.domain.accounts import Account
from simgate.services.console_auth import ConsoleSession

SECRET_KEYS = ("signing_secret",)


async def _account(console: Console, session: ConsoleSession, account_id: int) -> Account:
    in_scope(session, account_id)
    return await console.services.accounts.get_account(account_id)


def _operator_acts(session: ConsoleSession) -> None:
    require_admin(session)
    if scope(session) is not None:
        raise Refused(403, "only the operator moves money or locks accounts")


def add_routes(router: APIRouter, console: Console) -> None:
    sv = console.services

    async def account_page(
        request: Request, session: ConsoleSession, account_id: int, **extra: Any
    ) -> Response:
        account = await _account(console, session, account_id)
        apps = await sv.accounts.list_apps(account.id)
        keys = await sv.accounts.list_keys(account.id)
        return console.render(
            request,
            session,
            "account.html",
            a=account,
            apps=apps,
            keys=keys,
            secret_keys=SECRET_KEYS,
            title=f"Account {account.name}",
            **extra,
        )

    @router.get("/accounts")
    async def accounts(request: Request) -> Response:
        session = await console.session(request)
        listed = await sv.console.accounts(scope(session))
        rates = await sv.accounts.list_rates()
        fx = await sv.fx.list_rates()
        return console.render(
            request, session, "accounts.html", accounts=listed, rates=rates, fx=fx,
            title="Accounts",
        )  # fmt: skip

    @router.get("/accounts/{account_id}")
    async def account(request: Request, account_id: int) -> Response:
        session = await console.session(request)
        return await account_page(request, session, account_id)

    @router.post("/accounts/{account_id}/topup")
    async def topup(request: Request, account_id: int) -> Response:
        session, form = await console.acting(request)
        await _account(console, session, account_id)
        _operator_acts(session)
        await sv.accounts.topup(
            account_id, amount=form.get("amount", ""), by=f"console:{session.user.username}"
        )
        return RedirectResponse(f"{PREFIX}/accounts/{account_id}", status_code=303)

    @router.post("/accounts/{account_id}/credit")
    async def credit(request: Request, account_id: int) -> Response:
        session, form = await console.acting(request)
        await _account(console, session, account_id)
        _operator_acts(session)
        await sv.accounts.set_credit(account_id, form.get("amount", ""))
        return RedirectResponse(f"{PREFIX}/accounts/{account_id}", status_code=303)

    @router.post("/accounts/{account_id}/lock")
    async def lock(request: Request, account_id: int) -> Response:
        session, form = await console.acting(request)
        await _account(console, session, account_id)
        _operator_acts(session)
        await sv.accounts.set_locked(account_id, form.get("locked") == "1")
        return RedirectResponse(f"{PREFIX}/accounts/{account_id}", status_code=303)

    @router.post("/accounts/{account_id}/keys")
    async def create_key(request: Request, account_id: int) -> Response:
        session, _ = await console.acting(request)
        await _account(console, session, account_id)
        require_admin(session)
        key = await sv.accounts.create_key(account_id)
        # The one time the secret is shown: the page is not cached (Cache-Control: no-store).
        return await account_page(request, session, account_id, new_key=key)

    @router.post("/accounts/{account_id}/keys/{key}/revoke")
    async def revoke_key(request: Request, account_id: int, key: str) -> Response:
        session, _ = await console.acting(request)
        await _account(console, session, account_id)
        require_admin(session)
        found = await sv.accounts.get_key(key)
        if found is None or found.account_id != account_id:
            raise Refused(404, "no such key")
        await sv.accounts.revoke_key(key)
        return RedirectResponse(f"{PREFIX}/accounts/{account_id}", status_code=303)

    @router.post("/accounts/{account_id}/apps/{app_id}/push")
    async def app_push(request: Request, account_id: int, app_id: str) -> Response:
        session, form = await console.acting(request)
        await _account(console, session, account_id)
        require_admin(session)
        app = await sv.accounts.get_app(app_id)
        if app is None or app.account_id != account_id:
            raise Refused(404, "no such app")
        changes: dict[str, str | None] = {}
        for name in ("report_url", "mo_url"):
            value = form.get(name, "").strip()
            if value:
                await sv.pushes.validate_url(value)  # the SSRF guard every push URL passes
            changes[name] = value
        await sv.accounts.update_app_push(app_id, changes)
        return RedirectResponse(f"{PREFIX}/accounts/{account_id}", status_code=303)
