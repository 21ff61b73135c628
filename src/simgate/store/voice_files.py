"""Uploaded voice files and their decoded audio (fileUpload / fileQuery, spec §1.13)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.domain.calls import Audio, VoiceFile
from simgate.errors import AlreadyExists
from simgate.store.voice_tables import voice_audio, voice_files

__all__ = ["VoiceFileRepo"]

_FILE_COLUMNS = tuple(voice_files.c[name] for name in VoiceFile.__slots__)


def _file_of(row: Any) -> VoiceFile:
    return VoiceFile(*row)


class VoiceFileRepo:
    # ---- audio (content-addressed) ---------------------------------------------------
    async def put_audio(
        self, conn: AsyncConnection, *, sha256: str, pcm: bytes, duration_ms: int, now_ms: int
    ) -> int:
        """The id of the audio with this digest, storing it first if it is new.

        INSERT .. ON CONFLICT DO NOTHING, then SELECT: two uploads of the same audio at once
        (two processes on PostgreSQL) end with one row and the same id for both.
        """
        upsert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        await conn.execute(
            upsert(voice_audio)
            .values(sha256=sha256, pcm=pcm, duration_ms=duration_ms, created_ms=now_ms)
            .on_conflict_do_nothing(index_elements=[voice_audio.c.sha256])
        )
        found = await conn.execute(select(voice_audio.c.id).where(voice_audio.c.sha256 == sha256))
        return int(found.scalar_one())

    async def get_audio(self, conn: AsyncConnection, audio_id: int) -> Audio | None:
        pcm = (
            await conn.execute(select(voice_audio.c.pcm).where(voice_audio.c.id == audio_id))
        ).scalar()
        return Audio(bytes(pcm)) if pcm is not None else None

    # ---- files -----------------------------------------------------------------------
    async def add_file(
        self,
        conn: AsyncConnection,
        *,
        account_id: int,
        file_id: str,
        file_name: str,
        format: str,
        audio_id: int,
        duration_ms: int,
        size_bytes: int,
        now_ms: int,
    ) -> VoiceFile:
        """Store a file; :class:`AlreadyExists` when the account has a file of that name.

        The insert runs in a SAVEPOINT: the unique violation is caught without spoiling the
        group-commit transaction other callers' jobs share.
        """
        try:
            async with conn.begin_nested():
                row = (
                    await conn.execute(
                        insert(voice_files)
                        .values(
                            account_id=account_id,
                            file_id=file_id,
                            file_name=file_name,
                            format=format,
                            audio_id=audio_id,
                            duration_ms=duration_ms,
                            size_bytes=size_bytes,
                            created_ms=now_ms,
                        )
                        .returning(*_FILE_COLUMNS)
                    )
                ).one()
        except IntegrityError:
            if await self.has_name(conn, account_id=account_id, file_name=file_name):
                raise AlreadyExists(f"a file named {file_name!r} exists already") from None
            raise  # a fileId collision: a bug in the id scheme, not the client's fault
        return _file_of(row)

    async def has_name(self, conn: AsyncConnection, *, account_id: int, file_name: str) -> bool:
        found = await conn.execute(
            select(voice_files.c.id).where(
                voice_files.c.account_id == account_id, voice_files.c.file_name == file_name
            )
        )
        return found.first() is not None

    async def get_file(
        self, conn: AsyncConnection, *, account_id: int, file_id: str
    ) -> VoiceFile | None:
        row = (
            await conn.execute(
                select(*_FILE_COLUMNS).where(
                    voice_files.c.account_id == account_id, voice_files.c.file_id == file_id
                )
            )
        ).first()
        return _file_of(row) if row is not None else None

    async def count_files(self, conn: AsyncConnection, *, account_id: int) -> int:
        q = select(func.count()).select_from(voice_files)
        return int(
            (await conn.execute(q.where(voice_files.c.account_id == account_id))).scalar_one()
        )

    async def page_files(
        self, conn: AsyncConnection, *, account_id: int, offset: int, limit: int
    ) -> list[VoiceFile]:
        """The account's files, newest first."""
        rows = await conn.execute(
            select(*_FILE_COLUMNS)
            .where(voice_files.c.account_id == account_id)
            .order_by(voice_files.c.id.desc())
            .offset(max(0, offset))
            .limit(max(0, limit))
        )
        return [_file_of(r) for r in rows]
