"""Console users and their server-side sessions (migration 0013_console, issue 19).

A session is a row, so logout and ``simgate console-users delete`` end it at once in every
process. The row keeps a SHA-256 of the cookie's token, never the token: a leaked database
copy holds no usable session.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.store.tables import metadata

console_users = Table(
    "console_users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),
    Column("role", String(16), nullable=False),  # services.console_auth.ConsoleRole
    # None: the operator's user, every account; else this account's data only.
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=True),
    Column("timezone", String(64), nullable=False, server_default="UTC"),
    Column("created_ms", BigInteger, nullable=False),
)

console_sessions = Table(
    "console_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", Integer, ForeignKey("console_users.id"), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("expires_ms", BigInteger, nullable=False),
)
Index("ix_console_sessions_user", console_sessions.c.user_id)


@dataclass(frozen=True, slots=True)
class UserRow:
    id: int
    username: str
    password_hash: str
    role: str
    account_id: int | None
    timezone: str
    created_ms: int


@dataclass(frozen=True, slots=True)
class SessionRow:
    user: UserRow
    csrf: str
    expires_ms: int


def _user(row: Any) -> UserRow:
    m = row._mapping
    return UserRow(
        id=m["id"],
        username=m["username"],
        password_hash=m["password_hash"],
        role=m["role"],
        account_id=m["account_id"],
        timezone=m["timezone"],
        created_ms=m["created_ms"],
    )


async def create_user(
    conn: AsyncConnection,
    *,
    username: str,
    password_hash: str,
    role: str,
    account_id: int | None,
    timezone: str,
    now_ms: int,
) -> UserRow:
    result = await conn.execute(
        insert(console_users).values(
            username=username,
            password_hash=password_hash,
            role=role,
            account_id=account_id,
            timezone=timezone,
            created_ms=now_ms,
        )
    )
    key = result.inserted_primary_key
    assert key is not None
    return UserRow(key[0], username, password_hash, role, account_id, timezone, now_ms)


async def get_user(conn: AsyncConnection, username: str) -> UserRow | None:
    row = (
        await conn.execute(select(console_users).where(console_users.c.username == username))
    ).first()
    return None if row is None else _user(row)


async def list_users(conn: AsyncConnection) -> list[UserRow]:
    rows = await conn.execute(select(console_users).order_by(console_users.c.id))
    return [_user(r) for r in rows]


async def delete_user(conn: AsyncConnection, *, username: str) -> bool:
    """Delete the user and every session of it; False when there is no such user."""
    user = await get_user(conn, username)
    if user is None:
        return False
    await conn.execute(delete(console_sessions).where(console_sessions.c.user_id == user.id))
    await conn.execute(delete(console_users).where(console_users.c.id == user.id))
    return True


async def set_password(conn: AsyncConnection, *, username: str, password_hash: str) -> bool:
    result = await conn.execute(
        update(console_users)
        .where(console_users.c.username == username)
        .values(password_hash=password_hash)
    )
    return bool(result.rowcount)


async def open_session(
    conn: AsyncConnection,
    *,
    token_hash: str,
    user_id: int,
    csrf: str,
    now_ms: int,
    expires_ms: int,
) -> None:
    # Sessions past their end are dropped here, so the table never outgrows live logins.
    await conn.execute(delete(console_sessions).where(console_sessions.c.expires_ms < now_ms))
    await conn.execute(
        insert(console_sessions).values(
            token_hash=token_hash,
            user_id=user_id,
            csrf=csrf,
            created_ms=now_ms,
            expires_ms=expires_ms,
        )
    )


async def get_session(conn: AsyncConnection, *, token_hash: str, now_ms: int) -> SessionRow | None:
    s = console_sessions
    row = (
        await conn.execute(
            select(console_users, s.c.csrf, s.c.expires_ms)
            .join(console_users, console_users.c.id == s.c.user_id)
            .where(s.c.token_hash == token_hash, s.c.expires_ms >= now_ms)
        )
    ).first()
    if row is None:
        return None
    return SessionRow(_user(row), row._mapping["csrf"], row._mapping["expires_ms"])


async def close_session(conn: AsyncConnection, *, token_hash: str) -> None:
    await conn.execute(delete(console_sessions).where(console_sessions.c.token_hash == token_hash))
