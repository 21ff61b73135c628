"""Messages (search and one message's page), incoming SMS and calls.

The search reads its filters from the query string (a GET form: bookmarkable, works without
JavaScript) and pages with a cursor (``before`` = the last id shown), never an offset.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from simgate.console import views
from simgate.console.context import Console
from simgate.console.security import Refused, in_scope, scope
from simgate.domain import ids
from simgate.domain.messages import State
from simgate.services.console_auth import ConsoleSession
from simgate.services.console_queries import PAGE, MessageFilter

FIELDS = ("number", "id", "account", "app", "state", "line", "from", "to")


def _int(text: str, what: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    if not text.isdigit() or len(text) > 19:
        raise Refused(400, f"{what} must be digits")
    return int(text)


def _path_id(text: str, what: str, *, missing: str) -> int:
    """An id from the URL path: 404 ``missing`` when empty (as for an id that is not there)."""
    found = _int(text, what)
    if found is None:
        raise Refused(404, missing)
    return found


def _number_and_cursor(request: Request) -> tuple[str | None, int | None]:
    """The list pages' number filter (a leading + ignored) and ``before`` cursor."""
    number = request.query_params.get("number", "").strip().lstrip("+") or None
    return number, _int(request.query_params.get("before", ""), "before")


async def message_filter(
    console: Console, session: ConsoleSession, args: dict[str, str]
) -> MessageFilter:
    tz = session.user.timezone
    account_id = scope(session)
    if account_id is None and args.get("account", "").strip():
        account_id = (await console.services.accounts.get_account(args["account"].strip())).id
    app_pk = None
    if args.get("app", "").strip():
        app = await console.services.accounts.get_app(args["app"].strip())
        if app is None:
            raise Refused(404, "no such app")
        in_scope(session, app.account_id)
        app_pk = app.id
    state = None
    if args.get("state", "").strip():
        name = args["state"].strip().upper()
        if name not in State.__members__:
            raise Refused(400, f"unknown state {name}")
        state = State[name]
    start = views.parse_local(args.get("from", ""), tz)
    end = views.parse_local(args.get("to", ""), tz)
    return MessageFilter(
        account_id=account_id,
        app_id=app_pk,
        number=args.get("number", "").strip().lstrip("+") or None,
        message_id=_int(args.get("id", ""), "id"),
        state=state,
        line=args.get("line", "").strip() or None,
        id_from=None if start is None else ids.lower_bound(start),
        # "to" is a minute in the form: everything up to its last second.
        id_to=None if end is None else ids.upper_bound(end + 59_999),
    )


def add_routes(router: APIRouter, console: Console) -> None:
    @router.get("/messages")
    async def messages(request: Request) -> Response:
        session = await console.session(request)
        args = {k: request.query_params.get(k, "") for k in (*FIELDS, "before")}
        f = await message_filter(console, session, args)
        rows = await console.services.console.search_messages(
            scope(session), f, before_id=_int(args["before"], "before"), limit=PAGE
        )
        more = rows[-1].id if len(rows) == PAGE else None
        keep = {k: v for k, v in args.items() if v and k != "before"}
        return console.render(
            request,
            session,
            "messages.html",
            rows=rows,
            args=args,
            keep=keep,
            more=more,
            states=list(State.__members__),
            title="Messages",
        )

    @router.get("/messages/{message_id}")
    async def message(request: Request, message_id: str) -> Response:
        session = await console.session(request)
        found = _path_id(message_id, "a message id", missing="no such message")
        detail = await console.services.console.message(scope(session), found)
        return console.render(
            request, session, "message.html", d=detail, title=f"Message {detail.message.id}"
        )

    @router.get("/inbound")
    async def incoming(request: Request) -> Response:
        session = await console.session(request)
        number, before = _number_and_cursor(request)
        rows = await console.services.console.search_inbound(
            scope(session), number=number, before_id=before
        )
        more = rows[-1].id if len(rows) == PAGE else None
        return console.render(
            request,
            session,
            "inbound.html",
            rows=rows,
            number=number or "",
            more=more,
            title="Incoming SMS",
        )

    @router.get("/inbound/{inbound_id}")
    async def incoming_one(request: Request, inbound_id: str) -> Response:
        session = await console.session(request)
        found = _path_id(inbound_id, "an incoming SMS id", missing="no such incoming SMS")
        detail = await console.services.console.inbound(scope(session), found)
        return console.render(
            request, session, "inbound_one.html", d=detail, title=f"Incoming SMS {found}"
        )

    @router.get("/calls")
    async def calls(request: Request) -> Response:
        session = await console.session(request)
        number, before = _number_and_cursor(request)
        rows = await console.services.console.search_calls(
            scope(session), number=number, before_id=before
        )
        more = rows[-1].id if len(rows) == PAGE else None
        return console.render(
            request, session, "calls.html", rows=rows, number=number or "", more=more,
            title="Calls",
        )  # fmt: skip

    @router.get("/calls/{call_id}")
    async def call(request: Request, call_id: str) -> Response:
        session = await console.session(request)
        found = _path_id(call_id, "a call id", missing="no such call")
        record = await console.services.console.call(scope(session), found)
        return console.render(request, session, "call.html", c=record, title=f"Call {record.id}")
