"""Reading an account by its id or name (services/accounts.py ``get_account``), on both backends.

By id it is one plain statement on the driver (store/accounts.py ``ACCOUNT_BY_ID_SQL``); a
number past what ``accounts.id`` holds (INTEGER: int4 on PostgreSQL, whose driver refuses a
larger parameter) is no account's id, never a driver error.
"""

from __future__ import annotations

import pytest

from simgate.errors import NotFound
from simgate.services.container import Services

pytestmark = pytest.mark.db


async def test_by_id_name_and_digits_read_the_committed_account(services: Services) -> None:
    made = await services.accounts.create_account(
        name="acme", balance="7.5", credit="2", timezone="Asia/Shanghai"
    )
    await services.accounts.set_locked(made.id, True)
    by_id = await services.accounts.get_account(made.id)
    assert by_id == await services.accounts.get_account(str(made.id))
    assert by_id == await services.accounts.get_account("acme")
    assert (by_id.name, by_id.timezone, by_id.locked) == ("acme", "Asia/Shanghai", True)
    assert (by_id.balance_micros, by_id.credit_micros) == (7_500_000, 2_000_000)


@pytest.mark.parametrize("ref", [0, 2**31, 2**63, "2147483648", "9" * 30])
async def test_an_id_no_account_can_have_is_not_found(services: Services, ref: int | str) -> None:
    await services.accounts.create_account(name="acme")
    with pytest.raises(NotFound, match="no such account"):
        await services.accounts.get_account(ref)
