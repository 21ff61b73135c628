"""Console users and sessions (issue 19): ``simgate console-users`` and the console's login.

Roles: ``admin`` may act (top up, retry pushes, create keys...); ``viewer`` only reads. A user
with an account sees and acts on that account alone; a user without one is the operator's.
Passwords are scrypt hashes (the gateway users' :func:`hash_password`). Sessions live in the
database: the cookie carries a random token, the row its SHA-256, so logout or deleting the
user ends the session in every process at once.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import secrets
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.exc import IntegrityError

from simgate.clock import Clock
from simgate.errors import InvalidInput, NotFound
from simgate.services.accounts import AccountService, hash_password, random_token, verify_password
from simgate.store import Store
from simgate.store import console_users as rows

SESSION_SECONDS = 12 * 3600  # a working day; then log in again
GENERATED_PASSWORD_LENGTH = 16
MIN_PASSWORD = 8
# Verified when the username is unknown, so a wrong name answers no faster than a wrong
# password (no user enumeration by timing); no password hashes to it.
_DUMMY_HASH = "scrypt$" + "00" * 16 + "$" + "00" * 64


class ConsoleRole(enum.StrEnum):
    ADMIN = "admin"
    VIEWER = "viewer"


@dataclass(frozen=True, slots=True)
class ConsoleUser:
    id: int
    username: str
    role: ConsoleRole
    account_id: int | None  # None: every account (the operator)
    timezone: str

    @property
    def can_act(self) -> bool:
        return self.role is ConsoleRole.ADMIN


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    user: ConsoleUser
    csrf: str
    expires_ms: int


def _user(row: rows.UserRow) -> ConsoleUser:
    return ConsoleUser(row.id, row.username, ConsoleRole(row.role), row.account_id, row.timezone)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ConsoleAuth:
    def __init__(self, *, store: Store, clock: Clock, accounts: AccountService) -> None:
        self._db = store.db
        self._clock = clock
        self._accounts = accounts

    # ---- users (the CLI) -------------------------------------------------------------
    async def create_user(
        self,
        *,
        username: str,
        password: str | None = None,
        role: str = ConsoleRole.ADMIN,
        account: str | None = None,
        timezone: str = "UTC",
    ) -> tuple[ConsoleUser, str]:
        """Create a user; returns it and its password (generated when none is given)."""
        if not username or len(username) > 64 or not username.isprintable():
            raise InvalidInput("username must be 1..64 printable characters")
        try:
            chosen = ConsoleRole(role)
        except ValueError:
            raise InvalidInput(f"unknown role {role!r} (admin or viewer)") from None
        if password is None:
            password = random_token(GENERATED_PASSWORD_LENGTH)
        if len(password) < MIN_PASSWORD:
            raise InvalidInput(f"password must have at least {MIN_PASSWORD} characters")
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidInput(f"unknown time zone: {timezone!r}") from None
        account_id = None if account is None else (await self._accounts.get_account(account)).id
        job = functools.partial(
            rows.create_user,
            username=username,
            password_hash=hash_password(password),
            role=chosen.value,
            account_id=account_id,
            timezone=timezone,
            now_ms=self._clock.now_ms(),
        )
        async with self._db.read() as conn:
            if await rows.get_user(conn, username) is not None:
                raise InvalidInput(f"console user {username!r} exists already")
        try:
            return _user(await self._db.write(job)), password
        except IntegrityError:
            raise InvalidInput(f"console user {username!r} exists already") from None

    async def list_users(self) -> list[ConsoleUser]:
        async with self._db.read() as conn:
            return [_user(r) for r in await rows.list_users(conn)]

    async def delete_user(self, username: str) -> None:
        """Delete the user; its sessions end with it."""
        if not await self._db.write(functools.partial(rows.delete_user, username=username)):
            raise NotFound(f"no such console user: {username}")

    # ---- login and sessions ------------------------------------------------------------
    async def authenticate(self, username: str, password: str) -> ConsoleUser | None:
        async with self._db.read() as conn:
            row = await rows.get_user(conn, username)
        stored = row.password_hash if row is not None else _DUMMY_HASH
        ok = verify_password(password, stored)
        return _user(row) if ok and row is not None else None

    async def open_session(self, user: ConsoleUser) -> tuple[str, ConsoleSession]:
        """A new session for ``user``: the cookie's token and the session."""
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        now = self._clock.now_ms()
        expires = now + SESSION_SECONDS * 1000
        await self._db.write(
            functools.partial(
                rows.open_session,
                token_hash=token_hash(token),
                user_id=user.id,
                csrf=csrf,
                now_ms=now,
                expires_ms=expires,
            )
        )
        return token, ConsoleSession(user, csrf, expires)

    async def session(self, token: str) -> ConsoleSession | None:
        if not token or len(token) > 128:
            return None
        async with self._db.read() as conn:
            row = await rows.get_session(
                conn, token_hash=token_hash(token), now_ms=self._clock.now_ms()
            )
        return None if row is None else ConsoleSession(_user(row.user), row.csrf, row.expires_ms)

    async def close_session(self, token: str) -> None:
        await self._db.write(functools.partial(rows.close_session, token_hash=token_hash(token)))
