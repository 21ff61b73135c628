"""SMS endpoints of the itniotech API (spec §1.3-§1.8, §7): parse → call a service → render.

Every path is served at the root (``/sms/...``, itniotech), under ``/v3/sms/...`` and in BUKA's
own layout directly under ``/v3/`` (``/v3/sendSms``...), where the official BUKA SDK calls them
with its one base URL (spec §1.1, "Amendments").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request, Response

from simgate.api.auth import TtlCache
from simgate.api.dialects.itnio import render
from simgate.api.dialects.itnio.auth import AuthContext, Authenticator, authenticated
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
from simgate.api.dialects.itnio.replay import CommitAnswer, ReplayGuard
from simgate.api.dialects.itnio.sending import SendItem, send_items
from simgate.api.dialects.itnio.settings import ItnioSettings
from simgate.domain import ids
from simgate.domain.accounts import App, AppKind
from simgate.domain.money import format_amount
from simgate.services.container import Services

GET_MAX_NUMBERS = 100  # spec §1.3
POST_MAX_NUMBERS = 1000  # spec §1.3; also the batch total (§1.4, assumed)
MAX_MSG_IDS = 200  # spec §1.5
MAX_WINDOW_MS = 31 * 86_400_000  # spec §1.6, §1.8
MO_EARLIEST_MS = 1_656_604_800_000  # 2022-07-01T00:00:00+08:00 (spec §1.8)
MAX_QUERY_FIELDS = 64
MAX_CACHED_APPS = 10_000


@dataclass
class SmsApi:
    services: Services
    cfg: ItnioSettings
    auth: Authenticator
    guard: ReplayGuard
    _apps: TtlCache[str, App | None] = field(init=False)

    def __post_init__(self) -> None:
        # Apps change as rarely as keys: cached as long (a deleted app is refused that late).
        self._apps = TtlCache(
            self.services.clock,
            ttl_s=self.cfg.auth_cache_seconds,
            max_entries=MAX_CACHED_APPS,
            epoch=self.services.accounts.epoch,
        )
        self._limit = self.services.settings.http.max_body_bytes

    # ---- shared steps ----------------------------------------------------------------
    async def _app(self, ctx: AuthContext, data: dict[str, Any]) -> App:
        app_id = text_field(data, "appId", max_len=32)
        app = await self._apps.get_or_load(app_id, lambda: self.services.accounts.get_app(app_id))
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

    # ---- send ------------------------------------------------------------------------
    async def send_sms(self, request: Request, ctx: AuthContext) -> Response:
        is_get = request.method == "GET"
        body = b"" if is_get else await read_body(request, self._limit)

        async def produce(commit: CommitAnswer) -> bytes:
            data = self._query(request) if is_get or not body.strip() else parse_object(body)
            app = await self._app(ctx, data)
            item = SendItem.parse(data, self.cfg)
            limit = GET_MAX_NUMBERS if is_get else POST_MAX_NUMBERS
            return await send_items(self.services, ctx, app, [item], limit, commit=commit)

        return json_response(await self.guard.once_committed(ctx, request, body, produce))

    async def send_batch(self, request: Request, ctx: AuthContext) -> Response:
        body = await read_body(request, self._limit)

        async def produce(commit: CommitAnswer) -> bytes:
            data = parse_object(body)
            app = await self._app(ctx, data)
            array = data.get("array")
            if array is None or array == []:
                raise ItnioError(-8, "array is empty")
            if not isinstance(array, list) or not all(isinstance(i, dict) for i in array):
                raise ItnioError(-22, "array must be a JSONArray of objects")
            items = [SendItem.parse(i, self.cfg) for i in array]
            return await send_items(self.services, ctx, app, items, POST_MAX_NUMBERS, commit=commit)

        return json_response(await self.guard.once_committed(ctx, request, body, produce))

    # ---- queries ---------------------------------------------------------------------
    async def get_report(self, request: Request, ctx: AuthContext) -> Response:
        async def produce() -> bytes:
            data = self._query(request)
            app = await self._app(ctx, data)
            wanted = _msg_ids(text_field(data, "msgIds", max_len=MAX_MSG_IDS * 21))
            oldest = ids.lower_bound(
                self.services.clock.now_ms() - self.cfg.history_days * 86_400_000
            )
            # 19 digits may pass 2**63 (a BIGINT): such an id is simply not found (§1.5).
            rows = await self.services.itnio.report_rows(
                app_id=app.id, ids=[i for i in wanted if oldest <= i <= ids.MAX_ID]
            )
            mine = {row[0]: row for row in rows}
            tz = ctx.account.timezone
            items = [render.report_row_item(mine[i], tz) for i in wanted if i in mine]
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

        return json_response(await enveloped(produce))

    async def get_sent_rcd(self, request: Request, ctx: AuthContext) -> Response:
        async def produce() -> bytes:
            data = self._query(request)
            app = await self._app(ctx, data)
            start, end = self._window(data, "startTime", "endTime", bad_format=-11)
            if start < self.services.clock.now_ms() - self.cfg.history_days * 86_400_000:
                raise ItnioError(-25, f"only the last {self.cfg.history_days} days are kept")
            offset = int_field(data, "startIndex", default=0, lo=0, hi=10**9)
            rows = await self.services.itnio.sent_page(
                app_id=app.id,
                id_from=ids.lower_bound(start),
                id_to=ids.upper_bound(end),
                states=render.SENT_RCD_STATES,
                offset=offset,
                limit=self.cfg.page_rows,
            )
            tz = ctx.account.timezone
            items = [render.sent_row_item(r, tz) for r in rows]
            failed = sum(1 for i in items if i["status"] == "2")
            return ok_body(success=str(len(items) - failed), fail=str(failed), array=items)

        return json_response(await enveloped(produce))

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

    async def get_balance(self, request: Request, ctx: AuthContext) -> Response:
        async def produce() -> bytes:
            account = await self.services.accounts.get_account(ctx.account.id)
            return ok_body(
                balance=format_amount(account.balance_micros),
                gift=format_amount(account.gift_micros),
                credit=format_amount(account.credit_micros),
            )

        return json_response(await enveloped(produce))

    async def record_mo(self, request: Request, ctx: AuthContext) -> Response:
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
            found = await self.services.itnio.mo_page(
                account_id=app.account_id,
                id_from=ids.lower_bound(start),
                id_to=ids.upper_bound(end),
                offset=(current - 1) * size,
                limit=size,
            )
            tz, currency = ctx.account.timezone, ctx.account.currency
            page = {
                "total": found.total,
                "size": size,
                "current": current,
                "pages": math.ceil(found.total / size),
                "records": [render.mo_record(r, tz, currency) for r in found.records],
            }
            return ok_body(data=page)

        return json_response(await enveloped(produce))

    # ---- routes ----------------------------------------------------------------------
    def router(self) -> APIRouter:
        r = APIRouter()
        for path, handler, methods in (
            ("sendSms", self.send_sms, ["GET", "POST"]),
            ("sendSms/batch", self.send_batch, ["POST"]),
            ("getReport", self.get_report, ["GET"]),
            ("getSentRcd", self.get_sent_rcd, ["GET"]),
            ("getBalance", self.get_balance, ["GET"]),
            ("recordMo", self.record_mo, ["POST"]),
        ):
            endpoint = authenticated(self.auth, handler)
            for prefix in ("/sms", "/v3/sms", "/v3"):
                r.add_api_route(f"{prefix}/{path}", endpoint, methods=methods)
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
