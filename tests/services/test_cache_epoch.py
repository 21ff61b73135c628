"""The accounts cache epoch (services/cache_epoch.py): it moves at once on a change made in
this process, and within one poll interval on a change made by another process."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from simgate.domain.accounts import AppKind, GatewayRole
from simgate.runtime import Runtime
from simgate.services.accounts import AccountService
from simgate.services.cache_epoch import POLL_MS
from simgate.services.container import Services
from simgate.testing.clock import FakeClock
from tests.conftest import make_settings, opened


@dataclass(frozen=True)
class Tenant:
    key: str
    app_id: str


Change = Callable[[AccountService, Tenant], Awaitable[object]]

CHANGES: dict[str, Change] = {
    "create key": lambda a, t: a.create_key("acme"),
    "revoke key": lambda a, t: a.revoke_key(t.key),
    "lock": lambda a, t: a.set_locked("acme", True),
    "credit": lambda a, t: a.set_credit("acme", "5"),
    "top-up": lambda a, t: a.topup("acme", amount="1"),
    "correction": lambda a, t: a.correct("acme", amount="-1", reason="test"),
    "create app": lambda a, t: a.create_app("acme", kind=AppKind.SMS),
    "app push": lambda a, t: a.update_app_push(t.app_id, {"url": "https://example.com/p"}),
    "create user": lambda a, t: a.create_user("acme", username="bob", password="secret"),
    "user role": lambda a, t: a.set_user_role("ann", GatewayRole.OPERATOR),
    "create account": lambda a, t: a.create_account(name="beta"),
}


async def _tenant(accounts: AccountService) -> Tenant:
    acc = await accounts.create_account(name="acme", balance="5")
    await accounts.create_user(acc.id, username="ann", password="secret")
    key = await accounts.create_key(acc.id)
    app = await accounts.create_app(acc.id, kind=AppKind.SMS)
    return Tenant(key=key.key, app_id=app.app_id)


@pytest.mark.parametrize("change", CHANGES)
async def test_a_change_moves_the_epoch_of_its_own_process_at_once(
    services: Services, change: str
) -> None:
    tenant = await _tenant(services.accounts)
    before = services.accounts.epoch.value
    await CHANGES[change](services.accounts, tenant)
    assert services.accounts.epoch.value != before


async def test_reads_leave_the_epoch_alone(services: Services) -> None:
    tenant = await _tenant(services.accounts)
    epoch = services.accounts.epoch
    await epoch.look_if_due()
    before = epoch.value
    await services.accounts.get_key(tenant.key)
    await services.accounts.get_app(tenant.app_id)
    await services.accounts.get_user("ann")
    await services.accounts.get_account("acme")
    assert epoch.value == before


@pytest.fixture
async def other(backend: str, tmp_path: Path) -> AsyncIterator[Runtime]:
    """A second process on the same database (the CLI, another ``simgate serve``)."""
    async with opened(make_settings(tmp_path / "other", backend)) as rt:
        yield rt


async def test_another_process_s_change_is_seen_within_one_poll(
    services: Services, other: Runtime, clock: FakeClock
) -> None:
    assert other.services is not None
    tenant = await _tenant(services.accounts)
    epoch = services.accounts.epoch
    await epoch.look_if_due()  # the first look reads the shared stamp
    seen = epoch.value
    await other.services.accounts.revoke_key(tenant.key)
    clock.set(clock.now_ms() + POLL_MS - 1)
    await epoch.look_if_due()
    assert epoch.value == seen  # not looked again yet: the staleness bound, not less
    clock.set(clock.now_ms() + 1)
    await epoch.look_if_due()
    assert epoch.value != seen


async def test_no_change_elsewhere_keeps_the_epoch(services: Services, clock: FakeClock) -> None:
    epoch = services.accounts.epoch
    await epoch.look_if_due()
    seen = epoch.value
    for _ in range(3):
        clock.set(clock.now_ms() + POLL_MS)
        await epoch.look_if_due()
    assert epoch.value == seen


async def test_a_database_that_does_not_answer_leaves_the_epoch_as_it_was(
    runtime: Runtime, services: Services, clock: FakeClock
) -> None:
    epoch = services.accounts.epoch
    await epoch.look_if_due()
    seen = epoch.value
    await runtime.store.db.close()
    clock.set(clock.now_ms() + POLL_MS)
    await epoch.look_if_due()  # the failed look is logged, not raised into a request
    assert epoch.value == seen
    await runtime.store.db.open()
