"""What the SMPP server asks of simgate: message ids in a base, several submits in one send."""

from __future__ import annotations

from simgate.services.container import Services
from simgate.services.smpp_gateway import (
    Outgoing,
    Rejected,
    Submitted,
    format_message_id,
    parse_message_id,
)


def test_ids_in_either_base_round_trip() -> None:
    mid = 2601010000000000001
    for base in ("hex", "decimal"):
        assert parse_message_id(format_message_id(mid, base), base) == mid
    assert format_message_id(255, "hex") == "ff"
    assert parse_message_id("zz", "hex") is None
    assert parse_message_id("ff", "decimal") is None
    assert parse_message_id("0", "decimal") is None


async def test_submit_many_answers_in_order_with_bad_numbers_rejected(
    services: Services,
) -> None:
    account = await services.accounts.create_account(name="acme", balance="10")
    gateway = services.smpp_gateway
    assert gateway is not None
    items = [
        Outgoing(sender="A", to="447700900123", text="one"),
        Outgoing(sender="B", to="12", text="bad"),
        Outgoing(sender="C", to="447700900124", text="three"),
    ]
    results = await gateway.submit_many(account=account, items=items, encoding=None, report=True)
    assert [type(r) for r in results] == [Submitted, Rejected, Submitted]
    first, third = results[0], results[2]
    assert isinstance(first, Submitted)
    assert isinstance(third, Submitted)
    record = await gateway.find(account_id=account.id, message_id=third.message_id)
    assert record is not None
    assert (record.sender, record.text) == ("C", "three")
    assert await gateway.find(account_id=account.id + 1, message_id=first.message_id) is None
    assert await gateway.cancel(account_id=account.id, message_id=first.message_id)
    assert not await gateway.cancel(account_id=account.id, message_id=first.message_id)
