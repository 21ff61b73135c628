"""The OpenVox POST API handlers (spec §3.3, §7): parse → call a service → render.

Each handler gets the authenticated caller and the request's fields and returns ``data``;
the envelope, authentication and the error table are applied by :mod:`.routes`.

Ports are the operator's (issue 14 item 1): an account user lists and sends on the ports
assigned to its account and the shared ones (``[lines.X] port_owners`` / ``owner``, the
incoming-SMS owner settings); operators on every port.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from simgate.api.dialects.openvox import render
from simgate.api.dialects.openvox.auth import Caller
from simgate.api.dialects.openvox.envelope import BadRequest, Fields, Paged, as_int
from simgate.api.dialects.openvox.pushconfig import PushConfig, apply_changes
from simgate.api.dialects.openvox.settings import OpenVoxSettings
from simgate.domain import ids, numbers
from simgate.domain.records import MessageRecord
from simgate.errors import (
    AccessDenied,
    ContentEmpty,
    ContentTooLong,
    InvalidNumber,
    TooManyNumbers,
)
from simgate.lines.base import PortInfo
from simgate.services.container import Services
from simgate.services.inbound import OwnerRules
from simgate.services.openvox import Window
from simgate.services.sending import Recipient, SendRequest

MAX_PAGE = 10**9
DIALECT = "openvox"


class Handlers:
    def __init__(self, services: Services, cfg: OpenVoxSettings) -> None:
        self.sv = services
        self.cfg = cfg
        self.openvox = services.openvox
        self.line = cfg.line or next(iter(services.settings.lines), "")
        self.rules = OwnerRules.from_settings(services.settings)
        # No port of this line is assigned to an account (neither port_owners nor owner):
        # every caller may use every port, and a send needs no check per port (issue 15).
        self._all_shared = self.line not in self.rules.lines and not any(
            line == self.line for line, _ in self.rules.ports
        )

    def _ports(self) -> Sequence[PortInfo]:
        line = self.sv.lines.get(self.line)
        return line.ports() if line is not None else ()

    def _may_use(self, caller: Caller, index: int) -> bool:
        return caller.operator or self.rules.may_use(caller.account, self.line, index)

    def _send_ports(self, caller: Caller, spans: list[int]) -> list[int] | None:
        """The 0-based ports to send on: the named spans (each one the caller's to use), or
        every port it may use; None = any port."""
        for span in spans:
            if not self._may_use(caller, span - 1):
                raise AccessDenied(f"span {span} is assigned to another account")
        if spans:
            return [s - 1 for s in spans]
        ports = self._ports()
        if self._all_shared and ports:
            return None
        mine = [p.index for p in ports if self._may_use(caller, p.index)]
        if not mine:  # an empty hint would mean "any port"
            raise AccessDenied("every port is assigned to another account")
        return None if len(mine) == len(ports) else mine

    # ---- /sms/get_valid_spans --------------------------------------------------------
    async def get_valid_spans(self, caller: Caller, f: Fields) -> list[Any]:
        return [
            {"port": p.index + 1, "port_name": p.name, "status": 1 if p.usable else 0}
            for p in self._ports()
            if self._may_use(caller, p.index)
        ]

    # ---- /sms/send -------------------------------------------------------------------
    async def send(self, caller: Caller, f: Fields) -> list[Any]:
        raw_spans = f.raw("spans") if f.has("spans") else f.raw("spans[]")
        spans = read_spans(raw_spans, port_count=len(self._ports()))
        ports = self._send_ports(caller, spans)
        dests = read_dest_nums(f, limit=self.cfg.max_dest_numbers)
        text = read_msg(f, max_chars=self.cfg.max_msg_chars)
        mode = f.integer("mode", default=0)
        if mode not in (0, 1):
            raise BadRequest("mode must be 0 (asynchronous) or 1 (synchronous)")
        outcome = await self.sv.sending.send(
            SendRequest(
                account=caller.account,
                dialect=DIALECT,
                text=text,
                recipients=[Recipient(d) for d in dests],
                port_hint=None if ports is None else ",".join(str(p) for p in ports),
                line=self.line or None,
                dial_as_given=True,  # a SIM gateway dials "10086" as given (§3.6)
            )
        )
        if not outcome.accepted:
            shown = ", ".join(dests)
            shown = shown if len(shown) <= 200 else shown[:200] + "..."
            raise InvalidNumber(f"no valid destination number in dest_num: {shown}")
        records: dict[int, MessageRecord] = {}
        if mode == 1:
            timeout_ms = int(self.cfg.sync_timeout_seconds * 1000)
            sent = await self.openvox.wait_answered(
                [a.message_id for a in outcome.accepted], timeout_ms=timeout_ms
            )
            records = {r.id: r for r in sent}
        default_port = spans[0] if len(spans) == 1 else 0
        invalid = list(outcome.invalid)
        accepted = iter(outcome.accepted)
        items: list[Any] = []
        for raw in dests:  # in the client's order; invalid ones were skipped by the service
            if raw in invalid:
                invalid.remove(raw)
                items.append(
                    {
                        "id": "",
                        "dest_num": raw,
                        "port": 0,
                        "status": "FAILED",
                        "error": "invalid number",
                    }
                )
                continue
            a = next(accepted)
            rec = records.get(a.message_id)
            status, port = render.SENDING, default_port
            if rec is not None:
                status = render.SEND_STATUS.get(rec.state, render.SENDING)
                port = render.wire_port(rec.port) if rec.port is not None else default_port
            items.append({"id": str(a.message_id), "dest_num": raw, "port": port, "status": status})
        return items

    # ---- /smsoutbox/get and /smsinbox/get --------------------------------------------
    async def outbox_get(self, caller: Caller, f: Fields) -> Paged:
        page = read_page(f)
        window = read_window(f, caller.account.timezone)
        size = self.cfg.page_size
        result = await self.openvox.outbox(
            caller.account.id,
            window,
            states=render.LISTED_STATES,
            offset=(page - 1) * size,
            limit=size,
        )
        tz = caller.account.timezone
        rows = [render.outbox_row(m, self.sv.lines, tz) for m in result.records]
        return render.page_data(result.total, page, size, rows)

    async def inbox_get(self, caller: Caller, f: Fields) -> Paged:
        page = read_page(f)
        window = read_window(f, caller.account.timezone)
        size = self.cfg.page_size
        result = await self.openvox.inbox(
            caller.account.id, window, offset=(page - 1) * size, limit=size
        )
        tz = caller.account.timezone
        rows = [render.inbox_row(r, self.sv.lines, tz) for r in result.records]
        return render.page_data(result.total, page, size, rows)

    # ---- /smsoutbox/get_config and /smsoutbox/set_config -----------------------------
    async def _load_config(self, account_id: int) -> PushConfig:
        return PushConfig.from_doc(await self.openvox.push_config(account_id))

    async def get_config(self, caller: Caller, f: Fields) -> list[Any]:
        return [(await self._load_config(caller.account.id)).as_dict()]

    async def set_config(self, caller: Caller, f: Fields) -> list[Any]:
        current = await self._load_config(caller.account.id)
        updated = apply_changes(current, f)
        if updated.any_enabled:
            # The push engine's SSRF guard: private/loopback targets are refused unless the
            # operator allowed them (push.allow_cidrs); raises InvalidInput → 400.
            await self.sv.pushes.validate_url(updated.base_url())
        await self.openvox.set_push_config(caller.account.id, updated.as_dict())
        return [updated.as_dict()]


# ---- request readers (pure: tested without a database) ------------------------------
def read_spans(raw: Any, *, port_count: int) -> list[int]:
    """``spans`` (1-based ports) as a list, a comma string or one number; duplicates dropped."""
    if raw is None or raw in ("", []):
        return []
    if isinstance(raw, str):
        values: list[Any] = [v for v in raw.split(",") if v.strip()]
    elif isinstance(raw, list):
        values = raw
    else:
        values = [raw]
    spans: list[int] = []
    for value in values:
        span = as_int("spans", value)
        if not 1 <= span <= port_count:
            raise BadRequest(f"unknown span {span}: ports are 1..{port_count}")
        if span not in spans:
            spans.append(span)
    return spans


def read_dest_nums(f: Fields, *, limit: int) -> list[str]:
    raw = f.string("dest_num", required=True, max_len=limit * 25)
    assert raw is not None
    dests = [d.strip() for d in raw.split(",") if d.strip()]
    if not dests:
        raise BadRequest("dest_num is empty")
    if len(dests) > limit:
        raise TooManyNumbers(f"dest_num has {len(dests)} numbers (at most {limit})")
    return dests


def read_msg(f: Fields, *, max_chars: int) -> str:
    value = f.raw("msg")
    if value is None:
        raise BadRequest("msg is required")
    if not isinstance(value, str):
        raise BadRequest("msg must be a string")
    if len(value) > max_chars:
        raise ContentTooLong(f"msg is too long: {len(value)} characters (at most {max_chars})")
    if not value:
        raise ContentEmpty("msg is empty")
    if "\x00" in value:
        raise BadRequest("msg contains a NUL character")  # no SMS alphabet carries U+0000
    return value


def read_page(f: Fields) -> int:
    page = f.integer("current_page", default=1)
    assert page is not None
    if not 1 <= page <= MAX_PAGE:
        raise BadRequest(f"current_page must be 1..{MAX_PAGE}")
    return page


def read_window(f: Fields, tz: str) -> Window:
    """The number and time filters of both boxes; times in the account's zone ``tz``."""
    number = (f.string("phone_number_filter", max_len=64) or "").strip()
    bounds: list[int | None] = []
    for name, end in (("start_datetime_filter", False), ("end_datetime_filter", True)):
        text = (f.string(name, max_len=64) or "").strip()
        ms = render.parse_time(text, tz, end_of_day=end) if text else None
        if text and ms is None:
            raise BadRequest(f"{name} must be a time like 2024-03-26 09:30:00")
        if ms is not None and not ids.in_range(ms):
            # Message ids carry a two-digit year and fit a BIGINT (domain/ids.py).
            raise BadRequest(f"{name} must be between 2000-01-01 and 2092-12-31")
        bounds.append(ms)
    start, end_ms = bounds
    if start is not None and end_ms is not None and start > end_ms:
        raise BadRequest("start_datetime_filter is after end_datetime_filter")
    return Window(numbers=number_variants(number), from_ms=start, to_ms=end_ms)


def number_variants(number: str) -> tuple[str, ...]:
    """The spellings a filter number may be stored under (numbers are kept as dialled)."""
    if not number:
        return ()
    bare = number.lstrip("+")
    out = [number, bare, "+" + bare]
    normal = numbers.normalize(number)
    if normal is not None:
        out += [normal, "+" + normal]
    return tuple(dict.fromkeys(out))
