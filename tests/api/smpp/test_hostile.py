"""Hostile input (issue 18): malformed PDUs, lying lengths, a 64 KB PDU, a bind flood, idle
connections, 1,000 connections left open. The server keeps serving others and frees what
they held."""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path

from simgate.codecs.smpp import CommandId, CommandStatus, SubmitSm
from tests.support.smpp_server import Esme, Rig, read_pdu, running


async def _still_serves(rig: Rig) -> None:
    esme = await Esme.connect(rig.port)
    assert (await esme.bind("trx")).command_status == 0
    answer = await esme.request(SubmitSm(destination_addr="447700900123", short_message=b"ok"))
    assert answer.command_status == CommandStatus.ESME_ROK
    await esme.close()


async def _until_connections(rig: Rig, most: int) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + 10
    while rig.listener.connections > most:
        assert loop.time() < end, f"{rig.listener.connections} connections still open"
        await asyncio.sleep(0.02)


async def _closed_by_server(reader: asyncio.StreamReader, within: float = 10.0) -> bool:
    try:
        while await asyncio.wait_for(reader.read(65536), within):
            pass
    except (ConnectionError, TimeoutError):
        return False
    return True


async def test_malformed_pdus_get_generic_nack_and_the_connection_stays(
    tmp_path: Path, sqlite_url: str
) -> None:
    async with running(tmp_path, sqlite_url, worker=False) as rig:
        esme = await Esme.connect(rig.port)
        await esme.bind("tx")
        # A submit_sm whose body stops in the middle of a C-octet string.
        body = b"\x00\x01\x01" + b"1234"
        header = struct.pack(">IIII", 16 + len(body), CommandId.SUBMIT_SM, 0, 77)
        raw_reader, raw_writer = await asyncio.open_connection("127.0.0.1", rig.port)
        raw_writer.write(header + body)
        nack = await read_pdu(raw_reader)
        assert nack.command_id is CommandId.GENERIC_NACK
        assert nack.sequence_number == 77
        raw_writer.write(struct.pack(">IIII", 16, 0x0000_0999, 0, 78))  # unknown command
        nack = await read_pdu(raw_reader)
        assert nack.command_status == CommandStatus.ESME_RINVCMDID
        raw_writer.close()
        ok = await esme.request(SubmitSm(destination_addr="447700900123", short_message=b"x"))
        assert ok.command_status == 0
        await esme.close()


async def test_lying_lengths_and_a_64k_pdu_close_only_that_connection(
    tmp_path: Path, sqlite_url: str
) -> None:
    async with running(tmp_path, sqlite_url, worker=False, smpp={"max_pdu_bytes": 4096}) as rig:
        for length in (8, 64 * 1024, 0xFFFF_FFFF):
            reader, writer = await asyncio.open_connection("127.0.0.1", rig.port)
            writer.write(struct.pack(">IIII", length, CommandId.BIND_TRANSMITTER, 0, 1))
            writer.write(b"\x00" * 1024)
            nack = await read_pdu(reader)
            assert nack.command_status == CommandStatus.ESME_RINVCMDLEN
            assert await _closed_by_server(reader)
            writer.close()
        await _still_serves(rig)
        await _until_connections(rig, 0)


async def test_idle_connections_are_closed_and_a_flood_of_them_does_not_stop_others(
    tmp_path: Path, sqlite_url: str
) -> None:
    smpp = {"session_init_seconds": 1.0, "max_connections": 1100}
    async with running(tmp_path, sqlite_url, worker=False, smpp=smpp) as rig:
        idle = [await asyncio.open_connection("127.0.0.1", rig.port) for _ in range(1000)]
        await _still_serves(rig)
        # Nobody bound: each is closed at the session-init time and its slot freed.
        closed = await asyncio.gather(*(_closed_by_server(r) for r, _ in idle))
        assert all(closed)
        for _, writer in idle:
            writer.close()
        await _until_connections(rig, 0)


async def test_connections_over_the_cap_are_refused_at_once(
    tmp_path: Path, sqlite_url: str
) -> None:
    async with running(tmp_path, sqlite_url, worker=False, smpp={"max_connections": 3}) as rig:
        held = [await Esme.connect(rig.port) for _ in range(3)]
        for esme in held:
            await esme.bind("tx")
        reader, writer = await asyncio.open_connection("127.0.0.1", rig.port)
        assert await _closed_by_server(reader)  # over the cap
        writer.close()
        await held[0].close()
        await _until_connections(rig, 2)
        await _still_serves(rig)  # the freed slot serves a new client
        for esme in held[1:]:
            await esme.close()


async def test_a_bind_flood_with_wrong_passwords_does_not_lock_out_the_right_one(
    tmp_path: Path, sqlite_url: str
) -> None:
    async with running(tmp_path, sqlite_url, worker=False) as rig:
        flood = [await Esme.connect(rig.port) for _ in range(30)]
        wrong = [asyncio.ensure_future(e.bind(password="guess", within=60.0)) for e in flood]
        await _still_serves(rig)
        answers = await asyncio.gather(*wrong)
        assert {a.command_status for a in answers} == {CommandStatus.ESME_RINVPASWD}
        for esme in flood:
            await esme.close()
