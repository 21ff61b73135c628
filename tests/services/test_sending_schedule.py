"""SendRequest.not_before_ms and validity_until_ms (added for SMPP, issue 18): a scheduled
message is queued but not leased before its time, and expires at the validity given."""

from __future__ import annotations

from sqlalchemy import select

from simgate.runtime import Runtime
from simgate.services.container import Services
from simgate.services.sending import Recipient, SendRequest
from simgate.store import Store
from simgate.store.tables import messages
from simgate.testing.clock import FakeClock


async def _validity(store: Store, message_id: int) -> int:
    async with store.db.read() as conn:
        row = await conn.execute(
            select(messages.c.validity_until_ms).where(messages.c.id == message_id)
        )
        return int(row.scalar_one())


async def test_scheduled_send_waits_and_validity_follows_the_request(
    runtime: Runtime, services: Services, store: Store, clock: FakeClock
) -> None:
    account = await services.accounts.create_account(name="acme", balance="10")
    now = clock.now_ms()
    hour = 3_600_000

    async def send(**when: int) -> int:
        outcome = await services.sending.send(
            SendRequest(
                account=account,
                dialect="test",
                text="hi",
                recipients=[Recipient("8613800138000")],
                **when,  # type: ignore[arg-type]
            )
        )
        return outcome.accepted[0].message_id

    now_id = await send()
    later_id = await send(not_before_ms=now + hour)
    bounded_id = await send(not_before_ms=now + hour, validity_until_ms=now + 2 * hour)
    default = runtime.settings.worker.validity_seconds * 1000
    assert await _validity(store, now_id) == now + default
    assert await _validity(store, later_id) == now + hour + default  # counted from the schedule
    assert await _validity(store, bounded_id) == now + 2 * hour

    async def lease(at_ms: int) -> set[int]:
        got = await services.messaging.lease(
            lines=["sim"], owner="t", now_ms=at_ms, lease_until_ms=at_ms + 1000, limit=10
        )
        return {m.id for m in got}

    assert await lease(now) == {now_id}
    assert await lease(now + hour) == {later_id, bounded_id}
