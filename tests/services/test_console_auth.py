"""Console users and sessions (services/console_auth.py, store/console_users.py)."""

from __future__ import annotations

import pytest

from simgate.errors import InvalidInput, NotFound
from simgate.services.console_auth import SESSION_SECONDS, ConsoleRole
from simgate.services.container import Services
from simgate.testing.clock import FakeClock


async def test_users_log_in_with_their_password_only(services: Services) -> None:
    auth = services.console_auth
    user, password = await auth.create_user(username="ops")
    assert (user.role, user.account_id, user.timezone) == (ConsoleRole.ADMIN, None, "UTC")
    assert len(password) == 16
    assert await auth.authenticate("ops", password) == user
    assert await auth.authenticate("ops", password + "x") is None
    assert await auth.authenticate("nobody", password) is None
    assert [u.username for u in await auth.list_users()] == ["ops"]


async def test_account_users_and_refusals(services: Services) -> None:
    auth = services.console_auth
    acme = await services.accounts.create_account(name="acme")
    user, _ = await auth.create_user(
        username="v", password="12345678", role="viewer", account="acme", timezone="Asia/Tokyo"
    )
    assert (user.account_id, user.can_act, user.timezone) == (acme.id, False, "Asia/Tokyo")
    with pytest.raises(InvalidInput, match="exists already"):
        await auth.create_user(username="v", password="12345678")
    with pytest.raises(InvalidInput, match="unknown role"):
        await auth.create_user(username="w", role="root")
    with pytest.raises(InvalidInput, match="at least 8"):
        await auth.create_user(username="w", password="short")
    with pytest.raises(NotFound):
        await auth.create_user(username="w", account="nobody")
    with pytest.raises(NotFound):
        await auth.delete_user("w")


async def test_sessions_end_at_logout_expiry_and_deletion(
    services: Services, clock: FakeClock
) -> None:
    auth = services.console_auth
    user, password = await auth.create_user(username="ops")
    token, session = await auth.open_session(user)
    assert await auth.session(token) == session
    assert await auth.session(token + "x") is None
    assert await auth.session("") is None
    await auth.close_session(token)
    assert await auth.session(token) is None

    token, _ = await auth.open_session(user)
    await clock.advance(SESSION_SECONDS + 1)
    assert await auth.session(token) is None

    token, _ = await auth.open_session(user)
    await auth.delete_user("ops")
    assert await auth.session(token) is None
    assert await auth.authenticate("ops", password) is None
