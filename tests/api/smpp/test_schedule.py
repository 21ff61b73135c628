"""schedule_delivery_time and validity_period of a submit_sm are applied (SMPP v3.4 §7.1.1):
the message waits in the queue until its schedule and expires at its validity."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from simgate.codecs.smpp import CommandStatus, SubmitSm
from simgate.domain.messages import State
from simgate.store.tables import messages
from tests.support.smpp_server import Esme, running


async def test_a_scheduled_message_waits_and_keeps_its_own_validity(
    tmp_path: Path, sqlite_url: str
) -> None:
    async with running(tmp_path, sqlite_url, worker=False) as rig:
        esme = await Esme.connect(rig.port)
        await esme.bind("trx")
        services = rig.runtime.services
        assert services is not None
        now = services.clock.now_ms()
        later = await esme.request(
            SubmitSm(
                destination_addr="447700900123",
                short_message=b"later",
                schedule_delivery_time="000000010000000R",  # in an hour
                validity_period="000000030000000R",  # three hours from now
            )
        )
        plain = await esme.request(SubmitSm(destination_addr="447700900123", short_message=b"x"))
        expired = await esme.request(
            SubmitSm(
                destination_addr="447700900123",
                short_message=b"x",
                validity_period="200101000000000+",
            )
        )
        await esme.close()
        assert later.command_status == CommandStatus.ESME_ROK
        assert expired.command_status == CommandStatus.ESME_RINVEXPIRY
        store = rig.runtime._store
        assert store is not None
        ids = [int(later.message_id), int(plain.message_id)]  # type: ignore[attr-defined]
        async with store.db.read() as conn:
            rows = await conn.execute(
                select(messages.c.id, messages.c.state, messages.c.validity_until_ms).where(
                    messages.c.id.in_(ids)
                )
            )
            got = {int(r[0]): (State(r[1]), int(r[2])) for r in rows}
        scheduled_id, default_id = ids
        assert got[scheduled_id][0] is State.QUEUED
        assert abs(got[scheduled_id][1] - (now + 3 * 3_600_000)) < 60_000
        worker_validity = rig.runtime.settings.worker.validity_seconds * 1000
        assert abs(got[default_id][1] - (now + worker_validity)) < 60_000
        # Due in an hour: a lease now does not take it, the plain one it does.
        leased = await services.messaging.lease(
            lines=["sim"],
            owner="test",
            now_ms=now + 60_000,
            lease_until_ms=now + 120_000,
            limit=10,
        )
        assert [m.id for m in leased] == [default_id]
        later_lease = await services.messaging.lease(
            lines=["sim"],
            owner="test",
            now_ms=now + 3_601_000,
            lease_until_ms=now + 3_700_000,
            limit=10,
        )
        assert [m.id for m in later_lease] == [scheduled_id]
