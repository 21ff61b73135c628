"""Incoming SMS: store them for the account that owns them and announce them.

Who owns an incoming SMS, first match wins:

1. ``[[inbound.numbers]]``: the number it was sent to (the SIM's number, the SMSC's
   destination address), matched on its digits;
2. ``[lines.NAME] port_owners``: the port it arrived on;
3. ``[lines.NAME] owner``: the line it arrived on;
4. the first account (the oldest one), so an install with one account needs no setting.

Accounts live in the database and may be created after the settings are written, so a name
that names no account is found at receive time, not at start: the SMS is then kept for the
next rule of the list (never lost) and a warning names the setting to fix.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.clock import Clock
from simgate.domain.events import InboundStored
from simgate.domain.records import InboundRecord
from simgate.errors import NotFound
from simgate.lines.base import IncomingSms, PortInfo
from simgate.services.changes import Publish
from simgate.settings import Settings, SimLineSettings, inbound_number_key
from simgate.store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Claim:
    """One rule that names an account for an SMS: the account reference and where it is set."""

    account: str
    source: str


@dataclass(frozen=True)
class OwnerRules:
    """The ownership settings, indexed (see the module docstring for the order)."""

    numbers: dict[str, str] = field(default_factory=dict)  # number digits -> account
    ports: dict[tuple[str, int], str] = field(default_factory=dict)
    lines: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings) -> OwnerRules:
        numbers: dict[str, str] = {}
        for n in settings.inbound.numbers:
            key = inbound_number_key(n.number)
            assert key is not None  # validated at start (settings.InboundNumber)
            numbers[key] = n.account
        ports: dict[tuple[str, int], str] = {}
        lines: dict[str, str] = {}
        for name, cfg in settings.lines.items():
            if cfg.owner is not None:
                lines[name] = cfg.owner
            if isinstance(cfg, SimLineSettings):
                ports.update(((name, p), acc) for p, acc in cfg.port_owners.items())
        return cls(numbers=numbers, ports=ports, lines=lines)

    def claims(self, line: str, sms: IncomingSms) -> list[Claim]:
        """The accounts named for ``sms``, in the order they are tried."""
        out: list[Claim] = []
        key = inbound_number_key(sms.recipient)
        if key is not None and key in self.numbers:
            out.append(Claim(self.numbers[key], f"inbound.numbers {sms.recipient}"))
        if (line, sms.port) in self.ports:
            out.append(Claim(self.ports[line, sms.port], f"lines.{line}.port_owners.{sms.port}"))
        if line in self.lines:
            out.append(Claim(self.lines[line], f"lines.{line}.owner"))
        return out


class InboundService:
    def __init__(
        self,
        *,
        store: Store,
        clock: Clock,
        publish: Publish,
        rules: OwnerRules | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._publish = publish
        self._rules = rules or OwnerRules()
        self._first_id: int | None = None

    async def _account_ids(self, conn: AsyncConnection, refs: set[str]) -> dict[str, int]:
        """The ids of the accounts ``refs`` name (a name, or digits for an id, as the CLI
        takes them); a reference naming no account is left out."""
        out: dict[str, int] = {}
        for ref in refs:
            if ref.isdigit():
                account = await self._store.accounts.get_account(conn, int(ref))
            else:
                account = await self._store.accounts.find_account(conn, ref)
            if account is not None:
                out[ref] = account.id
        return out

    async def _first_account(self, conn: AsyncConnection) -> int:
        if self._first_id is None:
            accounts = await self._store.accounts.list_accounts(conn)
            if not accounts:
                raise NotFound("no account to receive incoming SMS")
            self._first_id = accounts[0].id
        return self._first_id

    async def _owners(self, line: str, messages: Sequence[IncomingSms]) -> list[int]:
        """The owning account of each message (module docstring)."""
        claims = [self._rules.claims(line, m) for m in messages]
        refs = {c.account for cs in claims for c in cs}
        async with self._store.db.read() as conn:
            found = await self._account_ids(conn, refs) if refs else {}
            needs_first = any(all(c.account not in found for c in cs) for cs in claims)
            first = await self._first_account(conn) if needs_first else None
        out: list[int] = []
        for m, cs in zip(messages, claims, strict=True):
            owner: int | None = None
            for c in cs:
                owner = found.get(c.account)
                if owner is not None:
                    break
                log.warning(
                    "incoming SMS on line %s port %d to %s: %s names no account %r; "
                    "kept for the next owner rule",
                    line,
                    m.port,
                    m.recipient,
                    c.source,
                    c.account,
                )
            if owner is None:
                assert first is not None
                owner = first
            out.append(owner)
        return out

    async def receive(
        self, line: str, messages: Sequence[IncomingSms], ports: Sequence[PortInfo] = ()
    ) -> list[int]:
        owners = await self._owners(line, messages)
        now = self._clock.now_ms()
        ids = await self._store.new_ids(len(messages), now)
        imsi = {p.index: p.imsi for p in ports}
        records = [
            InboundRecord(
                id=mid,
                account_id=account_id,
                line=line,
                port=m.port,
                sender=m.sender,
                recipient=m.recipient,
                text=m.text,
                smsc=m.smsc,
                imsi=imsi.get(m.port, ""),
                parts=m.parts,
                received_ms=m.received_ms,
                read=False,
            )
            for mid, m, account_id in zip(ids, messages, owners, strict=True)
        ]

        async def job(conn: AsyncConnection) -> None:
            await self._store.inbound.insert(conn, records)
            await self._publish(conn, [InboundStored(r.id, now) for r in records])

        await self._store.db.write(job)
        return ids
