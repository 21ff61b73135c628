"""SMPP accounts of simgate accounts, and the binds open on them (issue 18).

:func:`generation` moves once an SMPP account this process inserted has committed, and when
this process found one (a bind's lookup): the SMPP outbox's cached view of which accounts
have SMPP accounts (services/smpp_interest.py) reads them again at once then, not at its
next poll. Process-wide on purpose: any database this process opened reads again, which
costs one short read, never a missed change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.store.after_commit import after_commit
from simgate.store.smpp_tables import smpp_binds, smpp_users

_generation = 0


def generation() -> int:
    """A number that moves when this process added or found an SMPP account (module doc)."""
    return _generation


def _moved() -> None:
    global _generation  # noqa: PLW0603 (one counter per process: the module docstring)
    _generation += 1


@dataclass(frozen=True, slots=True)
class SmppUser:
    id: int
    account_id: int
    system_id: str
    password_hash: str
    allow_cidrs: tuple[str, ...]
    max_binds: int
    tps: int
    created_ms: int


@dataclass(frozen=True, slots=True)
class LiveBind:
    node: str
    system_id: str
    bind_type: str
    peer: str
    bound_ms: int


def _user(row: Any) -> SmppUser:
    d = dict(row._mapping)
    d["allow_cidrs"] = tuple(c for c in d["allow_cidrs"].split(",") if c)
    return SmppUser(**d)


class SmppUserRepo:
    async def insert(
        self,
        conn: AsyncConnection,
        *,
        account_id: int,
        system_id: str,
        password_hash: str,
        allow_cidrs: Sequence[str],
        max_binds: int,
        tps: int,
        now_ms: int,
    ) -> int:
        result = await conn.execute(
            insert(smpp_users).values(
                account_id=account_id,
                system_id=system_id,
                password_hash=password_hash,
                allow_cidrs=",".join(allow_cidrs),
                max_binds=max_binds,
                tps=tps,
                created_ms=now_ms,
            )
        )
        after_commit(conn, _moved)  # visible to the outbox's read only once committed
        return int(result.inserted_primary_key[0])  # type: ignore[index]

    async def find(self, conn: AsyncConnection, system_id: str) -> SmppUser | None:
        row = (
            await conn.execute(select(smpp_users).where(smpp_users.c.system_id == system_id))
        ).first()
        if row is None:
            return None
        # A bind in this process, maybe of an account another process created within the
        # outbox's poll: its messages' receipts must not wait for that poll.
        _moved()
        return _user(row)

    async def all(self, conn: AsyncConnection) -> list[SmppUser]:
        rows = await conn.execute(select(smpp_users).order_by(smpp_users.c.id))
        return [_user(r) for r in rows]

    async def accounts_with_users(self, conn: AsyncConnection) -> frozenset[int]:
        """Every account that has SMPP accounts (a few rows: read at most once a second)."""
        rows = await conn.execute(select(smpp_users.c.account_id).distinct())
        return frozenset(int(r[0]) for r in rows)

    # ---- live binds ------------------------------------------------------------------
    async def add_bind(self, conn: AsyncConnection, bind: LiveBind) -> int:
        result = await conn.execute(
            insert(smpp_binds).values(
                node=bind.node,
                system_id=bind.system_id,
                bind_type=bind.bind_type,
                peer=bind.peer,
                bound_ms=bind.bound_ms,
            )
        )
        return int(result.inserted_primary_key[0])  # type: ignore[index]

    async def remove_bind(self, conn: AsyncConnection, bind_id: int) -> None:
        await conn.execute(delete(smpp_binds).where(smpp_binds.c.id == bind_id))

    async def clear_node(self, conn: AsyncConnection, node: str) -> None:
        """Binds a previous run of this node left behind (it stopped or crashed)."""
        await conn.execute(delete(smpp_binds).where(smpp_binds.c.node == node))

    async def binds(self, conn: AsyncConnection) -> list[LiveBind]:
        rows = await conn.execute(
            select(
                smpp_binds.c.node,
                smpp_binds.c.system_id,
                smpp_binds.c.bind_type,
                smpp_binds.c.peer,
                smpp_binds.c.bound_ms,
            ).order_by(smpp_binds.c.id)
        )
        return [LiveBind(*r) for r in rows]

    async def bind_counts(self, conn: AsyncConnection) -> dict[str, int]:
        rows = await conn.execute(
            select(smpp_binds.c.system_id, func.count()).group_by(smpp_binds.c.system_id)
        )
        return {str(r[0]): int(r[1]) for r in rows}
