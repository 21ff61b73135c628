"""Operators' listings (services/listings.py): newest messages and calls, by account."""

from __future__ import annotations

import pytest

from simgate.domain.accounts import AppKind
from simgate.domain.calls import CallOptions
from simgate.domain.messages import State
from simgate.errors import NotFound
from simgate.services.container import Services
from simgate.services.sending import Recipient, SendRequest
from tests.api.itnio.conftest import wav_b64


async def _send(services: Services, account: str, *numbers: str) -> list[int]:
    acc = await services.accounts.get_account(account)
    result = await services.sending.send(
        SendRequest(
            account=acc, dialect="test", text="hi", recipients=[Recipient(n) for n in numbers]
        )
    )
    return [a.message_id for a in result.accepted]


async def test_messages_newest_first_by_account_and_state(services: Services) -> None:
    await services.accounts.create_account(name="acme", balance="5")
    await services.accounts.create_account(name="beta", balance="5")
    acme = await _send(services, "acme", "8613800000001", "8613800000002")
    beta = await _send(services, "beta", "8613800000003")
    listed = await services.listings.messages()
    assert [m.id for m in listed] == sorted(acme + beta, reverse=True)
    only_acme = await services.listings.messages(account="acme", limit=1)
    assert [m.id for m in only_acme] == [max(acme)]
    by_id = await services.listings.messages(account=str(only_acme[0].account_id))
    assert sorted(m.id for m in by_id) == sorted(acme)
    assert {m.state for m in await services.listings.messages(state=State.QUEUED)} == {State.QUEUED}
    assert await services.listings.messages(state=State.DELIVERED) == []
    with pytest.raises(NotFound, match="nobody"):
        await services.listings.messages(account="nobody")


async def test_calls_newest_first_by_account(services: Services) -> None:
    ids: dict[str, list[int]] = {}
    for name, callees in (
        ("acme", ["8613800000001", "8613800000002"]),
        ("beta", ["8613800000003"]),
    ):
        acc = await services.accounts.create_account(name=name, balance="5")
        app = await services.accounts.create_app(acc.id, kind=AppKind.VOICE)
        vf = await services.voice.upload_file(account=acc, file_name="a.wav", file_b64=wav_b64())
        items = await services.voice.send_group(
            account=acc, app=app, callees=callees, file_id=vf.file_id, options=CallOptions()
        )
        ids[name] = [i.voice_id for i in items if i.voice_id is not None]
    listed = await services.listings.calls()
    assert [c.id for c in listed] == sorted(ids["acme"] + ids["beta"], reverse=True)
    only_acme = await services.listings.calls(account="acme", limit=1)
    assert [c.id for c in only_acme] == [max(ids["acme"])]
    with pytest.raises(NotFound):
        await services.listings.calls(account="nobody")
