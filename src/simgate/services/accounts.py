"""Accounts, apps, API keys, gateway users and rates: the operator's use cases."""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
import secrets
import string
from collections.abc import Awaitable, Callable
from typing import TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.clock import Clock
from simgate.domain.accounts import (
    Account,
    ApiKey,
    App,
    AppKind,
    GatewayRole,
    GatewayUser,
    LedgerEntry,
    LedgerKind,
    validate_cidrs,
)
from simgate.domain.billing import BillPeriod, Rate
from simgate.domain.money import parse_amount
from simgate.errors import InvalidInput, NotFound
from simgate.services.cache_epoch import CacheEpoch
from simgate.store import Store
from simgate.store.accounts import ACCOUNT_BY_ID_SQL, MAX_ACCOUNT_ID, account_of_row

# Digest auth (RFC 7616) needs HA1 = H(username:realm:password); we keep HA1, not the password.
DIGEST_REALM = "simgate"
# Who a movement is recorded as when the caller names nobody (the demo account, tests).
SYSTEM = "system"
_BY_MAX = 64
_ALNUM = string.ascii_letters + string.digits


def random_token(length: int) -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(length))


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    salt = salt or os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)
    return f"scrypt${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, salt_hex, digest_hex = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    digest = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt_hex), n=2**14, r=8, p=1)
    return hmac.compare_digest(digest.hex(), digest_hex)


def digest_ha1(username: str, password: str, algorithm: str) -> str:
    data = f"{username}:{DIGEST_REALM}:{password}".encode()
    if algorithm == "SHA-256":
        return hashlib.sha256(data).hexdigest()
    # RFC 7616 §3.4.2: MD5 is what "algorithm=MD5" means; curl --digest still defaults to it.
    return hashlib.md5(data).hexdigest()  # noqa: S324


T = TypeVar("T")


class AccountService:
    def __init__(self, *, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        # Moves on every change below: the API's caches of accounts, apps, keys and users
        # drop what they hold (services/cache_epoch.py gives the staleness bound).
        self.epoch = CacheEpoch(store=store, clock=clock)

    async def _change(self, job: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """Run a change through group commit with a fresh cache stamp in its transaction;
        the epoch moves once it committed."""

        async def stamped(conn: AsyncConnection) -> tuple[T, str]:
            return await job(conn), await self.epoch.stamp(conn)

        result, stamp = await self._store.db.write(stamped)
        self.epoch.changed(stamp)
        return result

    async def _read_account(self, ref: str | int) -> Account:
        account: Account | None = None
        if isinstance(ref, int) or str(ref).isdigit():
            account_id = int(ref)
            if account_id <= MAX_ACCOUNT_ID:  # a larger number is no account's id
                # Straight on the driver (store/accounts.py ACCOUNT_BY_ID_SQL): read on every
                # getBalance, and the balance must be the committed one, never a cached copy.
                (rows,) = await self._store.db.fetch([(ACCOUNT_BY_ID_SQL, (account_id,))])
                account = account_of_row(rows[0]) if rows else None
        else:
            async with self._store.db.read_short() as conn:
                account = await self._store.accounts.find_account(conn, str(ref))
        if account is None:
            raise NotFound(f"no such account: {ref}")
        return account

    async def get_account(self, ref: str | int) -> Account:
        return await self._read_account(ref)

    async def list_accounts(self) -> list[Account]:
        async with self._store.db.read() as conn:
            return await self._store.accounts.list_accounts(conn)

    async def create_account(
        self,
        *,
        name: str,
        currency: str = "USD",
        timezone: str = "UTC",
        balance: str = "0",
        credit: str = "0",
        by: str = SYSTEM,
    ) -> Account:
        """Create an account; an opening balance is the first entry of its ledger."""
        if not name or len(name) > 64:
            raise InvalidInput("account name must be 1..64 characters")
        if name.isdigit():  # "simgate accounts topup 12" means the account with id 12
            raise InvalidInput("account name must not be all digits (those are account ids)")
        if len(currency) != 3 or not currency.isalpha():
            raise InvalidInput(f"currency must be a 3-letter code, not {currency!r}")
        _check_timezone(timezone)
        opening, credit_micros, who = _amount(balance), _amount(credit), _by(by)
        now_ms = self._clock.now_ms()

        async def job(conn: AsyncConnection) -> Account:
            account = await self._store.accounts.create_account(
                conn,
                name=name,
                currency=currency.upper(),
                timezone=timezone,
                balance_micros=opening,
                credit_micros=credit_micros,
                now_ms=now_ms,
            )
            if opening:
                await self._store.ledger.add(
                    conn,
                    account_id=account.id,
                    kind=LedgerKind.OPENING,
                    amount_micros=opening,
                    balance_after_micros=account.balance_micros,
                    gift_after_micros=account.gift_micros,
                    by=who,
                    reason="",
                    now_ms=now_ms,
                )
            return account

        async with self._store.db.read() as conn:
            if await self._store.accounts.find_account(conn, name):
                raise InvalidInput(f"account {name!r} exists already")
        try:
            return await self._change(job)
        except IntegrityError:  # created meanwhile by a concurrent request or process
            raise InvalidInput(f"account {name!r} exists already") from None

    async def topup(
        self, ref: str | int, *, amount: str, gift: bool = False, by: str = SYSTEM
    ) -> Account:
        """Add money (to the gift balance with ``gift``); refused unless positive: taking
        money back is a :meth:`correct` with a reason."""
        micros = _amount(amount)
        if micros <= 0:
            raise InvalidInput(
                f"a top-up must be more than 0, not {amount}; to take money back use"
                " 'simgate accounts correct ACCOUNT AMOUNT --reason TEXT'"
            )
        kind = LedgerKind.GIFT if gift else LedgerKind.TOPUP
        return await self._move(ref, kind=kind, micros=micros, by=by, reason="")

    async def correct(
        self, ref: str | int, *, amount: str, reason: str, by: str = SYSTEM
    ) -> Account:
        """Correct the balance by a signed ``amount`` (a mistaken top-up, a goodwill credit);
        the reason is kept in the ledger."""
        micros = _amount(amount)
        if micros == 0:
            raise InvalidInput("a correction must not be 0")
        if not reason.strip():
            raise InvalidInput("a correction needs a reason (--reason)")
        return await self._move(
            ref, kind=LedgerKind.CORRECTION, micros=micros, by=by, reason=reason.strip()
        )

    async def _move(
        self, ref: str | int, *, kind: LedgerKind, micros: int, by: str, reason: str
    ) -> Account:
        """Move the money and write its ledger entry in one unit of work."""
        who = _by(by)
        account = await self._read_account(ref)
        gift = kind is LedgerKind.GIFT
        now_ms = self._clock.now_ms()

        async def job(conn: AsyncConnection) -> Account | None:
            updated = await self._store.accounts.topup(
                conn, account.id, balance=0 if gift else micros, gift=micros if gift else 0
            )
            if updated is None:
                return None
            await self._store.ledger.add(
                conn,
                account_id=account.id,
                kind=kind,
                amount_micros=micros,
                balance_after_micros=updated.balance_micros,
                gift_after_micros=updated.gift_micros,
                by=who,
                reason=reason,
                now_ms=now_ms,
            )
            return updated

        updated = await self._change(job)
        if updated is None:
            raise NotFound(f"no such account: {ref}")
        return updated

    async def ledger(self, ref: str | int) -> list[LedgerEntry]:
        """The account's operator movements, oldest first."""
        account = await self._read_account(ref)
        async with self._store.db.read() as conn:
            return await self._store.ledger.entries(conn, account.id)

    async def rebuilt_micros(self, ref: str | int) -> int:
        """Balance + gift rebuilt from the records: the ledger, less what messages hold
        charged and calls debited. Equal to the account's figures unless something is wrong."""
        account = await self._read_account(ref)
        async with self._store.db.read() as conn:
            return await self._store.ledger.rebuilt_micros(conn, account.id)

    async def set_locked(self, ref: str | int, locked: bool) -> None:
        account = await self._read_account(ref)
        await self._change(
            functools.partial(self._store.accounts.set_locked, account_id=account.id, locked=locked)
        )

    async def set_credit(self, ref: str | int, amount: str) -> None:
        account = await self._read_account(ref)
        await self._change(
            functools.partial(
                self._store.accounts.set_credit, account_id=account.id, credit=_amount(amount)
            )
        )

    # ---- apps ------------------------------------------------------------------------
    async def create_app(self, account: str | int, *, kind: AppKind, name: str = "") -> App:
        acc = await self._read_account(account)
        job = functools.partial(
            self._store.accounts.create_app,
            app_id=random_token(8),
            account_id=acc.id,
            kind=kind,
            name=name or f"{kind.value} app",
            now_ms=self._clock.now_ms(),
        )
        return await self._change(job)

    async def get_app(self, app_id: str) -> App | None:
        async with self._store.db.read_short() as conn:
            return await self._store.accounts.get_app(conn, app_id)

    async def list_apps(self, account: str | int | None = None) -> list[App]:
        account_id = (await self._read_account(account)).id if account is not None else None
        async with self._store.db.read() as conn:
            return await self._store.accounts.list_apps(conn, account_id)

    async def update_app_push(self, app_id: str, changes: dict[str, str | None]) -> App:
        app = await self.get_app(app_id)
        if app is None:
            raise NotFound(f"no such app: {app_id}")
        push = dict(app.push)
        for key, value in changes.items():
            if value is None:
                continue
            if value == "":
                push.pop(key, None)
            else:
                push[key] = value
        updated = await self._change(
            functools.partial(self._store.accounts.update_app_push, app_id=app_id, push=push)
        )
        assert updated is not None
        return updated

    # ---- API keys --------------------------------------------------------------------
    async def create_key(self, account: str | int, *, allow_ips: list[str] | None = None) -> ApiKey:
        acc = await self._read_account(account)
        try:
            cidrs = validate_cidrs(allow_ips or [])
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None
        job = functools.partial(
            self._store.accounts.create_key,
            key=random_token(8),
            secret=random_token(32),
            account_id=acc.id,
            allow_ips=cidrs,
            now_ms=self._clock.now_ms(),
        )
        return await self._change(job)

    async def get_key(self, key: str) -> ApiKey | None:
        async with self._store.db.read_short() as conn:
            return await self._store.accounts.get_key(conn, key)

    async def list_keys(self, account: str | int | None = None) -> list[ApiKey]:
        account_id = (await self._read_account(account)).id if account is not None else None
        async with self._store.db.read() as conn:
            return await self._store.accounts.list_keys(conn, account_id)

    async def revoke_key(self, key: str) -> None:
        if not await self._change(functools.partial(self._store.accounts.revoke_key, key=key)):
            raise NotFound(f"no such key: {key}")

    # ---- gateway users ---------------------------------------------------------------
    async def create_user(
        self,
        account: str | int,
        *,
        username: str,
        password: str,
        role: GatewayRole | str = GatewayRole.ACCOUNT,
    ) -> GatewayUser:
        acc = await self._read_account(account)
        if not username or ":" in username or len(username) > 64:
            raise InvalidInput("username must be 1..64 characters without ':'")
        if len(password) < 4:
            raise InvalidInput("password must have at least 4 characters")
        async with self._store.db.read() as conn:
            if await self._store.accounts.get_user(conn, username):
                raise InvalidInput(f"user {username!r} exists already")
        job = functools.partial(
            self._store.accounts.create_user,
            username=username,
            password_hash=hash_password(password),
            digest_md5=digest_ha1(username, password, "MD5"),
            digest_sha256=digest_ha1(username, password, "SHA-256"),
            account_id=acc.id,
            now_ms=self._clock.now_ms(),
            role=_role(role),
        )
        try:
            return await self._change(job)
        except IntegrityError:  # created meanwhile by a concurrent request or process
            raise InvalidInput(f"user {username!r} exists already") from None

    async def get_user(self, username: str) -> GatewayUser | None:
        async with self._store.db.read_short() as conn:
            return await self._store.accounts.get_user(conn, username)

    async def list_users(self) -> list[GatewayUser]:
        async with self._store.db.read() as conn:
            return await self._store.accounts.list_users(conn)

    async def set_user_role(self, username: str, role: GatewayRole | str) -> None:
        """Takes effect in each API process within its credential cache lifetime."""
        job = functools.partial(
            self._store.accounts.set_user_role, username=username, role=_role(role)
        )
        if not await self._change(job):
            raise NotFound(f"no such gateway user: {username}")

    # ---- rates -----------------------------------------------------------------------
    async def set_rate(
        self, *, kind: str, prefix: str, price: str, currency: str, bill_period: str = ""
    ) -> Rate:
        if kind not in ("sms", "voice"):
            raise InvalidInput("rate kind must be sms or voice")
        if prefix and not prefix.isdigit():
            raise InvalidInput("rate prefix must be digits")
        if kind == "voice" and bill_period:
            try:
                BillPeriod.parse(bill_period)
            except ValueError as exc:
                raise InvalidInput(str(exc)) from None
        elif bill_period:
            raise InvalidInput("a billing period is for voice rates only")
        rate = Rate(kind, prefix, _amount(price), currency.upper(), bill_period)
        await self._change(functools.partial(self._store.accounts.set_rate, rate=rate))
        return rate

    async def list_rates(self) -> list[Rate]:
        async with self._store.db.read() as conn:
            return await self._store.accounts.list_rates(conn)


def _role(value: GatewayRole | str) -> GatewayRole:
    try:
        return GatewayRole(value)
    except ValueError:
        known = ", ".join(r.value for r in GatewayRole)
        raise InvalidInput(f"unknown role {value!r} (one of {known})") from None


def _amount(text: str) -> int:
    try:
        return parse_amount(text)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None


def _by(who: str) -> str:
    who = who.strip()
    if not who or len(who) > _BY_MAX:
        raise InvalidInput(f"who made a movement must be 1..{_BY_MAX} characters")
    return who


def _check_timezone(name: str) -> None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"unknown time zone: {name!r}") from None
