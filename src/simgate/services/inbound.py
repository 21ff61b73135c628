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

An SMS in parts (concatenated, TS 23.040 §9.2.3.24.1/.8) is reassembled here for every line,
from durable rows (store/reassembly.py): a line acknowledges a part only once it is
committed, and the part that completes its message stores the whole SMS in that same
commit. A part sent again (its acknowledgement was lost, the peer retries) is the part
already kept, also after its message was stored: the stored message's rows stay for one
reassembly timeout for that. The line's timer asks, every few seconds, for the messages whose
first part is older than its reassembly timeout: they are stored with the parts that came.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.clock import Clock
from simgate.codecs.text import join_parts
from simgate.domain.accounts import Account
from simgate.domain.events import InboundStored
from simgate.domain.records import InboundRecord
from simgate.errors import Busy, NotFound
from simgate.lines.base import IncomingPart, IncomingSms, PortInfo
from simgate.services.changes import Publish
from simgate.settings import ModemLineSettings, Settings, SimLineSettings, inbound_number_key
from simgate.store import Store
from simgate.store.reassembly import Group, GroupKey, StoredPart

# Messages of one line waiting for parts (the bound of a flood of parts that never end): a
# part that would start one more is refused (the line answers "try later"), none is dropped.
MAX_PENDING = 10_000


class Addressed(Protocol):
    """What the owner rules read of an incoming SMS or part."""

    @property
    def port(self) -> int: ...

    @property
    def recipient(self) -> str: ...


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
            if isinstance(cfg, SimLineSettings | ModemLineSettings):
                ports.update(((name, p), acc) for p, acc in cfg.port_owners.items())
        return cls(numbers=numbers, ports=ports, lines=lines)

    # ---- the same settings decide which ports an account user may use (issue 14 item 1) --
    def assigned(self, line: str, port: int) -> str | None:
        """The account a port is assigned to (``port_owners``, else the line's ``owner``);
        None: the port is shared by every account."""
        return self.ports.get((line, port)) or self.lines.get(line)

    def owns(self, account: Account, line: str, port: int) -> bool:
        """The port is assigned to ``account`` (named by name or id, as everywhere)."""
        ref = self.assigned(line, port)
        return ref is not None and ref in (account.name, str(account.id))

    def may_use(self, account: Account, line: str, port: int) -> bool:
        """An account user may use its account's ports and the shared ones."""
        return self.assigned(line, port) is None or self.owns(account, line, port)

    def claims(self, line: str, sms: Addressed) -> list[Claim]:
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
        max_pending: int = MAX_PENDING,
    ) -> None:
        self._store = store
        self._clock = clock
        self._publish = publish
        self._rules = rules or OwnerRules()
        self._max_pending = max_pending
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

    async def _owners(self, line: str, messages: Sequence[Addressed]) -> list[int]:
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

    # ---- SMS in parts ------------------------------------------------------------------
    async def receive_parts(
        self, line: str, parts: Sequence[IncomingPart], ports: Sequence[PortInfo] = ()
    ) -> list[int]:
        """Keep ``parts``; each message a part completes is stored whole in the same commit.
        Returns the ids of the messages stored. Raises :class:`Busy` when a part would start
        one message more than ``max_pending`` on the line (nothing of the batch is kept)."""
        owners = await self._owners(line, parts)
        now = self._clock.now_ms()
        ids = await self._store.new_ids(len(parts), now)  # one per part: any may complete
        imsi = {p.index: p.imsi for p in ports}

        async def job(conn: AsyncConnection) -> list[int]:
            records: list[InboundRecord] = []
            for part, mid, owner in zip(parts, ids, owners, strict=True):
                done = await self._add_part(conn, line, part, now)
                if done is not None:
                    group, kept = done
                    records.append(_record(mid, owner, group, kept, imsi))
            await self._store_records(conn, records, now)
            return [r.id for r in records]

        return await self._store.db.write(job)

    async def _add_part(
        self, conn: AsyncConnection, line: str, part: IncomingPart, now_ms: int
    ) -> tuple[Group, list[StoredPart]] | None:
        """Keep one part; its group and parts when it completed the message."""
        repo = self._store.reassembly
        key = GroupKey(line, part.port, part.sender, part.recipient, part.ref, part.total)
        group = await repo.group(conn, key)
        if group is not None and group.done_ms is not None:
            kept = await repo.part(conn, group.id, part.seq)
            if kept is not None and kept.data == part.data:
                return None  # sent again after its message was stored: already there
            # Another message under the same reference (the sender's counter came round), or
            # a part that came after the timeout stored the rest: it starts a message anew.
            await repo.drop(conn, [group.id])
            group = None
        if group is None:
            if await repo.pending(conn, line) >= self._max_pending:
                raise Busy(f"line {line}: {self._max_pending} incoming SMS wait for parts")
            group = await repo.open(conn, key, smsc=part.smsc, started_ms=part.received_ms)
        await repo.add_part(  # a part sent again while its message waits: the first copy stays
            conn, group.id, StoredPart(part.seq, part.data_coding, part.data, part.received_ms)
        )
        if await repo.count(conn, group.id) < part.total:
            return None
        kept_parts = (await repo.parts(conn, [group.id]))[group.id]
        await repo.finish(conn, [group.id], done_ms=now_ms)
        return group, kept_parts

    async def expire_parts(
        self, line: str, *, started_before_ms: int, ports: Sequence[PortInfo] = ()
    ) -> list[int]:
        """Store the messages of ``line`` begun before ``started_before_ms`` with the parts
        that came, and forget stored ones finished before it. Returns the ids stored."""
        repo = self._store.reassembly
        async with self._store.db.read() as conn:
            due = await repo.due(conn, line, started_before_ms=started_before_ms, lock=False)
            stale = await repo.stale(conn, line, done_before_ms=started_before_ms)
        if not due and not stale:
            return []  # the usual case: no write (no commit) for an idle line
        found = await self._owners(line, [g.key for g in due])
        owners = {g.id: owner for g, owner in zip(due, found, strict=True)}
        now = self._clock.now_ms()
        ids = await self._store.new_ids(len(due), now)
        imsi = {p.index: p.imsi for p in ports}

        async def job(conn: AsyncConnection) -> list[int]:
            await repo.purge(conn, line, done_before_ms=started_before_ms)
            # Those seen above and still waiting (another worker may have stored some).
            groups = [
                g
                for g in await repo.due(conn, line, started_before_ms=started_before_ms)
                if g.id in owners
            ]
            kept = await repo.parts(conn, [g.id for g in groups])
            await repo.finish(conn, [g.id for g in groups], done_ms=now)
            records = [
                _record(mid, owners[g.id], g, kept[g.id], imsi)
                for g, mid in zip(groups, ids, strict=False)
            ]
            await self._store_records(conn, records, now)
            return [r.id for r in records]

        return await self._store.db.write(job)

    async def _store_records(
        self, conn: AsyncConnection, records: Sequence[InboundRecord], now_ms: int
    ) -> None:
        if records:
            await self._store.inbound.insert(conn, records)
            await self._publish(conn, [InboundStored(r.id, now_ms) for r in records])


def _record(
    mid: int, owner: int, group: Group, parts: Sequence[StoredPart], imsi: dict[int, str]
) -> InboundRecord:
    """The SMS a group's parts make, received when its last part came."""
    key = group.key
    return InboundRecord(
        id=mid,
        account_id=owner,
        line=key.line,
        port=key.port,
        sender=key.sender,
        recipient=key.recipient,
        text=join_parts([(p.data_coding, p.data) for p in parts]),
        smsc=group.smsc,
        imsi=imsi.get(key.port, ""),
        parts=len(parts),
        received_ms=max(p.received_ms for p in parts),
        read=False,
    )
