"""Password checks counted, and account changes made behind a process's back.

:class:`CountingPasswordCheck` is the real check (scrypt) with a counter: the dialects'
authenticators take it as ``check_password``, so a test sees how many scrypts were paid.

``change_password`` and ``lock_account`` write the rows directly, as another process or an
operator's SQL would, without moving this process's cache epoch: only the credential
caches' expiry can make the change take effect, which is what the tests want to watch.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.services.accounts import digest_ha1, hash_password, verify_password
from simgate.store import Store
from simgate.store.tables import accounts, gateway_users


class CountingPasswordCheck:
    """``services.accounts.verify_password``, counting the calls (each one is a scrypt)."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, password: str, stored: str) -> bool:
        self.calls += 1
        return verify_password(password, stored)


async def change_password(store: Store, username: str, password: str) -> None:
    values = {
        "password_hash": hash_password(password),
        "digest_md5": digest_ha1(username, password, "MD5"),
        "digest_sha256": digest_ha1(username, password, "SHA-256"),
    }

    async def job(conn: AsyncConnection) -> None:
        u = gateway_users.c
        changed = await conn.execute(
            update(gateway_users).where(u.username == username).values(**values)
        )
        assert changed.rowcount == 1

    await store.db.write(job)


async def lock_account(store: Store, account_id: int) -> None:
    async def job(conn: AsyncConnection) -> None:
        changed = await conn.execute(
            update(accounts).where(accounts.c.id == account_id).values(locked=True)
        )
        assert changed.rowcount == 1

    await store.db.write(job)
