"""Voice files and their audio (fileUpload / fileQuery, spec §1.13; store/voice_files.py)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.domain.calls import Audio, VoiceFile
from simgate.errors import AlreadyExists
from simgate.secretbox import SecretBox
from simgate.store import Database, Store
from simgate.store.voice_tables import voice_audio, voice_files

PCM = b"\x01\x00\xff\x7f" * 4000  # 8000 samples: 1 s at 8 kHz


def sha(pcm: bytes) -> str:
    return hashlib.sha256(pcm).hexdigest()


async def put(store: Store, pcm: bytes, now_ms: int = 1) -> int:
    job = functools.partial(
        store.voice_files.put_audio,
        sha256=sha(pcm),
        pcm=pcm,
        duration_ms=Audio(pcm).duration_ms,
        now_ms=now_ms,
    )
    return await store.db.write(job)


async def add(
    store: Store, account_id: int, name: str, file_id: str, audio_id: int, now_ms: int = 5
) -> VoiceFile:
    job = functools.partial(
        store.voice_files.add_file,
        account_id=account_id,
        file_id=file_id,
        file_name=name,
        format="wav",
        audio_id=audio_id,
        duration_ms=1000,
        size_bytes=16_044,
        now_ms=now_ms,
    )
    return await store.db.write(job)


async def audio_rows(store: Store) -> int:
    async with store.db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(voice_audio))).scalar_one())


async def test_the_same_audio_is_stored_once(store: Store) -> None:
    a = await put(store, PCM)
    assert await put(store, PCM, now_ms=99) == a
    b = await put(store, PCM + b"\x00\x00")
    assert b != a
    assert await audio_rows(store) == 2
    async with store.db.read() as conn:
        got = await store.voice_files.get_audio(conn, a)
        assert got == Audio(PCM)
        assert got is not None
        assert got.duration_ms == 1000
        assert await store.voice_files.get_audio(conn, 12345) is None


async def test_concurrent_puts_of_one_audio_from_two_processes(store: Store, backend: str) -> None:
    other_db = Database(backend)
    await other_db.open()
    try:
        other = Store(other_db, SecretBox("test-master-key-0123456789"))
        got = await asyncio.gather(*(put(s, PCM) for s in [store, other] * 4))
    finally:
        await other_db.close()
    assert len(set(got)) == 1
    assert await audio_rows(store) == 1


async def test_file_names_are_unique_per_account(store: Store) -> None:
    audio = await put(store, PCM)
    f = await add(store, 1, "hello.wav", "1202211220000aaa.wav", audio)
    assert f == VoiceFile(
        f.id, 1, "1202211220000aaa.wav", "hello.wav", "wav", audio, 1000, 16_044, 5
    )
    with pytest.raises(AlreadyExists, match=r"hello\.wav"):
        await add(store, 1, "hello.wav", "1202211220000bbb.wav", audio)
    other = await add(store, 2, "hello.wav", "1202211220000ccc.wav", audio)  # another account
    assert other.account_id == 2
    async with store.db.read() as conn:
        vf = store.voice_files
        assert await vf.get_file(conn, account_id=1, file_id=f.file_id) == f
        assert await vf.get_file(conn, account_id=2, file_id=f.file_id) is None  # not theirs
        assert await vf.get_file(conn, account_id=1, file_id="nope.wav") is None
        assert await vf.has_name(conn, account_id=1, file_name="hello.wav")
        assert not await vf.has_name(conn, account_id=3, file_name="hello.wav")
        assert await vf.count_files(conn, account_id=1) == 1


async def test_a_taken_name_leaves_the_shared_transaction_usable(store: Store) -> None:
    """Group commit runs many callers' jobs in one transaction: one duplicate must not
    abort it (PostgreSQL would refuse every later statement without the SAVEPOINT)."""
    audio = await put(store, PCM)
    await add(store, 1, "hello.wav", "1202211220000aaa.wav", audio)

    async def job(conn: AsyncConnection) -> str:
        with contextlib.suppress(AlreadyExists):
            await store.voice_files.add_file(
                conn,
                account_id=1,
                file_id="1202211220000bbb.wav",
                file_name="hello.wav",
                format="wav",
                audio_id=audio,
                duration_ms=1,
                size_bytes=1,
                now_ms=1,
            )
        made = await store.voice_files.add_file(
            conn,
            account_id=1,
            file_id="1202211220000ddd.wav",
            file_name="other.wav",
            format="wav",
            audio_id=audio,
            duration_ms=1,
            size_bytes=1,
            now_ms=1,
        )
        return made.file_name

    assert await store.db.write(job) == "other.wav"
    async with store.db.read() as conn:
        names = await conn.execute(select(voice_files.c.file_name).order_by(voice_files.c.id))
        assert [n for (n,) in names] == ["hello.wav", "other.wav"]


async def test_files_page_newest_first(store: Store) -> None:
    audio = await put(store, PCM)
    for i in range(7):
        await add(store, 1, f"f{i}.wav", f"1202211220000{i:03d}.wav", audio, now_ms=i)
    await add(store, 2, "theirs.wav", "1202211220000zzz.wav", audio)
    async with store.db.read() as conn:
        vf = store.voice_files
        assert await vf.count_files(conn, account_id=1) == 7
        first = await vf.page_files(conn, account_id=1, offset=0, limit=3)
        assert [f.file_name for f in first] == ["f6.wav", "f5.wav", "f4.wav"]
        last = await vf.page_files(conn, account_id=1, offset=6, limit=3)
        assert [f.file_name for f in last] == ["f0.wav"]
        assert await vf.page_files(conn, account_id=1, offset=7, limit=3) == []
        assert await vf.page_files(conn, account_id=9, offset=0, limit=3) == []
