"""SMS endpoints of the itniotech API (spec §1.3-§1.8, §7): parse → call a service → render.

Every path is served at the root (``/sms/...``, itniotech) and under ``/v3`` (BUKA clone).
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request, Response

from simgate.api.dialects.itnio import render
from simgate.api.dialects.itnio.auth import AuthContext, Caller
from simgate.api.dialects.itnio.config import ItnioSettings
from simgate.api.dialects.itnio.envelope import (
    ItnioError,
    enveloped,
    int_field,
    json_response,
    ok_body,
    parse_object,
    read_body,
    text_field,
)
from simgate.api.dialects.itnio.replay import ReplayGuard
from simgate.api.dialects.itnio.sending import SendItem, send_items
from simgate.domain import ids
from simgate.domain.accounts import App, AppKind
from simgate.domain.money import format_amount
from simgate.services.container import Services
from simgate.store.itnio import sent_page

GET_MAX_NUMBERS = 100  # spec §1.3
POST_MAX_NUMBERS = 1000  # spec §1.3; also the batch total (§1.4, assumed)
MAX_MSG_IDS = 200  # spec §1.5
MAX_WINDOW_MS = 31 * 86_400_000  # spec §1.6, §1.8
MO_EARLIEST_MS = 1_656_604_800_000  # 2022-07-01T00:00:00+08:00 (spec §1.8)
MAX_QUERY_FIELDS = 64


@dataclass
class SmsApi:
    services: Services
    cfg: ItnioSettings
    guard: ReplayGuard

    def __post_init__(self) -> None:
        self._apps: dict[str, tuple[float, App | None]] = {}
        self._limit = self.services.settings.http.max_body_bytes

    # ---- shared steps ----------------------------------------------------------------
    async def _app(self, ctx: AuthContext, data: dict[str, Any]) -> App:
        app_id = text_field(data, "appId", max_len=32)
        now = time.monotonic()
        hit = self._apps.get(app_id)
        if hit is not None and hit[0] > now:
            app = hit[1]
        else:
            app = await self.services.accounts.get_app(app_id)
            if self.cfg.auth_cache_seconds > 0:
                if len(self._apps) > 10_000:
                    self._apps.clear()
                self._apps[app_id] = (now + self.cfg.auth_cache_seconds, app)
        if app is None or app.account_id != ctx.account.id or app.kind is not AppKind.SMS:
            raise ItnioError(-14, "appId is not an SMS app of this account")
        return app

    def _query(self, request: Request) -> dict[str, Any]:
        raw = request.scope.get("query_string", b"").decode("latin-1")
        try:
            pairs = parse_qsl(
                raw, keep_blank_values=True, errors="strict", max_num_fields=MAX_QUERY_FIELDS
            )
        except UnicodeDecodeError:
            raise ItnioError(-22, "query string is not UTF-8") from None
        except ValueError:
            raise ItnioError(-22, "too many query fields") from None
        out: dict[str, Any] = {}
        for k, v in pairs:
            out.setdefault(k, v)
        return out

    async def _run(self, produce: Callable[[], Awaitable[bytes]]) -> bytes:
        return await enveloped(produce)

    # ---- send ------------------------------------------------------------------------
    async def send_sms(self, request: Request, ctx: Caller) -> Response:
        is_get = request.method == "GET"
        body = b"" if is_get else await read_body(request, self._limit)

        async def produce() -> bytes:
            data = self._query(request) if is_get or not body.strip() else parse_object(body)
            app = await self._app(ctx, data)
            item = SendItem.parse(data, self.cfg)
            limit = GET_MAX_NUMBERS if is_get else POST_MAX_NUMBERS
            return await send_items(self.services, ctx, app, [item], limit)

        return json_response(
            await self._run(lambda: self.guard.once(ctx, request, body, lambda: self._run(produce)))
        )

    async def send_batch(self, request: Request, ctx: Caller) -> Response:
        body = await read_body(request, self._limit)

        async def produce() -> bytes:
            data = parse_object(body)
            app = await self._app(ctx, data)
            array = data.get("array")
            if array is None or array == []:
                raise ItnioError(-8, "array is empty")
            if not isinstance(array, list) or not all(isinstance(i, dict) for i in array):
                raise ItnioError(-22, "array must be a JSONArray of objects")
            items = [SendItem.parse(i, self.cfg) for i in array]
            return await send_items(self.services, ctx, app, items, POST_MAX_NUMBERS)

        return json_response(
            await self._run(lambda: self.guard.once(ctx, request, body, lambda: self._run(produce)))
        )

    # ---- queries ---------------------------------------------------------------------
    async def get_report(self, request: Request, ctx: Caller) -> Response:
        async def produce() -> bytes:
            data = self._query(request)
            app = await self._app(ctx, data)
            wanted = _msg_ids(text_field(data, "msgIds", max_len=MAX_MSG_IDS * 21))
            oldest = ids.lower_bound(
                self.services.clock.now_ms() - self.cfg.history_days * 86_400_000
            )
            store = self.services.store
            async with store.db.read() as conn:
                rows = await store.messages.get(conn, [i for i in wanted if i >= oldest])
            mine = {m.id: m for m in rows if m.app_id == app.id}
            tz = ctx.account.timezone
            items = [render.report_item(mine[i], tz) for i in wanted if i in mine]
            counts = {"0": 0, "1": 0, "-1": 0}
            for item in items:
                counts[item["status"]] += 1
            return ok_body(
                success=str(counts["0"]),
                fail=str(counts["1"]),
                sending=str(counts["-1"]),
                nofound=str(len(wanted) - len(items)),
                array=items,
            )

        return json_response(await self._run(produce))

    async def get_sent_rcd(self, request: Request, ctx: Caller) -> Response:
        async def produce() -> bytes:
            data = self._query(request)
            app = await self._app(ctx, data)
            start, end = self._window(data, "startTime", "endTime", bad_format=-11)
            if start < self.services.clock.now_ms() - self.cfg.history_days * 86_400_000:
                raise ItnioError(-25, f"only the last {self.cfg.history_days} days are kept")
            offset = int_field(data, "startIndex", default=0, lo=0, hi=10**9)
            async with self.services.store.db.read() as conn:
                rows = await sent_page(
                    conn,
                    app_id=app.id,
                    id_from=ids.lower_bound(start),
                    id_to=ids.upper_bound(end),
                    states=[int(s) for s in render.SENT_RCD_STATES],
                    offset=offset,
                    limit=self.cfg.page_rows,
                )
            tz = ctx.account.timezone
            items = [render.sent_row_item(r, tz) for r in rows]
            failed = sum(1 for i in items if i["status"] == "2")
            return ok_body(success=str(len(items) - failed), fail=str(failed), array=items)

        return json_response(await self._run(produce))

    def _window(self, data: dict[str, Any], a: str, b: str, *, bad_format: int) -> tuple[int, int]:
        texts = [
            text_field(data, a, empty_code=bad_format),
            text_field(data, b, empty_code=bad_format),
        ]
        start, end = (render.parse_iso(t) for t in texts)
        if start is None or end is None:
            raise ItnioError(bad_format, f"{a} and {b} must be ISO 8601 with an offset")
        if end < start or end - start > MAX_WINDOW_MS:
            raise ItnioError(-25, "the window must run forward and span at most 31 days")
        return start, end

    async def get_balance(self, request: Request, ctx: Caller) -> Response:
        async def produce() -> bytes:
            account = await self.services.accounts.get_account(ctx.account.id)
            return ok_body(
                balance=format_amount(account.balance_micros),
                gift=format_amount(account.gift_micros),
                credit=format_amount(account.credit_micros),
            )

        return json_response(await self._run(produce))

    async def record_mo(self, request: Request, ctx: Caller) -> Response:
        body = await read_body(request, self._limit)

        async def produce() -> bytes:
            data = parse_object(body) if body.strip() else self._query(request)
            app = await self._app(ctx, data)
            current = int_field(data, "current", lo=1, hi=10**7)
            size = int_field(data, "size", lo=1, hi=100)
            params = data.get("params")
            if not isinstance(params, dict):
                raise ItnioError(-22, "params must be an object with strTime and endTime")
            start, end = self._window(params, "strTime", "endTime", bad_format=-22)
            if start < MO_EARLIEST_MS:
                raise ItnioError(-25, "strTime earlier than 2022-07-01T00:00:00+08:00")
            store = self.services.store
            lo, hi = ids.lower_bound(start), ids.upper_bound(end)
            async with store.db.read() as conn:
                total = await store.inbound.count(
                    conn, account_id=app.account_id, id_from=lo, id_to=hi
                )
                rows = await store.inbound.page(
                    conn,
                    account_id=app.account_id,
                    id_from=lo,
                    id_to=hi,
                    offset=(current - 1) * size,
                    limit=size,
                )
            tz, currency = ctx.account.timezone, ctx.account.currency
            page = {
                "total": total,
                "size": size,
                "current": current,
                "pages": math.ceil(total / size),
                "records": [render.mo_record(r, tz, currency) for r in rows],
            }
            return ok_body(data=page)

        return json_response(await self._run(produce))

    # ---- routes ----------------------------------------------------------------------
    def router(self) -> APIRouter:
        r = APIRouter()
        for prefix in ("", "/v3"):
            r.add_api_route(f"{prefix}/sms/sendSms", self.send_sms, methods=["GET", "POST"])
            r.add_api_route(f"{prefix}/sms/sendSms/batch", self.send_batch, methods=["POST"])
            r.add_api_route(f"{prefix}/sms/getReport", self.get_report, methods=["GET"])
            r.add_api_route(f"{prefix}/sms/getSentRcd", self.get_sent_rcd, methods=["GET"])
            r.add_api_route(f"{prefix}/sms/getBalance", self.get_balance, methods=["GET"])
            r.add_api_route(f"{prefix}/sms/recordMo", self.record_mo, methods=["POST"])
        return r


def _msg_ids(text: str) -> list[int]:
    out: list[int] = []
    seen: set[int] = set()
    for raw in text.split(","):
        token = raw.strip()
        if not token.isascii() or not token.isdigit() or len(token) > 19:
            raise ItnioError(-14, f"query id abnormal: {token[:24]!r}")
        value = int(token)
        if value not in seen:
            seen.add(value)
            out.append(value)
    if len(out) > MAX_MSG_IDS:
        raise ItnioError(-14, f"at most {MAX_MSG_IDS} msgIds per call")
    return out
