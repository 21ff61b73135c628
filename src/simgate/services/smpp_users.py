"""SMPP accounts (``simgate smpp-users``) and the bind check of the SMPP server (issue 18).

An SMPP account belongs to one simgate account: messages it submits are charged to it, and
its receipts and incoming SMS go out on any receiving bind of that account. Passwords are
kept as scrypt hashes like gateway users' (services/accounts.py ``hash_password``); SMPP
v3.4 §4.1.1 limits them to 8 characters and system ids to 15.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import ipaddress
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.clock import Clock
from simgate.domain.accounts import Account, validate_cidrs
from simgate.errors import AlreadyExists, InvalidInput
from simgate.services.accounts import AccountService, hash_password, random_token, verify_password
from simgate.store import Store
from simgate.store.smpp_users import LiveBind, SmppUser, SmppUserRepo

log = logging.getLogger(__name__)

MAX_SYSTEM_ID = 15  # C-octet string of 16 with its NUL (§4.1.1)
MAX_PASSWORD = 8  # C-octet string of 9
# scrypt of a password nobody has: an unknown system_id costs what a wrong password does.
_DUMMY_HASH = hash_password("-unused-", salt=b"simgate-smpp-dummy")


class BindRefusal(enum.Enum):
    """Why a bind is refused; the listener maps each to its SMPP status (§5.1.3)."""

    UNKNOWN_SYSTEM_ID = "unknown system_id"
    BAD_PASSWORD = "wrong password"  # noqa: S105 (a reason, not a password)
    ADDRESS_NOT_ALLOWED = "address not allowed"
    ACCOUNT_LOCKED = "account locked"
    TOO_MANY_BINDS = "too many binds"


@dataclass(frozen=True, slots=True)
class BindGrant:
    user: SmppUser
    account: Account


@dataclass(frozen=True, slots=True)
class UserListing:
    user: SmppUser
    account_name: str
    live_binds: int


def allowed(cidrs: Sequence[str], address: str) -> bool:
    if not cidrs:
        return True
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in ipaddress.ip_network(c, strict=False) for c in cidrs)


class SmppUserService:
    def __init__(self, *, store: Store, accounts: AccountService, clock: Clock) -> None:
        self._store = store
        self._accounts = accounts
        self._clock = clock
        self._repo = SmppUserRepo()
        # A hash costs ~50 ms of CPU: a bind flood must not take every core (issue 18).
        self._hashing = asyncio.Semaphore(2)

    async def create(
        self,
        *,
        account: str,
        system_id: str,
        password: str | None = None,
        allow: Sequence[str] = (),
        max_binds: int = 4,
        tps: int = 0,
    ) -> tuple[SmppUser, str]:
        """A new SMPP account of ``account``; returns it and its password (generated when
        not given: shown once, only its hash is kept)."""
        if not 1 <= len(system_id) <= MAX_SYSTEM_ID or not system_id.isprintable():
            raise InvalidInput(f"system_id must be 1..{MAX_SYSTEM_ID} printable characters")
        password = password if password is not None else random_token(MAX_PASSWORD)
        if not 1 <= len(password) <= MAX_PASSWORD or not password.isascii():
            raise InvalidInput(f"password must be 1..{MAX_PASSWORD} ASCII characters")
        if max_binds < 1 or tps < 0:
            raise InvalidInput("max_binds must be >= 1 and tps >= 0")
        try:
            cidrs = validate_cidrs(list(allow))
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None
        owner = await self._accounts.get_account(account)
        digest = hash_password(password)
        now = self._clock.now_ms()

        async def job(conn: AsyncConnection) -> int:
            return await self._repo.insert(
                conn,
                account_id=owner.id,
                system_id=system_id,
                password_hash=digest,
                allow_cidrs=cidrs,
                max_binds=max_binds,
                tps=tps,
                now_ms=now,
            )

        try:
            user_id = await self._store.db.write(job)
        except IntegrityError:
            raise AlreadyExists(f"system_id {system_id!r} exists") from None
        user = SmppUser(user_id, owner.id, system_id, digest, cidrs, max_binds, tps, now)
        return user, password

    async def listing(self) -> list[UserListing]:
        async with self._store.db.read() as conn:
            users = await self._repo.all(conn)
            counts = await self._repo.bind_counts(conn)
            accounts = await self._store.accounts.get_accounts(conn, [u.account_id for u in users])
        return [
            UserListing(
                u,
                accounts[u.account_id].name if u.account_id in accounts else "?",
                counts.get(u.system_id, 0),
            )
            for u in users
        ]

    async def live_binds(self) -> list[LiveBind]:
        async with self._store.db.read() as conn:
            return await self._repo.binds(conn)

    async def check_bind(
        self, *, system_id: str, password: str, address: str
    ) -> BindGrant | BindRefusal:
        """The SMPP account a bind names, or why it is refused. A database error raises:
        the listener refuses the bind (never lets it in)."""
        async with self._store.db.read() as conn:
            user = await self._repo.find(conn, system_id)
            account = (
                None
                if user is None
                else (await self._store.accounts.get_accounts(conn, [user.account_id])).get(
                    user.account_id
                )
            )
        stored = user.password_hash if user is not None else _DUMMY_HASH
        async with self._hashing:
            good = await asyncio.to_thread(verify_password, password, stored)
        if user is None or account is None:
            return BindRefusal.UNKNOWN_SYSTEM_ID
        if not good:
            return BindRefusal.BAD_PASSWORD
        if not allowed(user.allow_cidrs, address):
            return BindRefusal.ADDRESS_NOT_ALLOWED
        if account.locked:
            return BindRefusal.ACCOUNT_LOCKED
        return BindGrant(user, account)

    # ---- live binds (what `smpp-users list` shows from any process) --------------------
    async def bound(self, *, node: str, system_id: str, bind_type: str, peer: str) -> int:
        bind = LiveBind(node, system_id, bind_type, peer[:64], self._clock.now_ms())
        return await self._store.db.write(functools.partial(self._repo.add_bind, bind=bind))

    async def unbound(self, bind_id: int) -> None:
        await self._store.db.write(functools.partial(self._repo.remove_bind, bind_id=bind_id))

    async def forget_node(self, node: str) -> None:
        await self._store.db.write(functools.partial(self._repo.clear_node, node=node))


__all__ = [
    "BindGrant",
    "BindRefusal",
    "LiveBind",
    "SmppUser",
    "SmppUserService",
    "UserListing",
    "allowed",
]
