"""Voice endpoints of the itniotech API (spec §1.11-§1.15, §7): parse → VoiceService → render.

Every path is served at the root (``/voice/...``, itniotech) and under ``/v3`` (BUKA clone).
Errors use the shared envelope, with the voice pages' own codes (:data:`VOICE_ERROR_CODES`):
their code lists have no -9, -14 or -19, so a bad number, an unknown id and a missing price are
-22, -22 and -26 here while the SMS endpoints keep their codes.

Decisions (spec §7 leaves them open):

- An appId that is missing, unknown, another account's or an SMS app: -22 (the voice pages
  list no -14).
- ``accent`` (sendCode) is accepted and ignored: espeak-ng has one accent per language.
- sendGroup: numbers that are not 7-15 digits get their own item with terminationCode "-9"
  and voiceId "" (no call exists to query); the request still succeeds ("0") when some or
  even none of the numbers were valid, as the per-callee codes already say what happened.
- fileUpload goes through the replay guard like the sends: a retried identical upload gets
  the first fileId back, not -20 for its own name.
- recordGroup / recordGroupQuery look back :data:`HISTORY_DAYS` days ("the last two months").
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request, Response

from simgate.api.dialects.itnio import render, voice_render
from simgate.api.dialects.itnio.auth import AuthContext, Authenticator, authenticated
from simgate.api.dialects.itnio.envelope import (
    ERROR_CODES,
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
from simgate.api.dialects.itnio.settings import ItnioSettings
from simgate.domain import ids
from simgate.domain.accounts import App, AppKind
from simgate.domain.calls import CallOptions
from simgate.errors import (
    ContentEmpty,
    ContentTooLong,
    InvalidNumber,
    NoPricing,
    NotFound,
    TooManyNumbers,
)
from simgate.services.container import Services
from simgate.services.voice import MAX_GROUP_CALLEES, TtsRequest

# The voice pages' code lists (§1.11-§1.15) replace these SMS codes; the rest is shared.
VOICE_ERROR_CODES: tuple[tuple[type[Exception], int], ...] = (
    (NoPricing, -26),
    (NotFound, -22),
    (InvalidNumber, -22),
    (TooManyNumbers, -22),
    (ContentEmpty, -22),
    (ContentTooLong, -22),
    *ERROR_CODES,
)

MAX_TEXT = 1000  # sendCode text (§1.11, newer page)
MAX_CALLED_INFO = 1000  # §1.11, §1.12
MAX_NUMBER_TEXT = 24  # one callee as sent: 15 digits plus a "+" or "00" and spaces
MAX_WINDOW_MS = 31 * 86_400_000  # recordGroupQuery (§1.15)
HISTORY_DAYS = 62  # "recent two months" (§1.14, §1.15)
UPLOAD_SLACK = 64 * 1024  # fileName, JSON punctuation and line breaks around the base64


@dataclass(frozen=True, slots=True)
class SendCodeFields:
    callee: str
    tts: TtsRequest
    options: CallOptions

    @classmethod
    def parse(cls, data: dict[str, Any]) -> SendCodeFields:
        """sendCode's fields (§1.11) in the order the page lists them."""
        callee = text_field(data, "callee", empty_code=-22, max_len=MAX_NUMBER_TEXT)
        display = text_field(data, "displayNum", empty_code=None, max_len=MAX_NUMBER_TEXT)
        language = text_field(data, "language", empty_code=-22, max_len=16)
        text = text_field(data, "text", empty_code=-22, max_len=MAX_TEXT)
        if not text.strip():
            raise ItnioError(-22, "text is empty")
        rate = double_field(data, "speakingRate", default=1.0, lo=0.25, hi=4.0)
        gender = int_field(data, "ssmlGender", default=2, lo=1, hi=2)
        accent = data.get("accent")  # accepted and ignored (module docstring)
        if accent is not None and (
            isinstance(accent, bool) or not isinstance(accent, str | int) or len(str(accent)) > 32
        ):
            raise ItnioError(-22, "accent must be a short String")
        recall_count = int_field(data, "recallCount", default=0, lo=0, hi=9)
        recall_minutes = int_field(data, "recallInterval", default=5, lo=1, hi=999)
        options = CallOptions(
            display_num=display.strip(),
            loop_count=int_field(data, "loopCount", default=1, lo=1, hi=9),
            called_info=text_field(data, "calledInfo", empty_code=None, max_len=MAX_CALLED_INFO),
            recall_count=recall_count,
            recall_interval_s=recall_minutes * 60,
            max_duration_s=optional_int(data, "maxDuration", lo=1, hi=120),
            max_ringing_s=int_field(data, "maxRingingTime", default=60, lo=20, hi=120),
        )
        return cls(callee, TtsRequest(language.strip(), text, rate, gender), options)


@dataclass(frozen=True, slots=True)
class SendGroupFields:
    callees: list[str]
    file_id: str
    options: CallOptions

    @classmethod
    def parse(cls, data: dict[str, Any]) -> SendGroupFields:
        """sendGroup's fields (§1.12): a comma list of at most 200 callees."""
        raw = text_field(
            data, "callee", empty_code=-22, max_len=MAX_GROUP_CALLEES * (MAX_NUMBER_TEXT + 1)
        )
        # A trailing or doubled comma is a slip, not a number.
        callees = [c.strip() for c in raw.split(",") if c.strip()]
        if not callees:
            raise ItnioError(-22, "callee is empty")
        if len(callees) > MAX_GROUP_CALLEES:
            raise ItnioError(-22, f"at most {MAX_GROUP_CALLEES} callees per request")
        display = text_field(data, "displayNum", empty_code=None, max_len=MAX_NUMBER_TEXT)
        file_id = text_field(data, "fileId", empty_code=-22, max_len=64)
        options = CallOptions(
            display_num=display.strip(),
            loop_count=int_field(data, "loopCount", default=1, lo=1, hi=3),
            called_info=text_field(data, "calledInfo", empty_code=None, max_len=MAX_CALLED_INFO),
            max_duration_s=optional_int(data, "maxDuration", lo=1, hi=120),
            max_ringing_s=int_field(data, "maxRingingTime", default=60, lo=20, hi=120),
        )
        return cls(callees, file_id.strip(), options)


def optional_int(data: dict[str, Any], name: str, *, lo: int, hi: int) -> int | None:
    if data.get(name) is None or data.get(name) == "":
        return None
    return int_field(data, name, lo=lo, hi=hi)


def double_field(data: dict[str, Any], name: str, *, default: float, lo: float, hi: float) -> float:
    """A Double field (Ints and numeric strings too); out of [lo, hi] is -22."""
    value = data.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise ItnioError(-22, f"{name} must be a Double")
    if isinstance(value, str):
        try:
            value = float(value.strip()) if len(value) <= 32 else math.nan
        except ValueError:
            raise ItnioError(-22, f"{name} must be a Double") from None
    if not isinstance(value, int | float):
        raise ItnioError(-22, f"{name} must be a Double")
    number = float(value)
    if not math.isfinite(number) or not lo <= number <= hi:
        raise ItnioError(-22, f"{name} must be between {lo} and {hi}")
    return number


def paging(data: dict[str, Any]) -> tuple[int, int]:
    """``current`` 1..N (default 1) and ``size`` 1-100 (default 25), §1.13 and §1.15."""
    return (
        int_field(data, "current", default=1, lo=1, hi=10**7),
        int_field(data, "size", default=25, lo=1, hi=100),
    )


def page_body(
    total: int, size: int, current: int, records: list[Any], *, search_count: bool = False
) -> dict[str, Any]:
    """The vendor's page object; Ints for the counters (§1.1), ``searchCount`` in §1.15."""
    page: dict[str, Any] = {
        "total": total,
        "size": size,
        "current": current,
        "pages": math.ceil(total / size),
    }
    if search_count:
        page["searchCount"] = True
    page["records"] = records
    return page


def voice_id_of(text: str) -> int:
    """A voiceId from the path: 19 digits (§7 ids), else -22."""
    value = text.strip()
    if not value or len(value) > 19 or not value.isascii() or not value.isdigit():
        raise ItnioError(-22, f"voiceId {text[:24]!r} is not a record id")
    return int(value)


@dataclass
class VoiceApi:
    services: Services
    cfg: ItnioSettings
    auth: Authenticator
    guard: ReplayGuard

    def __post_init__(self) -> None:
        self._limit = self.services.settings.http.max_body_bytes
        # fileUpload carries the file as base64 (4 characters per 3 bytes; MIME-style encoders
        # add a line break per 76 characters, JSON-escaped as 2) plus a little JSON; its own
        # cap so the global body limit can stay small (§1.13).
        max_file = self.services.settings.voice.max_file_bytes
        b64 = math.ceil(max_file * 4 / 3)
        self._upload_limit = b64 + math.ceil(b64 / 76) * 2 + UPLOAD_SLACK

    # ---- shared steps ----------------------------------------------------------------
    async def _app(self, ctx: AuthContext, data: dict[str, Any]) -> App:
        app_id = text_field(data, "appId", empty_code=-22, max_len=32)
        app = await self.services.accounts.get_app(app_id)
        if app is None or app.account_id != ctx.account.id or app.kind is not AppKind.VOICE:
            raise ItnioError(-22, "appId is not a voice app of this account")
        return app

    async def _once(
        self,
        ctx: AuthContext,
        request: Request,
        body: bytes,
        produce: Callable[[], Awaitable[bytes]],
    ) -> Response:
        """A request that changes something: replays get the first answer (§7)."""
        return json_response(await self.guard.once(ctx, request, body, produce, VOICE_ERROR_CODES))

    def _oldest_ms(self) -> int:
        return self.services.clock.now_ms() - HISTORY_DAYS * 86_400_000

    # ---- sends -----------------------------------------------------------------------
    async def send_code(self, request: Request, ctx: AuthContext) -> Response:
        body = await read_body(request, self._limit)

        async def produce() -> bytes:
            data = parse_object(body)
            app = await self._app(ctx, data)
            fields = SendCodeFields.parse(data)
            voice_id = await self.services.voice.send_tts(
                account=ctx.account,
                app=app,
                callee=fields.callee,
                tts=fields.tts,
                options=fields.options,
            )
            return ok_body(data=str(voice_id))

        return await self._once(ctx, request, body, produce)

    async def send_group(self, request: Request, ctx: AuthContext) -> Response:
        body = await read_body(request, self._limit)

        async def produce() -> bytes:
            data = parse_object(body)
            app = await self._app(ctx, data)
            fields = SendGroupFields.parse(data)
            items = await self.services.voice.send_group(
                account=ctx.account,
                app=app,
                callees=fields.callees,
                file_id=fields.file_id,
                options=fields.options,
            )
            return ok_body(
                data=[
                    {
                        "voiceId": "" if i.voice_id is None else str(i.voice_id),
                        "callee": i.callee,
                        "terminationCode": i.code,
                        "terminationReason": i.reason,
                    }
                    for i in items
                ]
            )

        return await self._once(ctx, request, body, produce)

    # ---- files -----------------------------------------------------------------------
    async def file_upload(self, request: Request, ctx: AuthContext) -> Response:
        body = await read_body(request, self._upload_limit)

        async def produce() -> bytes:
            data = parse_object(body)
            name = text_field(data, "fileName", empty_code=-22, max_len=64)
            encoded = text_field(data, "file", empty_code=-22)
            vf = await self.services.voice.upload_file(
                account=ctx.account, file_name=name, file_b64=encoded
            )
            return ok_body(data=vf.file_id)

        return await self._once(ctx, request, body, produce)

    async def file_query(self, request: Request, ctx: AuthContext) -> Response:
        body = await read_body(request, self._limit)

        async def produce() -> bytes:
            current, size = paging(parse_object(body))
            total, files = await self.services.voice.files(
                account=ctx.account, current=current, size=size
            )
            records = [voice_render.file_item(f) for f in files]
            return ok_body(data=page_body(total, size, current, records))

        return json_response(await enveloped(produce, VOICE_ERROR_CODES))

    # ---- records ---------------------------------------------------------------------
    async def record_group(self, request: Request, ctx: AuthContext) -> Response:
        async def produce() -> bytes:
            # ``:path`` also matches an empty or slashed id, which then gets -22, not a 404.
            wanted = voice_id_of(str(request.path_params.get("voice_id", "")))
            try:
                issued = ids.issued_at_ms(wanted)
            except ValueError:  # 19 digits that are not a date: never one of our ids
                raise ItnioError(-22, f"no record with voiceId {wanted}") from None
            if wanted > ids.MAX_ID:  # a date after 2092: past what the BIGINT key holds
                raise ItnioError(-22, f"no record with voiceId {wanted}")
            if issued < self._oldest_ms():
                raise ItnioError(-22, f"voiceId {wanted} is older than {HISTORY_DAYS} days")
            record = await self.services.voice.get_call(account=ctx.account, voice_id=wanted)
            if record is None:
                raise ItnioError(-22, f"no record with voiceId {wanted}")
            return ok_body(data=voice_render.record_item(record, ctx.account.timezone))

        return json_response(await enveloped(produce, VOICE_ERROR_CODES))

    async def record_group_query(self, request: Request, ctx: AuthContext) -> Response:
        body = await read_body(request, self._limit)

        async def produce() -> bytes:
            data = parse_object(body)
            current, size = paging(data)
            params = data.get("params")
            if not isinstance(params, dict):
                raise ItnioError(-22, "params must be an object with strTime and endTime")
            texts = (
                text_field(params, "strTime", empty_code=-22, max_len=64),
                text_field(params, "endTime", empty_code=-22, max_len=64),
            )
            start, end = (render.parse_iso(t) for t in texts)
            if start is None or end is None:
                # The page lists -22 for this, not the SMS pages' -11 (seed 003).
                raise ItnioError(-22, "strTime and endTime must be ISO 8601 with an offset")
            if end < start or end - start > MAX_WINDOW_MS:
                raise ItnioError(-22, "the window must run forward and span at most 31 days")
            if start < self._oldest_ms():
                raise ItnioError(-25, f"strTime is more than {HISTORY_DAYS} days ago")
            total, rows = await self.services.voice.calls_page(
                account=ctx.account,
                id_from=ids.lower_bound(start),
                id_to=ids.upper_bound(end),
                current=current,
                size=size,
            )
            tz = ctx.account.timezone
            records = [voice_render.record_item(r, tz) for r in rows]
            return ok_body(data=page_body(total, size, current, records, search_count=True))

        return json_response(await enveloped(produce, VOICE_ERROR_CODES))

    # ---- routes ----------------------------------------------------------------------
    def router(self) -> APIRouter:
        r = APIRouter()
        for prefix in ("", "/v3"):
            for path, handler in (
                ("sendCode", self.send_code),
                ("sendGroup", self.send_group),
                ("fileUpload", self.file_upload),
                ("fileQuery", self.file_query),
                ("recordGroupQuery", self.record_group_query),
            ):
                r.add_api_route(
                    f"{prefix}/voice/{path}", authenticated(self.auth, handler), methods=["POST"]
                )
            record_group = authenticated(self.auth, self.record_group)
            for path in ("recordGroup/{voice_id:path}", "recordGroup"):
                r.add_api_route(f"{prefix}/voice/{path}", record_group, methods=["GET"])
        return r
