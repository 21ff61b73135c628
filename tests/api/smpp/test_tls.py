"""The TLS listener (``[smpp_server] tls_port``): the same server behind TLS."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

from simgate.cli.tls import ensure_certificate
from simgate.codecs.smpp import BindTransceiver, CommandStatus, SubmitSm, decode, encode
from tests.support.smpp_server import PASSWORD, SYSTEM_ID, read_pdu, running


async def test_bind_and_submit_over_tls(tmp_path: Path, sqlite_url: str) -> None:
    cert, key = ensure_certificate(tmp_path / "certs", "127.0.0.1")
    smpp = {"tls_port": 0, "tls_cert": str(cert), "tls_key": str(key)}
    async with running(tmp_path, sqlite_url, worker=False, smpp=smpp) as rig:
        port = rig.listener.tls_port
        assert port is not None
        assert port != rig.port
        client = ssl.create_default_context()
        client.check_hostname = False
        client.verify_mode = ssl.CERT_NONE
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client)
        writer.write(
            encode(BindTransceiver(sequence_number=1, system_id=SYSTEM_ID, password=PASSWORD))
        )
        assert (await read_pdu(reader)).command_status == CommandStatus.ESME_ROK
        writer.write(
            encode(SubmitSm(sequence_number=2, destination_addr="447700900123", short_message=b"x"))
        )
        answer = await read_pdu(reader)
        assert answer.command_status == CommandStatus.ESME_ROK
        assert decode(encode(answer)).sequence_number == 2
        writer.close()
