"""Accounts, apps, API keys, gateway users, rates and small documents."""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import fields
from typing import Any

from sqlalchemy import bindparam, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.domain.accounts import Account, ApiKey, App, AppKind, GatewayRole, GatewayUser
from simgate.domain.billing import Rate
from simgate.secretbox import SecretBox
from simgate.store import driver_sql
from simgate.store.sqltext import chunks
from simgate.store.tables import accounts, api_keys, apps, gateway_users, id_blocks, kv, rates

# An account by its id as one plain statement (``?`` marks) for Database.fetch, which runs it
# on the driver: SQLite's loop connection (store/thread_reads.py), asyncpg in autocommit. The
# same read through SQLAlchemy's execution on store/loop_sqlite.py (check-out, BEGIN event,
# compile-cache look-up, result object, rollback, close) made itniotech's getBalance, one
# indexed row, answer fewer requests than a one-number send (issue 15; bench/itnio_send.py).
ACCOUNT_COLUMNS = (
    "id",
    "name",
    "currency",
    "timezone",
    "balance_micros",
    "gift_micros",
    "credit_micros",
    "locked",
)
# Account's fields are these columns, in this order, and the table's first columns, so that
# account_of_row reads by position a row of this statement and of ``select(accounts)`` alike:
# a change of either fails here, at import, instead of shifting values into other fields.
if (
    tuple(f.name for f in fields(Account)) != ACCOUNT_COLUMNS
    or tuple(accounts.c.keys())[: len(ACCOUNT_COLUMNS)] != ACCOUNT_COLUMNS
):  # pragma: no cover
    raise ImportError("Account's fields or the accounts table changed: update ACCOUNT_COLUMNS")
ACCOUNT_BY_ID_SQL = f"SELECT {', '.join(ACCOUNT_COLUMNS)} FROM accounts WHERE id = ?"
# The largest id accounts.id holds: an INTEGER column, int4 on PostgreSQL (asyncpg refuses a
# larger parameter outright); a larger number is no account's.
MAX_ACCOUNT_ID = 2**31 - 1


def account_of_row(row: Sequence[Any]) -> Account:
    """A row of :data:`ACCOUNT_BY_ID_SQL` or ``select(accounts)`` (by position) as an
    Account."""
    return Account(
        id=row[0],
        name=row[1],
        currency=row[2],
        timezone=row[3],
        balance_micros=row[4],
        gift_micros=row[5],
        credit_micros=row[6],
        locked=bool(row[7]),
    )


def _user(row: Any) -> GatewayUser:
    return GatewayUser(
        row.id,
        row.username,
        row.password_hash,
        row.account_id,
        row.digest_md5,
        row.digest_sha256,
        GatewayRole(row.role),
    )


def _app(row: Any) -> App:
    return App(
        id=row.id,
        app_id=row.app_id,
        account_id=row.account_id,
        kind=AppKind(row.kind),
        name=row.name,
        push=json.loads(row.push_json or "{}"),
    )


# The look-ups auth makes on every cache miss, built once: a select() built per call costs
# more than SQLite's own work for it (bench/auth_query.py). SQLAlchemy's compiled cache
# then finds the same statement object each time.
_ACCOUNT_BY_ID = select(accounts).where(accounts.c.id == bindparam("id"))
_APP_BY_APP_ID = select(apps).where(apps.c.app_id == bindparam("app_id"))
_KEY_BY_KEY = select(api_keys).where(api_keys.c.key == bindparam("key"))
_USER_BY_NAME = select(gateway_users).where(gateway_users.c.username == bindparam("username"))
# ON CONFLICT ... DO UPDATE: the same text for SQLite (3.24+) and PostgreSQL.
_UPSERT_DOC = text(
    "INSERT INTO kv (key, value) VALUES (:key, :value) "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
)
# Opened secrets, by their sealed text: a Fernet decrypt costs about as much as the read.
MAX_OPENED_SECRETS = 4096


async def a_sealed_secret(conn: AsyncConnection) -> str | None:
    """One API secret as stored (sealed with the master key), or None when none is: what
    the start-up check opens to know the key is the one they were sealed with."""
    return (await conn.execute(select(api_keys.c.secret_enc).limit(1))).scalar()


class AccountRepo:
    def __init__(self, box: SecretBox) -> None:
        self._box = box
        self._opened: dict[str, str] = {}

    def _open(self, sealed: str) -> str:
        plain = self._opened.get(sealed)
        if plain is None:
            plain = self._box.open(sealed)
            if len(self._opened) >= MAX_OPENED_SECRETS:
                self._opened.clear()  # rare (more live keys than that): start over
            self._opened[sealed] = plain
        return plain

    # ---- accounts --------------------------------------------------------------------
    async def create_account(
        self,
        conn: AsyncConnection,
        *,
        name: str,
        currency: str,
        timezone: str,
        balance_micros: int,
        credit_micros: int,
        now_ms: int,
    ) -> Account:
        result = await conn.execute(
            insert(accounts)
            .values(
                name=name,
                currency=currency,
                timezone=timezone,
                balance_micros=balance_micros,
                gift_micros=0,
                credit_micros=credit_micros,
                locked=False,
                created_ms=now_ms,
            )
            .returning(*accounts.c)
        )
        return account_of_row(result.one())

    async def get_account(self, conn: AsyncConnection, account_id: int) -> Account | None:
        row = (await conn.execute(_ACCOUNT_BY_ID, {"id": account_id})).first()
        return account_of_row(row) if row else None

    async def get_accounts(self, conn: AsyncConnection, ids: Sequence[int]) -> dict[int, Account]:
        """The accounts of ``ids`` that exist, by id: one query per 500 ids."""
        out: dict[int, Account] = {}
        for chunk in chunks(sorted(set(ids)), 500):
            rows = await conn.execute(select(accounts).where(accounts.c.id.in_(chunk)))
            out.update((row.id, account_of_row(row)) for row in rows)
        return out

    async def find_account(self, conn: AsyncConnection, name: str) -> Account | None:
        row = (await conn.execute(select(accounts).where(accounts.c.name == name))).first()
        return account_of_row(row) if row else None

    async def list_accounts(self, conn: AsyncConnection) -> list[Account]:
        rows = await conn.execute(select(accounts).order_by(accounts.c.id))
        return [account_of_row(r) for r in rows]

    async def count_accounts(self, conn: AsyncConnection) -> int:
        return int((await conn.execute(select(func.count()).select_from(accounts))).scalar_one())

    async def topup(
        self, conn: AsyncConnection, account_id: int, *, balance: int = 0, gift: int = 0
    ) -> Account | None:
        row = (
            await conn.execute(
                update(accounts)
                .where(accounts.c.id == account_id)
                .values(
                    balance_micros=accounts.c.balance_micros + balance,
                    gift_micros=accounts.c.gift_micros + gift,
                )
                .returning(*accounts.c)
            )
        ).first()
        return account_of_row(row) if row else None

    async def set_locked(self, conn: AsyncConnection, account_id: int, locked: bool) -> bool:
        result = await conn.execute(
            update(accounts).where(accounts.c.id == account_id).values(locked=locked)
        )
        return bool(result.rowcount)

    async def set_credit(self, conn: AsyncConnection, account_id: int, credit: int) -> bool:
        result = await conn.execute(
            update(accounts).where(accounts.c.id == account_id).values(credit_micros=credit)
        )
        return bool(result.rowcount)

    async def charge(self, conn: AsyncConnection, account_id: int, amount: int) -> bool:
        """Take ``amount`` (gift first, then balance) if balance + gift + credit covers it.

        One guarded UPDATE, so concurrent charges can never overdraw (both SET expressions
        read the row's values from before the update, in SQLite and PostgreSQL alike). Its
        SQL is written once per dialect (:func:`_charge_sql`): built through Core at every
        accept batch, the expression and its cache key cost more than the UPDATE itself
        (issue 15 profile of a PostgreSQL send).
        """
        if amount <= 0:
            return True
        # Straight on SQLite's write connection (store/driver_sql.py): once per account of
        # every accept batch, where SQLAlchemy's execution path cost ~50 µs of loop CPU.
        changed = await driver_sql.run(
            conn, _charge_sql(conn.dialect.name), (amount, amount, amount, account_id, amount)
        )
        return bool(changed)

    async def spendable(self, conn: AsyncConnection, account_id: int) -> int | None:
        """Balance + gift + credit (what :meth:`charge` may take), the row locked until the
        transaction ends on PostgreSQL (SQLite's write transaction is exclusive already);
        None for an unknown account. The accept writer reads it when a batch's sum is not
        covered, to charge the requests that are (services/accept_writer.py)."""
        c = accounts.c
        row = (
            await conn.execute(
                select(c.balance_micros + c.gift_micros + c.credit_micros)
                .where(c.id == account_id)
                .with_for_update()
            )
        ).first()
        return None if row is None else int(row[0])

    @staticmethod
    async def debit(conn: AsyncConnection, account_id: int, amount: int) -> None:
        """Take ``amount`` (gift first, then balance) whatever the balance: the service was
        already delivered (a finished call), so the balance may go below minus the credit.

        One UPDATE; like :meth:`charge`, both SET expressions read the values from before it.
        Static: it needs no secrets, so the call repository uses it without an AccountRepo.
        """
        if amount <= 0:
            return
        gift = accounts.c.gift_micros
        sqlite = conn.dialect.name == "sqlite"
        await conn.execute(
            update(accounts)
            .where(accounts.c.id == account_id)
            .values(
                gift_micros=func.max(gift - amount, 0)
                if sqlite
                else func.greatest(gift - amount, 0),
                balance_micros=accounts.c.balance_micros
                - (amount - (func.min(gift, amount) if sqlite else func.least(gift, amount))),
            )
        )

    async def refund(self, conn: AsyncConnection, refunds: dict[int, int]) -> None:
        """Refunds go back to the balance (gift spent is not re-gifted)."""
        for account_id, amount in refunds.items():
            if amount:
                await conn.execute(
                    update(accounts)
                    .where(accounts.c.id == account_id)
                    .values(balance_micros=accounts.c.balance_micros + amount)
                )

    # ---- apps ------------------------------------------------------------------------
    async def create_app(
        self,
        conn: AsyncConnection,
        *,
        app_id: str,
        account_id: int,
        kind: AppKind,
        name: str,
        now_ms: int,
    ) -> App:
        result = await conn.execute(
            insert(apps)
            .values(
                app_id=app_id,
                account_id=account_id,
                kind=kind.value,
                name=name,
                push_json="{}",
                created_ms=now_ms,
            )
            .returning(*apps.c)
        )
        return _app(result.one())

    async def get_app(self, conn: AsyncConnection, app_id: str) -> App | None:
        row = (await conn.execute(_APP_BY_APP_ID, {"app_id": app_id})).first()
        return _app(row) if row else None

    async def get_app_by_pk(self, conn: AsyncConnection, pk: int) -> App | None:
        row = (await conn.execute(select(apps).where(apps.c.id == pk))).first()
        return _app(row) if row else None

    async def get_apps_by_pk(self, conn: AsyncConnection, pks: Sequence[int]) -> dict[int, App]:
        """The apps of primary keys ``pks`` that exist, by key: one query per 500 keys."""
        out: dict[int, App] = {}
        for chunk in chunks(sorted(set(pks)), 500):
            rows = await conn.execute(select(apps).where(apps.c.id.in_(chunk)))
            out.update((row.id, _app(row)) for row in rows)
        return out

    async def apps_of_accounts(
        self, conn: AsyncConnection, account_ids: Sequence[int]
    ) -> dict[int, tuple[App, ...]]:
        """Every app of each account of ``account_ids``, in app id order (one query per 500)."""
        found: dict[int, list[App]] = {a: [] for a in account_ids}
        for chunk in chunks(sorted(set(account_ids)), 500):
            q = select(apps).where(apps.c.account_id.in_(chunk)).order_by(apps.c.id)
            for row in await conn.execute(q):
                found[row.account_id].append(_app(row))
        return {a: tuple(found_apps) for a, found_apps in found.items()}

    async def list_apps(self, conn: AsyncConnection, account_id: int | None = None) -> list[App]:
        q = select(apps).order_by(apps.c.id)
        if account_id is not None:
            q = q.where(apps.c.account_id == account_id)
        return [_app(r) for r in await conn.execute(q)]

    async def update_app_push(
        self, conn: AsyncConnection, app_id: str, push: dict[str, str]
    ) -> App | None:
        row = (
            await conn.execute(
                update(apps)
                .where(apps.c.app_id == app_id)
                .values(push_json=json.dumps(push, sort_keys=True))
                .returning(*apps.c)
            )
        ).first()
        return _app(row) if row else None

    # ---- API keys --------------------------------------------------------------------
    async def create_key(
        self,
        conn: AsyncConnection,
        *,
        key: str,
        secret: str,
        account_id: int,
        allow_ips: tuple[str, ...],
        now_ms: int,
    ) -> ApiKey:
        result = await conn.execute(
            insert(api_keys)
            .values(
                key=key,
                secret_enc=self._box.seal(secret),
                account_id=account_id,
                allow_ips=",".join(allow_ips),
                revoked=False,
                created_ms=now_ms,
            )
            .returning(api_keys.c.id)
        )
        return ApiKey(result.scalar_one(), key, secret, account_id, allow_ips, False)

    def _key(self, row: Any) -> ApiKey:
        ips = tuple(x for x in (row.allow_ips or "").split(",") if x)
        return ApiKey(
            row.id, row.key, self._open(row.secret_enc), row.account_id, ips, bool(row.revoked)
        )

    async def get_key(self, conn: AsyncConnection, key: str) -> ApiKey | None:
        row = (await conn.execute(_KEY_BY_KEY, {"key": key})).first()
        return self._key(row) if row else None

    async def list_keys(self, conn: AsyncConnection, account_id: int | None = None) -> list[ApiKey]:
        q = select(api_keys).order_by(api_keys.c.id)
        if account_id is not None:
            q = q.where(api_keys.c.account_id == account_id)
        return [self._key(r) for r in await conn.execute(q)]

    async def revoke_key(self, conn: AsyncConnection, key: str) -> bool:
        result = await conn.execute(
            update(api_keys).where(api_keys.c.key == key).values(revoked=True)
        )
        return bool(result.rowcount)

    # ---- gateway users ---------------------------------------------------------------
    async def create_user(
        self,
        conn: AsyncConnection,
        *,
        username: str,
        password_hash: str,
        digest_md5: str,
        digest_sha256: str,
        account_id: int,
        now_ms: int,
        role: GatewayRole = GatewayRole.ACCOUNT,
    ) -> GatewayUser:
        result = await conn.execute(
            insert(gateway_users)
            .values(
                username=username,
                password_hash=password_hash,
                digest_md5=digest_md5,
                digest_sha256=digest_sha256,
                account_id=account_id,
                created_ms=now_ms,
                role=role.value,
            )
            .returning(gateway_users.c.id)
        )
        return GatewayUser(
            result.scalar_one(),
            username,
            password_hash,
            account_id,
            digest_md5,
            digest_sha256,
            role,
        )

    async def set_user_role(self, conn: AsyncConnection, username: str, role: GatewayRole) -> bool:
        result = await conn.execute(
            update(gateway_users)
            .where(gateway_users.c.username == username)
            .values(role=role.value)
        )
        return bool(result.rowcount)

    async def get_user(self, conn: AsyncConnection, username: str) -> GatewayUser | None:
        row = (await conn.execute(_USER_BY_NAME, {"username": username})).first()
        return None if row is None else _user(row)

    async def list_users(self, conn: AsyncConnection) -> list[GatewayUser]:
        rows = await conn.execute(select(gateway_users).order_by(gateway_users.c.id))
        return [_user(r) for r in rows]

    # ---- rates -----------------------------------------------------------------------
    async def set_rate(self, conn: AsyncConnection, rate: Rate) -> None:
        existing = (
            await conn.execute(
                select(rates.c.id).where(rates.c.kind == rate.kind, rates.c.prefix == rate.prefix)
            )
        ).first()
        values = {
            "price_micros": rate.price_micros,
            "currency": rate.currency,
            "bill_period": rate.bill_period,
        }
        if existing:
            await conn.execute(update(rates).where(rates.c.id == existing.id).values(**values))
        else:
            await conn.execute(insert(rates).values(kind=rate.kind, prefix=rate.prefix, **values))

    async def list_rates(self, conn: AsyncConnection) -> list[Rate]:
        rows = await conn.execute(select(rates).order_by(rates.c.kind, rates.c.prefix))
        return [Rate(r.kind, r.prefix, r.price_micros, r.currency, r.bill_period) for r in rows]

    # ---- small documents and counters ------------------------------------------------
    async def get_doc(self, conn: AsyncConnection, key: str) -> dict[str, Any] | None:
        row = (await conn.execute(select(kv.c.value).where(kv.c.key == key))).first()
        return json.loads(row.value) if row else None

    async def put_doc(self, conn: AsyncConnection, key: str, value: dict[str, Any]) -> None:
        text = json.dumps(value, sort_keys=True)
        result = await conn.execute(update(kv).where(kv.c.key == key).values(value=text))
        if not result.rowcount:
            await conn.execute(insert(kv).values(key=key, value=text))

    async def upsert_doc(self, conn: AsyncConnection, key: str, value: dict[str, Any]) -> None:
        """:meth:`put_doc` in one statement: two processes writing a key absent so far both
        succeed (the later one wins) instead of one failing on the primary key."""
        await conn.execute(_UPSERT_DOC, {"key": key, "value": json.dumps(value, sort_keys=True)})

    async def reserve_block(self, conn: AsyncConnection, name: str, size: int) -> int:
        """Reserve ``size`` consecutive values of counter ``name``; returns the first."""
        row = (
            await conn.execute(
                update(id_blocks)
                .where(id_blocks.c.name == name)
                .values(next_value=id_blocks.c.next_value + size)
                .returning(id_blocks.c.next_value)
            )
        ).first()
        if row is None:
            await conn.execute(insert(id_blocks).values(name=name, next_value=size))
            return 0
        return int(row.next_value) - size


@functools.cache
def _charge_sql(dialect: str) -> str:
    """:meth:`AccountRepo.charge`'s UPDATE, parameters (amount, amount, amount, account id,
    amount): the gift pays first, the balance the rest, if balance + gift + credit cover it."""
    if dialect == "sqlite":
        marks, most, least = ["?"] * 5, "max", "min"
    else:  # asyncpg: numbered, typed (an untyped $n beside a bigint column may not infer)
        marks, most, least = [f"${i}::bigint" for i in range(1, 6)], "greatest", "least"
    gift, paid, capped, account, covers = marks
    return (
        f"UPDATE {accounts.name} SET gift_micros = {most}(gift_micros - {gift}, 0), "
        f"balance_micros = balance_micros - ({paid} - {least}(gift_micros, {capped})) "
        f"WHERE id = {account} AND balance_micros + gift_micros + credit_micros >= {covers}"
    )
