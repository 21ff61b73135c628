"""The demo modem bank: its config block loads as a modem line and its modems answer."""

from __future__ import annotations

import tomllib

import serialx

from simgate.settings import ModemLineSettings
from simgate.testing.modem_bank import open_bank, toml_block


async def test_bank_and_its_settings_block() -> None:
    modems, urls = await open_bank(pty=1, tcp=1)
    try:
        doc = tomllib.loads(toml_block(urls))
        cfg = ModemLineSettings.model_validate(doc["lines"]["gsm"])
        assert cfg.ports == urls
        assert doc["routes"] == [{"prefix": "", "lines": ["gsm"]}]
        for url in urls:
            reader, writer = await serialx.open_serial_connection(url, baudrate=115200)
            writer.write(b"ATE0\r")
            assert b"OK" in await reader.readuntil(b"OK\r\n")
            writer.close()
    finally:
        for m in modems:
            await m.close()
