"""smpplib (an independent SMPP client, test dependency) against the SMPP server: bind,
a long message split by smpplib's own UDH helper, and the delivery receipts."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import smpplib.client
import smpplib.consts
import smpplib.gsm

from tests.support.smpp_server import PASSWORD, SYSTEM_ID, running


def _esme_session(port: int, text: str) -> tuple[list[str], list[str]]:
    """Send ``text`` (split by smpplib) and wait for one receipt per accepted id."""
    client = smpplib.client.Client("127.0.0.1", port, timeout=10, allow_unknown_opt_params=True)
    sent: list[str] = []
    receipts: list[str] = []
    client.set_message_sent_handler(lambda pdu: sent.append(pdu.message_id.decode()))

    def on_message(pdu: Any) -> int:
        receipts.append(pdu.receipted_message_id.decode())
        return 0

    client.set_message_received_handler(on_message)
    client.connect()
    try:
        client.bind_transceiver(system_id=SYSTEM_ID, password=PASSWORD)
        parts, coding, esm_class = smpplib.gsm.make_parts(text)
        for part in parts:
            client.send_message(
                source_addr_ton=smpplib.consts.SMPP_TON_ALNUM,
                source_addr="Acme",
                dest_addr_ton=smpplib.consts.SMPP_TON_INTL,
                destination_addr="447700900123",
                short_message=part,
                data_coding=coding,
                esm_class=esm_class,
                registered_delivery=True,
            )
        while len(sent) < len(parts) or not receipts:
            try:
                client.read_once()
            except TimeoutError:
                break
        client.unbind()
    finally:
        client.disconnect()
    return sent, receipts


async def test_smpplib_sends_a_long_message_and_gets_its_receipt(
    tmp_path: Path, sqlite_url: str
) -> None:
    text = "Ünïcödé " * 25  # UCS-2: 200 characters, three parts of 67
    async with running(tmp_path, sqlite_url) as rig:
        sent, receipts = await asyncio.to_thread(_esme_session, rig.port, text)
        assert len(sent) == 3
        assert len(set(sent)) == 1
        assert receipts == [sent[0]]
        gateway = rig.runtime.services.smpp_gateway  # type: ignore[union-attr]
        assert gateway is not None
        record = await gateway.find(account_id=rig.account.id, message_id=int(sent[0]))
        assert record is not None
        assert record.text == text
        assert record.parts == 3
