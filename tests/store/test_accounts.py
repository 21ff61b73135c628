"""Accounts, apps, keys (secrets encrypted at rest), users, rates and docs on both backends."""

from __future__ import annotations

import asyncio
import functools
import hashlib
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import select

from simgate.domain.accounts import AppKind, GatewayRole
from simgate.domain.billing import Rate
from simgate.errors import ConfigError, InvalidInput, NotFound
from simgate.secretbox import SecretBox
from simgate.services.accounts import DIGEST_REALM, verify_password
from simgate.services.bootstrap import ensure_demo
from simgate.services.container import Services
from simgate.store import Database, Store
from simgate.store.tables import api_keys, gateway_users

MASTER = "test-master-key-0123456789"  # what make_settings configures


async def test_account_lifecycle(services: Services) -> None:
    acc = services.accounts
    a = await acc.create_account(name="acme", balance="12.5", credit="2", timezone="Asia/Shanghai")
    assert (a.balance_micros, a.gift_micros, a.credit_micros) == (12_500_000, 0, 2_000_000)
    assert a.currency == "USD"
    assert not a.locked
    b = await acc.create_account(name="beta", currency="eur")
    assert b.currency == "EUR"
    assert [x.name for x in await acc.list_accounts()] == ["acme", "beta"]
    assert (await acc.get_account("acme")).id == a.id
    assert (await acc.get_account(str(b.id))).name == "beta"

    t = await acc.topup("acme", amount="1.5")
    assert t.balance_micros == 14_000_000
    g = await acc.topup(a.id, amount="3", gift=True)
    assert (g.balance_micros, g.gift_micros) == (14_000_000, 3_000_000)
    await acc.set_locked("acme", True)
    assert (await acc.get_account(a.id)).locked
    await acc.set_locked("acme", False)
    assert not (await acc.get_account(a.id)).locked
    await acc.set_credit("acme", "7")
    assert (await acc.get_account(a.id)).credit_micros == 7_000_000


BAD_ACCOUNTS: list[tuple[dict[str, str], str]] = [
    ({"name": ""}, "name"),
    ({"name": "x" * 65}, "name"),
    ({"name": "123"}, "digits"),
    ({"name": "ok", "currency": "US"}, "currency"),
    ({"name": "ok", "timezone": "Mars/Base"}, "time zone"),
    ({"name": "ok", "balance": "lots"}, "amount"),
    ({"name": "ok", "credit": "NaN"}, "amount"),
]


async def test_account_bad_input(services: Services) -> None:
    for kwargs, fragment in BAD_ACCOUNTS:
        with pytest.raises(InvalidInput, match=fragment):
            await services.accounts.create_account(**kwargs)
    assert await services.accounts.list_accounts() == []


async def test_duplicate_and_missing_accounts(services: Services) -> None:
    await services.accounts.create_account(name="acme")
    with pytest.raises(InvalidInput, match="exists"):
        await services.accounts.create_account(name="acme")
    with pytest.raises(NotFound):
        await services.accounts.get_account("nobody")
    with pytest.raises(NotFound):
        await services.accounts.topup(999, amount="1")


async def test_apps_and_push_settings(services: Services) -> None:
    acc = services.accounts
    a = await acc.create_account(name="acme")
    b = await acc.create_account(name="beta")
    sms = await acc.create_app("acme", kind=AppKind.SMS)
    voice = await acc.create_app("acme", kind=AppKind.VOICE, name="calls")
    other = await acc.create_app("beta", kind=AppKind.SMS)
    assert len(sms.app_id) == 8
    assert sms.app_id.isalnum()
    assert (sms.kind, voice.kind, voice.name) == (AppKind.SMS, AppKind.VOICE, "calls")
    assert [x.app_id for x in await acc.list_apps("acme")] == [sms.app_id, voice.app_id]
    assert [x.account_id for x in await acc.list_apps()] == [a.id, a.id, b.id]
    assert other.account_id == b.id

    u = await acc.update_app_push(sms.app_id, {"report_url": "http://x/r", "mo_url": None})
    assert u.push == {"report_url": "http://x/r"}
    u = await acc.update_app_push(sms.app_id, {"mo_url": "http://x/m"})
    assert u.push == {"report_url": "http://x/r", "mo_url": "http://x/m"}
    u = await acc.update_app_push(sms.app_id, {"report_url": ""})
    assert u.push == {"mo_url": "http://x/m"}
    fetched = await acc.get_app(sms.app_id)
    assert fetched is not None
    assert fetched.push == {"mo_url": "http://x/m"}
    assert await acc.get_app("nope") is None
    with pytest.raises(NotFound):
        await acc.update_app_push("nope", {"mo_url": "x"})


async def test_key_secret_is_encrypted_at_rest(services: Services, store: Store) -> None:
    await services.accounts.create_account(name="acme")
    key = await services.accounts.create_key("acme", allow_ips=["10.0.0.0/8", "192.168.1.5"])
    assert len(key.key) == 8
    assert len(key.secret) == 32
    assert key.allow_ips == ("10.0.0.0/8", "192.168.1.5/32")
    async with store.db.read() as conn:
        raw = (
            await conn.execute(select(api_keys.c.secret_enc).where(api_keys.c.key == key.key))
        ).scalar_one()
    assert raw != key.secret
    assert key.secret not in raw
    assert SecretBox(MASTER).open(raw) == key.secret
    with pytest.raises(ConfigError, match="master_key"):
        SecretBox("another-master-key-000").open(raw)

    # A store opened with the wrong master key cannot read the secret back: a clear error.
    wrong = Store(store.db, SecretBox("another-master-key-000"))
    async with store.db.read() as conn:
        with pytest.raises(ConfigError):
            await wrong.accounts.get_key(conn, key.key)

    fetched = await services.accounts.get_key(key.key)
    assert fetched == key
    assert fetched.allows("10.1.2.3")
    assert not fetched.allows("11.0.0.1")


async def test_keys_list_and_revoke(services: Services) -> None:
    await services.accounts.create_account(name="acme")
    await services.accounts.create_account(name="beta")
    k1 = await services.accounts.create_key("acme")
    k2 = await services.accounts.create_key("beta")
    assert k1.key != k2.key
    assert k1.secret != k2.secret
    assert [k.key for k in await services.accounts.list_keys("acme")] == [k1.key]
    assert len(await services.accounts.list_keys()) == 2
    await services.accounts.revoke_key(k1.key)
    revoked = await services.accounts.get_key(k1.key)
    assert revoked is not None
    assert revoked.revoked
    with pytest.raises(NotFound):
        await services.accounts.revoke_key("nokey")
    with pytest.raises(InvalidInput, match="CIDR"):
        await services.accounts.create_key("acme", allow_ips=["not-an-ip"])


async def test_users_scrypt_and_digest(services: Services, store: Store) -> None:
    await services.accounts.create_account(name="acme")
    user = await services.accounts.create_user("acme", username="gw", password="s3cret!")
    async with store.db.read() as conn:
        row = (
            await conn.execute(select(gateway_users).where(gateway_users.c.username == "gw"))
        ).one()
    assert "s3cret!" not in row.password_hash
    assert row.password_hash.startswith("scrypt$")
    assert verify_password("s3cret!", row.password_hash)
    assert not verify_password("s3cret?", row.password_hash)
    assert not verify_password("s3cret!", "md5$00$00")
    assert not verify_password("s3cret!", "garbage")
    ha1 = f"gw:{DIGEST_REALM}:s3cret!".encode()
    assert user.digest_md5 == hashlib.md5(ha1).hexdigest()
    assert user.digest_sha256 == hashlib.sha256(ha1).hexdigest()
    assert await services.accounts.get_user("gw") == user
    assert await services.accounts.get_user("nobody") is None
    assert [u.username for u in await services.accounts.list_users()] == ["gw"]
    # Two users with the same password get different salts.
    other = await services.accounts.create_user("acme", username="gw2", password="s3cret!")
    assert other.password_hash != user.password_hash
    # Roles (issue 14 item 1): account users unless made operators.
    assert user.role is GatewayRole.ACCOUNT
    await services.accounts.set_user_role("gw", "operator")
    assert (await services.accounts.get_user("gw")) == replace(user, role=GatewayRole.OPERATOR)
    with pytest.raises(InvalidInput, match="unknown role"):
        await services.accounts.set_user_role("gw", "root")
    with pytest.raises(NotFound):
        await services.accounts.set_user_role("nobody", "operator")


async def test_user_bad_input(services: Services) -> None:
    await services.accounts.create_account(name="acme")
    bad = [("", "pass", "username"), ("a:b", "pass", "username"), ("u" * 65, "pass", "username"),
           ("ok", "abc", "password")]  # fmt: skip
    for username, password, fragment in bad:
        with pytest.raises(InvalidInput, match=fragment):
            await services.accounts.create_user("acme", username=username, password=password)
    with pytest.raises(NotFound):
        await services.accounts.create_user("nobody", username="x", password="pass")
    assert await services.accounts.list_users() == []


async def test_duplicate_user(services: Services) -> None:
    await services.accounts.create_account(name="acme")
    await services.accounts.create_user("acme", username="gw", password="pass")
    with pytest.raises(InvalidInput, match="exists"):
        await services.accounts.create_user("acme", username="gw", password="pass2")


async def test_rates_upsert(services: Services) -> None:
    acc = services.accounts
    await acc.set_rate(kind="sms", prefix="86", price="0.02", currency="usd")
    await acc.set_rate(kind="sms", prefix="", price="0.05", currency="USD")
    await acc.set_rate(kind="voice", prefix="86", price="0.1", currency="USD", bill_period="60+60")
    await acc.set_rate(kind="sms", prefix="86", price="0.03", currency="USD")  # replaces
    assert await acc.list_rates() == [
        Rate("sms", "", 50_000, "USD"),
        Rate("sms", "86", 30_000, "USD"),
        Rate("voice", "86", 100_000, "USD", "60+60"),
    ]
    with pytest.raises(InvalidInput):
        await acc.set_rate(kind="fax", prefix="1", price="1", currency="USD")
    with pytest.raises(InvalidInput):
        await acc.set_rate(kind="sms", prefix="+1", price="1", currency="USD")
    with pytest.raises(InvalidInput):
        await acc.set_rate(kind="sms", prefix="1", price="cheap", currency="USD")
    with pytest.raises(InvalidInput, match="billing period"):
        await acc.set_rate(kind="voice", prefix="1", price="1", currency="USD", bill_period="20")
    with pytest.raises(InvalidInput, match="voice rates only"):
        await acc.set_rate(kind="sms", prefix="1", price="1", currency="USD", bill_period="6+6")


async def test_docs_and_counters(store: Store) -> None:
    r = store.accounts
    async with store.db.read() as conn:
        assert await r.get_doc(conn, "cfg") is None
    await store.db.write(functools.partial(r.put_doc, key="cfg", value={"a": 1}))
    await store.db.write(functools.partial(r.put_doc, key="cfg", value={"b": [1, 2]}))
    async with store.db.read() as conn:
        assert await r.get_doc(conn, "cfg") == {"b": [1, 2]}
    first = await store.db.write(functools.partial(r.reserve_block, name="x", size=10))
    second = await store.db.write(functools.partial(r.reserve_block, name="x", size=5))
    third = await store.db.write(functools.partial(r.reserve_block, name="x", size=1))
    assert (first, second, third) == (0, 10, 15)


async def test_concurrent_creation_of_one_name(services: Services) -> None:
    """Two requests (or two processes) creating the same account: one wins, one is told."""
    results = await asyncio.gather(
        *(services.accounts.create_account(name="same") for _ in range(4)),
        return_exceptions=True,
    )
    created = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(created) == 1
    assert all(isinstance(r, InvalidInput) for r in refused), refused
    assert [a.name for a in await services.accounts.list_accounts()] == ["same"]


async def test_demo_is_created_once_by_concurrent_starts(
    services: Services, store: Store, tmp_path: Path
) -> None:
    made = await asyncio.gather(
        *(ensure_demo(store, services.accounts, tmp_path, "5") for _ in range(3)),
    )
    assert sum(1 for m in made if m is not None) == 1
    assert [a.name for a in await services.accounts.list_accounts()] == ["demo"]
    (user,) = await services.accounts.list_users()
    assert user.role is GatewayRole.OPERATOR  # the demo's one account is the operator's own


async def test_upsert_doc_when_two_processes_write_an_absent_key_at_once(
    store: Store, backend: str
) -> None:
    """The cache stamp (services/cache_epoch.py) is written by whichever process changes an
    account: a second first write of the key, racing the first, must not fail on the
    primary key (as an UPDATE-then-INSERT does). Only PostgreSQL lets two writers overlap."""
    if not backend.startswith("postgresql"):
        pytest.skip("SQLite runs one writer at a time: the two writes cannot overlap")
    repo = store.accounts
    other = Database(backend)
    await other.open()
    try:
        async with store.db.engine.begin() as first, other.engine.begin() as second:
            await repo.upsert_doc(first, "s", {"n": 1})
            racing = asyncio.create_task(repo.upsert_doc(second, "s", {"n": 2}))
            await asyncio.sleep(0.2)  # the second INSERT now waits on the first's row lock
            assert not racing.done()
            await first.commit()
            await racing
    finally:
        await other.close()
    async with store.db.read() as conn:
        assert await repo.get_doc(conn, "s") == {"n": 2}
