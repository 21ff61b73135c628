"""Voice use cases: TTS and file calls, audio files, call records (spec §1.11-§1.15).

A send prices every callee, checks the balance and stores one QUEUED call per callee before
it answers (a 2xx means committed); the call dispatcher (dispatch/calls.py) dials, and the
charge is taken when the call ends (domain/billing.py has the formulas).
"""

from __future__ import annotations

import asyncio
import binascii
import functools
import hashlib
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.clock import Clock
from simgate.domain import numbers
from simgate.domain.accounts import Account, App
from simgate.domain.billing import USD, BillPeriod, Rate, first_step_cost
from simgate.domain.calls import (
    Audio,
    CallKind,
    CallOptions,
    CallRecord,
    NewCall,
    Pricing,
    VoiceFile,
)
from simgate.domain.money import MICROS, parse_amount
from simgate.errors import (
    AccountLocked,
    AlreadyExists,
    InsufficientBalance,
    InvalidInput,
    InvalidMedia,
    InvalidNumber,
    NoPricing,
    TooManyNumbers,
)
from simgate.lease_loop import CALLS, Wakeup
from simgate.media.decode import decode
from simgate.media.tts import Tts
from simgate.services.rates import RateCache
from simgate.settings import Settings
from simgate.store import Store

MAX_GROUP_CALLEES = 200  # spec §1.12 (itniotech; the BUKA clone allows 1000)
FILE_NAME_RE = re.compile(r"[^/\\\x00-\x1f\x7f]{1,27}\.(mp3|m4a|wav)", re.IGNORECASE)
CALLEE_RE = re.compile(r"[0-9]{7,15}", re.ASCII)


@dataclass(frozen=True, slots=True)
class TtsRequest:
    language: str
    text: str
    speaking_rate: float = 1.0
    gender: int = 2  # 1 male, 2 female (spec §1.11 default female)


@dataclass(frozen=True, slots=True)
class GroupItem:
    """One callee of a sendGroup: ``code`` "0" = accepted (spec §7), else why not."""

    callee: str
    voice_id: int | None
    code: str
    reason: str


def check_callee(raw: str) -> str:
    """7-15 digits, country code first (spec §1.11); a leading + or 00 is tolerated."""
    text = raw.strip()
    if text.startswith("+"):
        text = text[1:]
    elif text.startswith("00"):
        text = text[2:]
    if not CALLEE_RE.fullmatch(text):
        raise InvalidNumber(f"callee {raw[:24]!r} is not 7-15 digits")
    return text


def check_display_num(raw: str) -> str:
    if raw and not CALLEE_RE.fullmatch(raw):
        raise InvalidInput("displayNum must be 7-15 digits or empty")
    return raw


def file_id_for(now_ms: int, suffix: str) -> str:
    """The vendor's shape: ``1`` + yyyyMMdd + 32 hex + suffix (spec §1.13 sample)."""
    day = datetime.fromtimestamp(now_ms / 1000, tz=UTC).strftime("%Y%m%d")
    return f"1{day}{uuid.uuid4().hex}.{suffix}"


def decode_base64(text: str) -> bytes:
    """Strict base64; a ``data:...;base64,`` prefix (browsers make those) is accepted."""
    if text.startswith("data:"):
        head, sep, text = text.partition(",")
        if not sep or not head.endswith(";base64"):
            raise InvalidMedia("file is a data URL that is not base64")
    compact = "".join(text.split())  # line breaks every 76 characters are common
    try:
        return binascii.a2b_base64(compact, strict_mode=True)
    except (binascii.Error, ValueError):
        raise InvalidMedia("file is not valid base64") from None


class VoiceService:
    def __init__(
        self,
        *,
        store: Store,
        settings: Settings,
        clock: Clock,
        tts: Tts,
        rates: RateCache,
        wakeup: Wakeup | None = None,
    ) -> None:
        self._wakeup = wakeup or Wakeup()  # told after each commit that queues calls
        self._store = store
        self._cfg = settings.voice
        self._clock = clock
        self._tts = tts
        price = self._cfg.default_price
        self._default_rate = (
            None
            if price is None
            else Rate("voice", "", parse_amount(price), USD, self._cfg.default_bill_period)
        )
        self._rates = rates

    @property
    def tts(self) -> Tts:
        return self._tts

    # ---- pricing ---------------------------------------------------------------------
    async def _fx(self, conn: AsyncConnection, currency: str) -> int | None:
        """Units of ``currency`` per 1 USD (x 1e6); None for USD itself."""
        if currency == USD:
            return None
        rate = await self._store.fx.get_rate(conn, currency)
        if rate is None:
            raise NoPricing(f"no exchange rate from USD to {currency} (simgate fx set)")
        return rate

    async def _priced(
        self, account: Account, callees: Sequence[str]
    ) -> tuple[Account, list[Pricing]]:
        """In one read: the account as committed now (the auth cache may be a second old),
        each callee's price snapshot, then the balance check."""
        table = await self._rates.table()
        async with self._store.db.read() as conn:
            account = await self._store.accounts.get_account(conn, account.id) or account
            quote = await self._fx(conn, account.currency)
            out: list[Pricing] = []
            fx_cache: dict[str, int] = {}
            for callee in callees:
                rate = table.lookup("voice", callee) or self._default_rate
                if rate is None:
                    raise NoPricing(f"no voice rate for {callee}")
                usd = rate.price_micros
                if rate.currency != USD:  # a rate quoted in another currency → USD
                    per_usd = fx_cache.get(rate.currency)
                    if per_usd is None:
                        found = await self._fx(conn, rate.currency)
                        assert found is not None
                        per_usd = fx_cache[rate.currency] = found
                    usd = usd * MICROS // per_usd
                period = rate.bill_period or self._cfg.default_bill_period
                BillPeriod.parse(period)  # a bad row is an operator error: fail loudly here
                out.append(Pricing(usd, period, account.currency, quote))
        self._check_balance(account, out)
        return account, out

    def _check_balance(self, account: Account, pricing: Sequence[Pricing]) -> None:
        """Enough for the first billing step of every call (spec §1.11 -10); charged after."""
        if account.locked:
            raise AccountLocked("account is locked")
        need = sum(
            first_step_cost(p.rate_micros, p.bill_period, p.quote_exchange_micros) for p in pricing
        )
        if account.spendable_micros < max(need, 1):
            raise InsufficientBalance("insufficient balance for the calls")

    # ---- sends -----------------------------------------------------------------------
    async def send_tts(
        self,
        *,
        account: Account,
        app: App,
        callee: str,
        tts: TtsRequest,
        options: CallOptions,
    ) -> int:
        number = check_callee(callee)
        check_display_num(options.display_num)
        self._tts.check(tts.language, tts.text)
        # Price and balance first: rendering costs CPU an account without money must not spend.
        account, pricing = await self._priced(account, [number])
        audio = await self._tts.render(
            language=tts.language,
            text=tts.text,
            speaking_rate=tts.speaking_rate,
            gender=tts.gender,
        )
        audio_id = await self._put_audio(audio)
        now = self._clock.now_ms()
        (voice_id,) = await self._store.new_ids(1, now)
        call = NewCall(
            voice_id,
            account.id,
            app.id,
            CallKind.TTS,
            number,
            audio_id,
            "",
            numbers.area(number),
            options,
            pricing[0],
            now,
        )
        await self._store.db.write(functools.partial(self._store.calls.insert, calls=[call]))
        self._wakeup.notify(CALLS)
        return voice_id

    async def send_group(
        self,
        *,
        account: Account,
        app: App,
        callees: Sequence[str],
        file_id: str,
        options: CallOptions,
    ) -> list[GroupItem]:
        if not callees:
            raise InvalidNumber("callee is empty")
        if len(callees) > MAX_GROUP_CALLEES:
            raise TooManyNumbers(f"at most {MAX_GROUP_CALLEES} callees per sendGroup")
        check_display_num(options.display_num)
        async with self._store.db.read() as conn:
            vf = await self._store.voice_files.get_file(
                conn, account_id=account.id, file_id=file_id
            )
        if vf is None:
            raise InvalidInput(f"fileId {file_id[:64]!r} is not a file of this account")
        valid: list[tuple[int, str]] = []
        items: list[GroupItem | None] = []
        for i, raw in enumerate(callees):
            try:
                valid.append((i, check_callee(raw)))
                items.append(None)
            except InvalidNumber:
                items.append(GroupItem(raw, None, "-9", "abnormal number"))
        calls: list[NewCall] = []
        if valid:
            account, pricing = await self._priced(account, [n for _, n in valid])
            now = self._clock.now_ms()
            voice_ids = await self._store.new_ids(len(valid), now)
            for (i, number), voice_id, price in zip(valid, voice_ids, pricing, strict=True):
                calls.append(
                    NewCall(
                        voice_id,
                        account.id,
                        app.id,
                        CallKind.GROUP,
                        number,
                        vf.audio_id,
                        vf.file_id,
                        numbers.area(number),
                        options,
                        price,
                        now,
                    )
                )
                items[i] = GroupItem(number, voice_id, "0", "success")
            await self._store.db.write(functools.partial(self._store.calls.insert, calls=calls))
            self._wakeup.notify(CALLS)
        return [item for item in items if item is not None]

    async def _put_audio(self, audio: Audio) -> int:
        digest = hashlib.sha256(audio.pcm).hexdigest()
        job = functools.partial(
            self._store.voice_files.put_audio,
            sha256=digest,
            pcm=audio.pcm,
            duration_ms=audio.duration_ms,
            now_ms=self._clock.now_ms(),
        )
        return await self._store.db.write(job)

    # ---- files -----------------------------------------------------------------------
    async def upload_file(self, *, account: Account, file_name: str, file_b64: str) -> VoiceFile:
        name = file_name.strip()
        if not 5 <= len(name) <= 32 or not FILE_NAME_RE.fullmatch(name):
            raise InvalidInput(
                "fileName must be 5-32 characters ending in .mp3, .m4a or .wav, without / or \\"
            )
        suffix = name.rsplit(".", 1)[1].lower()
        data = decode_base64(file_b64)
        if not data:
            raise InvalidMedia("file is empty")
        if len(data) > self._cfg.max_file_bytes:
            raise InvalidMedia(f"file larger than {self._cfg.max_file_bytes} bytes")
        async with self._store.db.read() as conn:
            if await self._store.voice_files.has_name(conn, account_id=account.id, file_name=name):
                raise AlreadyExists(f"a file named {name!r} exists already")
        audio = await asyncio.to_thread(
            decode, data, declared=suffix, max_seconds=self._cfg.max_audio_seconds
        )
        audio_id = await self._put_audio(audio)
        job = functools.partial(
            self._store.voice_files.add_file,
            account_id=account.id,
            file_id=file_id_for(self._clock.now_ms(), suffix),
            file_name=name,
            format=suffix,
            audio_id=audio_id,
            duration_ms=audio.duration_ms,
            size_bytes=len(data),
            now_ms=self._clock.now_ms(),
        )
        return await self._store.db.write(job)

    async def files(
        self, *, account: Account, current: int, size: int
    ) -> tuple[int, list[VoiceFile]]:
        repo = self._store.voice_files
        async with self._store.db.read() as conn:
            total = await repo.count_files(conn, account_id=account.id)
            rows = await repo.page_files(
                conn, account_id=account.id, offset=(current - 1) * size, limit=size
            )
        return total, rows

    # ---- records ---------------------------------------------------------------------
    async def get_call(self, *, account: Account, voice_id: int) -> CallRecord | None:
        async with self._store.db.read() as conn:
            record = await self._store.calls.get_one(conn, voice_id)
        if record is None or record.account_id != account.id:
            return None
        return record

    async def calls_page(
        self, *, account: Account, id_from: int, id_to: int, current: int, size: int
    ) -> tuple[int, list[CallRecord]]:
        repo = self._store.calls
        async with self._store.db.read() as conn:
            total = await repo.count_done(conn, account_id=account.id, id_from=id_from, id_to=id_to)
            offset = (current - 1) * size
            rows = (
                await repo.page_done(
                    conn,
                    account_id=account.id,
                    id_from=id_from,
                    id_to=id_to,
                    offset=offset,
                    limit=size,
                )
                if offset < total
                else []
            )
        return total, rows
