"""services/dinstar.py on a real store: tasks, result queries, queue counts, incoming, USSD."""

from __future__ import annotations

from simgate.domain.messages import State
from simgate.services.container import Services
from simgate.services.dinstar import DinstarService, MessageQuery, PushTarget
from simgate.store import Store
from simgate.testing.clock import FakeClock
from tests.services.support import T0, inbound_row, message_row, write_rows


async def test_task_ids_start_at_1_and_never_repeat_across_processes(
    services: Services, store: Store, clock: FakeClock
) -> None:
    first = [await services.dinstar.new_task_id() for _ in range(3)]
    assert first == [1, 2, 3]
    other_process = DinstarService(
        store=store, clock=clock, messaging=services.messaging, lines=services.line_state
    )
    second = [await other_process.new_task_id() for _ in range(3)]
    assert not set(second) & set(first)
    assert second == sorted(second)


async def test_stop_task_stops_what_is_queued_of_the_callers_task(
    services: Services, store: Store
) -> None:
    a = await services.accounts.create_account(name="a", balance="1")
    b = await services.accounts.create_account(name="b", balance="1")
    await write_rows(
        store,
        message_rows=[
            message_row(at_ms=T0, seq=1, account_id=a.id, task_id=5),
            message_row(at_ms=T0, seq=2, account_id=a.id, task_id=5),
            message_row(at_ms=T0, seq=3, account_id=a.id, task_id=5, state=State.SENT),
            message_row(at_ms=T0, seq=4, account_id=b.id, task_id=5),
            message_row(at_ms=T0, seq=5, account_id=a.id, task_id=5, dialect="openvox"),
        ],
    )
    svc = services.dinstar
    assert await svc.queued(["sim"]) == 4
    assert await svc.stop_task(account_id=a.id, task_id=6) is None
    assert await svc.stop_task(account_id=a.id, task_id=5) == 2
    # The other account's and the other dialect's messages of "task 5" are left alone.
    assert await svc.queued(["sim"], max_age_ms=10_000) == 2  # stopping drops the cached count


async def test_sent_messages_filters_by_user_number_port_and_sending_time(
    services: Services, store: Store
) -> None:
    m1 = message_row(at_ms=T0, seq=1, client_ref="1", recipient="111", port=0)
    m2 = message_row(at_ms=T0 + 60_000, seq=2, client_ref="2", recipient="222", port=1)
    m3 = message_row(at_ms=T0 + 120_000, seq=3, client_ref="1", recipient="111", port=1)
    await write_rows(
        store,
        message_rows=[
            m1,
            m2,
            m3,
            message_row(at_ms=T0 + 30_000, seq=4, dialect="openvox"),
            message_row(at_ms=T0 + 30_000, seq=5, account_id=2),
        ],
    )
    svc = services.dinstar
    q = MessageQuery(account_id=1)

    async def ids(query: MessageQuery, users: list[str] | None = None) -> list[int]:
        return [m.id for m in await svc.sent_messages(query, user_refs=users)]

    assert await ids(q) == [m3["id"], m2["id"], m1["id"]]  # newest first
    assert await ids(q, ["1"]) == [m3["id"], m1["id"]]
    assert await ids(MessageQuery(account_id=1, numbers=("222",))) == [m2["id"]]
    assert await ids(MessageQuery(account_id=1, ports=(("sim", 1),))) == [m3["id"], m2["id"]]
    assert await ids(MessageQuery(account_id=1, after_ms=T0 + 60_000)) == [m3["id"], m2["id"]]
    assert await ids(MessageQuery(account_id=1, before_ms=T0 + 60_000)) == [m2["id"], m1["id"]]
    window = MessageQuery(account_id=1, after_ms=T0 + 1_000, before_ms=T0 + 119_000)
    assert await ids(window) == [m2["id"]]
    assert await ids(MessageQuery(account_id=1, limit=1)) == [m3["id"]]


async def test_reported_messages_need_every_part_and_filter_by_report_time(
    services: Services, store: Store
) -> None:
    r1 = message_row(
        at_ms=T0,
        seq=1,
        state=State.DELIVERED,
        parts_reported=1,
        sent_ms=T0,
        delivered_ms=T0 + 10_000,
    )
    r2 = message_row(
        at_ms=T0 + 60_000,
        seq=2,
        state=State.FAILED,
        parts=2,
        parts_reported=2,
        sent_ms=T0 + 60_000,
        failed_ms=T0 + 200_000,
    )
    await write_rows(
        store,
        message_rows=[
            r1,
            r2,
            message_row(  # one of two parts reported: not a delivery status yet
                at_ms=T0 + 30_000,
                seq=3,
                state=State.DELIVERED,
                parts=2,
                parts_reported=1,
                delivered_ms=T0 + 40_000,
            ),
            message_row(at_ms=T0 + 40_000, seq=4, state=State.SENT, sent_ms=T0 + 40_000),
        ],
    )
    svc = services.dinstar

    async def ids(query: MessageQuery) -> list[int]:
        return [m.id for m in await svc.reported_messages(query)]

    assert await ids(MessageQuery(account_id=1)) == [r2["id"], r1["id"]]
    # The bounds are the report's arrival: r2 was sent before T0+100s but reported after.
    assert await ids(MessageQuery(account_id=1, after_ms=T0 + 100_000)) == [r2["id"]]
    assert await ids(MessageQuery(account_id=1, before_ms=T0 + 100_000)) == [r1["id"]]


async def test_queue_counts_may_be_reused_for_a_while(
    services: Services, store: Store, clock: FakeClock
) -> None:
    await write_rows(
        store,
        message_rows=[
            message_row(at_ms=T0, seq=1),
            message_row(at_ms=T0, seq=2),
            message_row(at_ms=T0, seq=3, line="other"),
            message_row(at_ms=T0, seq=4, state=State.SENT),
        ],
    )
    svc = services.dinstar
    assert await svc.queued(["sim"], max_age_ms=500) == 2
    await write_rows(
        store, message_rows=[message_row(at_ms=T0, seq=5), message_row(at_ms=T0, seq=6)]
    )
    # Within max_age: the cached count plus what this process says it added.
    assert await svc.queued(["sim"], max_age_ms=500, added=1) == 3
    assert await svc.queued(["sim"]) == 4  # no max_age: always counted
    await clock.advance(0.6)
    assert await svc.queued(["sim"], max_age_ms=500) == 4
    assert await svc.queued(["sim", "other"]) == 5


async def test_incoming_numbers_rows_in_id_order_and_marks_read(
    services: Services, store: Store
) -> None:
    i1 = inbound_row(at_ms=T0, seq=1, port=0)
    i2 = inbound_row(at_ms=T0 + 1_000, seq=2, port=1)
    other = inbound_row(at_ms=T0 + 1_500, seq=3, account_id=2)
    i3 = inbound_row(at_ms=T0 + 2_000, seq=4, port=0, read=True)
    await write_rows(store, inbound_rows=[i3, other, i2, i1])  # stored out of order
    svc = services.dinstar

    async def page(
        *,
        after: int = 0,
        read: bool | None = None,
        mark: bool = False,
        ports: list[tuple[str, int]] | None = None,
        limit: int = 100,
    ) -> tuple[list[tuple[int, int]], int, int]:
        got = await svc.incoming(
            account_id=1, after_seq=after, read=read, mark_read=mark, ports=ports, limit=limit
        )
        return [(n.seq, n.record.id) for n in got.sms], got.read, got.unread

    # incoming_sms_id: 1, 2, ... in id order over every account (spec §2.5).
    everything = [(1, i1["id"]), (2, i2["id"]), (4, i3["id"])]
    assert await page() == (everything, 1, 2)
    assert await page(after=2) == ([(4, i3["id"])], 1, 2)
    assert await page(ports=[("sim", 1)]) == ([(2, i2["id"])], 1, 2)
    assert await page(limit=1) == ([(1, i1["id"])], 1, 2)
    assert await page(read=True) == ([(4, i3["id"])], 1, 2)
    # Reading the unread marks them read; the counts are those after marking.
    assert await page(read=False, mark=True) == ([(1, i1["id"]), (2, i2["id"])], 3, 0)
    assert await page(read=False) == ([], 3, 0)


async def test_ussd_replies_keep_the_latest_per_port(services: Services) -> None:
    svc = services.dinstar
    await svc.record_ussd(line="sim", port=0, text="Balance 5", announce=True)
    await svc.record_ussd(line="sim", port=0, text="Balance 4", announce=True)
    await svc.record_ussd(line="sim", port=1, text=" ", announce=False)
    assert await svc.ussd_replies([("sim", 0), ("sim", 1), ("sim", 2)]) == {
        ("sim", 0): "Balance 4",
        ("sim", 1): " ",
    }
    assert await svc.ussd_replies([]) == {}


async def test_push_target_round_trip(services: Services) -> None:
    svc = services.dinstar
    assert await svc.push_target() is None
    await svc.set_push_target(url="https://hooks.example/gw", types=["sms", "ussd"])
    assert await svc.push_target() == PushTarget("https://hooks.example/gw", ("sms", "ussd"))
    await svc.set_push_target(url="", types=[])  # off, but stored: overrides the settings
    assert await svc.push_target() == PushTarget("", ())


async def test_nonce_secret_is_made_once_and_shared(
    services: Services, store: Store, clock: FakeClock
) -> None:
    secret = await services.dinstar.nonce_secret()
    assert len(secret) == 32
    assert await services.dinstar.nonce_secret() == secret
    other_process = DinstarService(
        store=store, clock=clock, messaging=services.messaging, lines=services.line_state
    )
    assert await other_process.nonce_secret() == secret


def test_push_target_from_a_partial_document() -> None:
    assert PushTarget.from_doc({}) == PushTarget("", ())
    assert PushTarget.from_doc({"url": "http://x", "types": ("sms",)}) == PushTarget(
        "http://x", ("sms",)
    )
