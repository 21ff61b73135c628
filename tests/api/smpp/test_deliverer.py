"""The deliverer's back-off: a deliver_sm an ESME keeps refusing waits longer each time."""

from __future__ import annotations

from simgate.api.smpp.deliverer import RETRY_CAP, RETRY_FIRST, Deliverer, retry_delay
from simgate.services.smpp_outbox import SmppOutbox
from simgate.store import Store
from simgate.testing.clock import FakeClock


def test_retry_delay_doubles_up_to_the_cap() -> None:
    delays = [retry_delay(n) for n in range(1, 12)]
    assert delays[:4] == [RETRY_FIRST, 2 * RETRY_FIRST, 4 * RETRY_FIRST, 8 * RETRY_FIRST]
    assert delays[-1] == RETRY_CAP
    assert delays == sorted(delays)
    assert retry_delay(10_000) == RETRY_CAP  # no overflow for a row refused for ever


async def test_each_refusal_of_a_row_pushes_its_next_try_further(
    store: Store, clock: FakeClock
) -> None:
    outbox = SmppOutbox(store=store, clock=clock, id_base="decimal", keep_seconds=60)
    deliverer = Deliverer(account_id=1, outbox=outbox, receivers=list)
    waits = []
    for _ in range(4):
        deliverer.answered(7, ok=False, now=100.0)
        at = deliverer.retry_at(7)
        assert at is not None
        waits.append(at - 100.0)
    assert waits == [5.0, 10.0, 20.0, 40.0]
    deliverer.answered(8, ok=False, now=100.0)  # another row starts from the first pause
    assert deliverer.retry_at(8) == 105.0


async def test_the_back_off_of_a_row_gone_from_the_outbox_is_forgotten(
    store: Store, clock: FakeClock
) -> None:
    outbox = SmppOutbox(store=store, clock=clock, id_base="decimal", keep_seconds=60)
    deliverer = Deliverer(account_id=1, outbox=outbox, receivers=list)
    deliverer.answered(7, ok=False, now=100.0)
    deliverer.answered(9, ok=False, now=100.0)
    deliverer.answered(12, ok=False, now=100.0)
    # A full read (under its limit) without rows 7 and 9: gone (expired, or answered through
    # another process); forgotten once their pause is over, so the table stays bounded.
    deliverer.forget_gone([12], 101.0, complete=True)
    assert deliverer.retry_at(7) is not None  # still in its pause: kept
    deliverer.forget_gone([12], 200.0, complete=True)
    assert (deliverer.retry_at(7), deliverer.retry_at(9)) == (None, None)
    assert deliverer.retry_at(12) is not None
    # A read cut at its limit says nothing of rows past its last id.
    deliverer.answered(20, ok=False, now=100.0)
    deliverer.forget_gone([12], 200.0, complete=False)
    assert deliverer.retry_at(20) is not None
