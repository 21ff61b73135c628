"""Pushes: pending, failed and dead per endpoint; one push with its attempts; retry, purge.

A push belongs to the account of the records it reports on (``pushes.account_id``, migration
0014): an account's user sees and retries its own pushes, and gets 404 for another's, as
for any id. Pushes of no one account (a Dinstar batch of several accounts' messages, a
port's registration) and purging are the operator's.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from simgate.console.context import PREFIX, Console
from simgate.console.security import Refused, require_admin, require_operator, scope

STATES = ("pending", "failed", "dead", "delivered")


def add_routes(router: APIRouter, console: Console) -> None:
    @router.get("/pushes")
    async def pushes(request: Request) -> Response:
        session = await console.session(request)
        state = request.query_params.get("state", "dead")
        if state not in STATES:
            raise Refused(400, f"state must be one of {', '.join(STATES)}")
        endpoint = request.query_params.get("endpoint", "").strip() or None
        rows = await console.services.pushes.list(
            states=[state], endpoint=endpoint, limit=100, account_id=scope(session)
        )
        per_endpoint = await console.services.console.pushes_by_endpoint(scope(session))
        return console.render(
            request,
            session,
            "pushes.html",
            rows=rows,
            state=state,
            states=STATES,
            endpoint=endpoint or "",
            per_endpoint=per_endpoint,
            title="Pushes",
        )

    @router.get("/pushes/{push_id}")
    async def push(request: Request, push_id: int) -> Response:
        session = await console.session(request)
        detail = await console.services.console.push(scope(session), push_id)
        return console.render(
            request,
            session,
            "push.html",
            p=detail.push,
            attempts=detail.attempts,
            title=f"Push {detail.push.id}",
        )

    @router.post("/pushes/{push_id}/retry")
    async def retry_one(request: Request, push_id: int) -> Response:
        session, _ = await console.acting(request)
        # Another account's push is 404 before a viewer's 403: a refusal tells no ids.
        view = (await console.services.console.push(scope(session), push_id)).push
        require_admin(session)
        if view.state not in ("failed", "dead"):
            raise Refused(409, f"push {push_id} is {view.state}: only failed or dead ones retry")
        await console.services.pushes.retry(ids=[push_id])
        return RedirectResponse(f"{PREFIX}/pushes/{push_id}", status_code=303)

    @router.post("/pushes/retry")
    async def retry_all(request: Request) -> Response:
        session, form = await console.acting(request)
        require_admin(session)
        state = form.get("state", "dead")
        endpoint = form.get("endpoint", "").strip() or None
        await console.services.pushes.retry(
            states=[state], endpoint=endpoint, account_id=scope(session)
        )
        return RedirectResponse(f"{PREFIX}/pushes?state=pending", status_code=303)

    @router.post("/pushes/purge")
    async def purge(request: Request) -> Response:
        session, form = await console.acting(request)
        require_operator(session)
        require_admin(session)
        state = form.get("state", "")
        days = form.get("older_than_days", "").strip()
        if not days.isdigit():
            raise Refused(400, "older than: a whole number of days")
        await console.services.pushes.purge(states=[state], older_than_seconds=int(days) * 86400)
        return RedirectResponse(f"{PREFIX}/pushes?state={state}", status_code=303)
