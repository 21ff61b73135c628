"""Accounts, apps, API keys, gateway users and rates: the operator's use cases."""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
import secrets
import string
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.exc import IntegrityError

from simgate.clock import Clock
from simgate.domain.accounts import Account, ApiKey, App, AppKind, GatewayUser, validate_cidrs
from simgate.domain.billing import BillPeriod, Rate
from simgate.domain.money import parse_amount
from simgate.errors import InvalidInput, NotFound
from simgate.store import Store

# Digest auth (RFC 7616) needs HA1 = H(username:realm:password); we keep HA1, not the password.
DIGEST_REALM = "simgate"
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


class AccountService:
    def __init__(self, *, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    async def _read_account(self, ref: str | int) -> Account:
        async with self._store.db.read() as conn:
            if isinstance(ref, int) or str(ref).isdigit():
                account = await self._store.accounts.get_account(conn, int(ref))
            else:
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
    ) -> Account:
        if not name or len(name) > 64:
            raise InvalidInput("account name must be 1..64 characters")
        if name.isdigit():  # "simgate accounts topup 12" means the account with id 12
            raise InvalidInput("account name must not be all digits (those are account ids)")
        if len(currency) != 3 or not currency.isalpha():
            raise InvalidInput(f"currency must be a 3-letter code, not {currency!r}")
        _check_timezone(timezone)
        job = functools.partial(
            self._store.accounts.create_account,
            name=name,
            currency=currency.upper(),
            timezone=timezone,
            balance_micros=_amount(balance),
            credit_micros=_amount(credit),
            now_ms=self._clock.now_ms(),
        )
        async with self._store.db.read() as conn:
            if await self._store.accounts.find_account(conn, name):
                raise InvalidInput(f"account {name!r} exists already")
        try:
            return await self._store.db.write(job)
        except IntegrityError:  # created meanwhile by a concurrent request or process
            raise InvalidInput(f"account {name!r} exists already") from None

    async def topup(self, ref: str | int, *, amount: str, gift: bool = False) -> Account:
        account = await self._read_account(ref)
        micros = _amount(amount)
        job = functools.partial(
            self._store.accounts.topup,
            account_id=account.id,
            balance=0 if gift else micros,
            gift=micros if gift else 0,
        )
        updated = await self._store.db.write(job)
        if updated is None:
            raise NotFound(f"no such account: {ref}")
        return updated

    async def set_locked(self, ref: str | int, locked: bool) -> None:
        account = await self._read_account(ref)
        await self._store.db.write(
            functools.partial(self._store.accounts.set_locked, account_id=account.id, locked=locked)
        )

    async def set_credit(self, ref: str | int, amount: str) -> None:
        account = await self._read_account(ref)
        await self._store.db.write(
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
        return await self._store.db.write(job)

    async def get_app(self, app_id: str) -> App | None:
        async with self._store.db.read() as conn:
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
        updated = await self._store.db.write(
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
        return await self._store.db.write(job)

    async def get_key(self, key: str) -> ApiKey | None:
        async with self._store.db.read() as conn:
            return await self._store.accounts.get_key(conn, key)

    async def list_keys(self, account: str | int | None = None) -> list[ApiKey]:
        account_id = (await self._read_account(account)).id if account is not None else None
        async with self._store.db.read() as conn:
            return await self._store.accounts.list_keys(conn, account_id)

    async def revoke_key(self, key: str) -> None:
        if not await self._store.db.write(
            functools.partial(self._store.accounts.revoke_key, key=key)
        ):
            raise NotFound(f"no such key: {key}")

    # ---- gateway users ---------------------------------------------------------------
    async def create_user(self, account: str | int, *, username: str, password: str) -> GatewayUser:
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
        )
        try:
            return await self._store.db.write(job)
        except IntegrityError:  # created meanwhile by a concurrent request or process
            raise InvalidInput(f"user {username!r} exists already") from None

    async def get_user(self, username: str) -> GatewayUser | None:
        async with self._store.db.read() as conn:
            return await self._store.accounts.get_user(conn, username)

    async def list_users(self) -> list[GatewayUser]:
        async with self._store.db.read() as conn:
            return await self._store.accounts.list_users(conn)

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
        await self._store.db.write(functools.partial(self._store.accounts.set_rate, rate=rate))
        return rate

    async def list_rates(self) -> list[Rate]:
        async with self._store.db.read() as conn:
            return await self._store.accounts.list_rates(conn)


def _amount(text: str) -> int:
    try:
        return parse_amount(text)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None


def _check_timezone(name: str) -> None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"unknown time zone: {name!r}") from None
