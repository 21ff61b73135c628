"""SMPP accounts: creation rules and the bind check (password, address, lock)."""

from __future__ import annotations

import pytest

from simgate.errors import AlreadyExists, InvalidInput, NotFound
from simgate.services.container import Services
from simgate.services.smpp_users import BindGrant, BindRefusal, allowed


def test_allowed_addresses() -> None:
    assert allowed((), "203.0.113.9")
    assert allowed(("10.0.0.0/8",), "10.1.2.3")
    assert allowed(("10.0.0.0/8",), "::ffff:10.1.2.3")
    assert not allowed(("10.0.0.0/8",), "11.0.0.1")
    assert not allowed(("10.0.0.0/8",), "not an address")


async def test_create_and_check_binds(services: Services) -> None:
    users = services.smpp_users
    assert users is not None
    await services.accounts.create_account(name="acme")
    user, password = await users.create(account="acme", system_id="esme", allow=["127.0.0.1"])
    assert len(password) == 8
    assert user.password_hash != password
    with pytest.raises(AlreadyExists):
        await users.create(account="acme", system_id="esme", password="x")
    with pytest.raises(InvalidInput):
        await users.create(account="acme", system_id="x" * 16, password="x")
    with pytest.raises(InvalidInput):
        await users.create(account="acme", system_id="e2", password="123456789")
    with pytest.raises(NotFound):
        await users.create(account="nobody", system_id="e3", password="x")
    grant = await users.check_bind(system_id="esme", password=password, address="127.0.0.1")
    assert isinstance(grant, BindGrant)
    assert grant.account.name == "acme"
    assert (
        await users.check_bind(system_id="esme", password="wrong", address="127.0.0.1")
        is BindRefusal.BAD_PASSWORD
    )
    assert (
        await users.check_bind(system_id="esme", password=password, address="10.0.0.1")
        is BindRefusal.ADDRESS_NOT_ALLOWED
    )
    assert (
        await users.check_bind(system_id="nobody", password="x", address="127.0.0.1")
        is BindRefusal.UNKNOWN_SYSTEM_ID
    )
    await services.accounts.set_locked("acme", True)
    assert (
        await users.check_bind(system_id="esme", password=password, address="127.0.0.1")
        is BindRefusal.ACCOUNT_LOCKED
    )


async def test_live_binds_are_listed(services: Services) -> None:
    users = services.smpp_users
    assert users is not None
    await services.accounts.create_account(name="acme")
    await users.create(account="acme", system_id="esme", password="pw")
    row = await users.bound(node="n1", system_id="esme", bind_type="trx", peer="127.0.0.1")
    await users.bound(node="n2", system_id="esme", bind_type="rx", peer="127.0.0.1")
    [listing] = await users.listing()
    assert listing.live_binds == 2
    assert listing.account_name == "acme"
    await users.unbound(row)
    await users.forget_node("n2")
    assert (await users.listing())[0].live_binds == 0
