"""store/port_state.py on both backends: a port's row is written, overwritten, read back."""

from __future__ import annotations

import dataclasses

from simgate.store import Store, port_state

ROW = port_state.StoredPort(
    line="gsm",
    port=1,
    reg="REGISTER_OK",
    signal=23,
    operator="FAKENET",
    imsi="460001234567890",
    iccid="89860012345678901234",
    imei="356938035643809",
    number="+15550001111",
    locked=False,
    blocked_until_ms=0,
    updated_ms=1_000,
)


async def test_saved_then_overwritten_then_loaded_per_line(store: Store) -> None:
    other = dataclasses.replace(ROW, line="bank", port=0)
    await store.db.write(lambda c: port_state.save(c, ROW))
    await store.db.write(lambda c: port_state.save(c, other))
    later = dataclasses.replace(ROW, reg="PIN_REQUIRE", signal=0, locked=True, updated_ms=2_000)
    await store.db.write(lambda c: port_state.save(c, later))
    async with store.db.read() as conn:
        assert await port_state.load(conn, line="gsm") == [later]
        assert await port_state.load(conn) == [other, later]  # by line, then port
