"""Migrations: an empty database upgrades to exactly ``schema.metadata``; again is a no-op."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Connection, insert, inspect, select, text
from sqlalchemy.ext.asyncio import create_async_engine

from simgate.domain.accounts import GatewayRole, LedgerKind
from simgate.domain.messages import State
from simgate.secretbox import SecretBox
from simgate.store import Database, Store, push_tables, schema, tables
from simgate.store import migrate as migrations
from simgate.store.dialects.itnio import ReplayRepo

from ..conftest import PG_ADMIN_URL
from ..services.support import T0, message_row


@pytest.fixture
async def empty_url(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    """A database with nothing in it (a fresh file, or a fresh PostgreSQL database)."""
    if backend.startswith("sqlite"):
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
        return
    name = f"simgate_mig_{uuid.uuid4().hex[:10]}"
    admin = create_async_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


def _schema(conn: Connection) -> dict[str, dict[str, list[str]]]:
    insp = inspect(conn)
    out: dict[str, dict[str, list[str]]] = {}
    for name in insp.get_table_names():
        out[name] = {
            "columns": sorted(c["name"] for c in insp.get_columns(name)),
            "indexes": sorted(i["name"] or "" for i in insp.get_indexes(name)),
            "pk": sorted(insp.get_pk_constraint(name)["constrained_columns"]),
        }
    return out


def _latest_without(config: Config, revision: str) -> list[str]:
    """The newest revisions that neither are ``revision`` nor come after it: the heads, but
    a head that merges ``revision``'s branch (0014_push_owners) gives way to its parents."""
    script = ScriptDirectory.from_config(config)
    below = {
        r.revision: {a.revision for a in script.iterate_revisions(r.revision, "base")}
        for r in script.walk_revisions()
    }
    allowed = {r for r, ancestors in below.items() if revision not in ancestors}
    return sorted(r for r in allowed if not any(r in below[o] and o != r for o in allowed))


async def upgrade_all_but(db: Database, revision: str, *, then: str | None = None) -> None:
    """Every head but ``revision`` (areas branch off a common base), then ``then`` if given:
    the database as a release before ``revision`` left it, for testing what it migrates."""

    def run(connection: Connection) -> None:
        config = migrations._config(connection)
        for target in _latest_without(config, revision):
            command.upgrade(config, target)
        if then is not None:
            command.upgrade(config, then)

    async with db.engine.connect() as conn:
        await conn.run_sync(run)
        await conn.commit()


async def test_upgrade_creates_metadata_and_is_idempotent(empty_url: str) -> None:
    db = Database(empty_url)
    await db.open()
    try:
        assert await migrations.current_revision(db) == "(empty)"
        await migrations.upgrade(db)
        revision = await migrations.current_revision(db)
        assert revision == ",".join(migrations.head_revisions())
        async with db.engine.connect() as conn:
            first = await conn.run_sync(_schema)
        await migrations.upgrade(db)  # a second run changes nothing
        assert await migrations.current_revision(db) == revision
        async with db.engine.connect() as conn:
            second = await conn.run_sync(_schema)
    finally:
        await db.close()
    assert first == second
    assert set(first) - {"alembic_version"} == set(schema.metadata.tables)
    for name, table in schema.metadata.tables.items():
        assert first[name]["columns"] == sorted(c.name for c in table.columns), name
        assert first[name]["pk"] == sorted(c.name for c in table.primary_key.columns), name
        declared = sorted(i.name or "" for i in table.indexes)
        # Every index the metadata declares exists (unique constraints may add more).
        assert set(declared) <= set(first[name]["indexes"]), name


async def test_the_ledger_opens_accounts_from_before_it(empty_url: str) -> None:
    """0007 gives each existing account one opening entry that makes the rebuild (ledger less
    message charges less call debits) equal what the account holds."""
    db = Database(empty_url)
    await db.open()
    try:
        await upgrade_all_but(db, "0007_ledger", then="0006_voice")
        async with db.engine.begin() as conn:
            await conn.execute(
                insert(tables.accounts).values(
                    id=1, name="old", currency="USD", timezone="UTC", balance_micros=700,
                    gift_micros=50, credit_micros=0, locked=False, created_ms=5,
                )
            )  # fmt: skip
            await conn.execute(
                insert(tables.messages).values(
                    **message_row(at_ms=T0, seq=1, charge_micros=200, state=State.SENT)
                )
            )
        await migrations.upgrade(db)
        store = Store(db, SecretBox("test-master-key-0123456789"))
        async with db.read() as conn:
            (entry,) = await store.ledger.entries(conn, 1)
            rebuilt = await store.ledger.rebuilt_micros(conn, 1)
    finally:
        await db.close()
    assert (entry.kind, entry.amount_micros, entry.at_ms, entry.by) == (
        LedgerKind.OPENING, 950, 5, "migration",
    )  # fmt: skip
    assert (entry.balance_after_micros, entry.gift_after_micros) == (700, 50)
    assert rebuilt == 750


async def test_payload_parts_from_before_carry_the_one_smsc_id(empty_url: str) -> None:
    """0008: payload mode stored "id", "id#2".. per part; after it every part waiting for its
    receipt carries "id", so the one receipt settles the message (store/reports.py)."""
    db = Database(empty_url)
    await db.open()
    try:
        await upgrade_all_but(db, "0008_reassembly")
        refs = {1: ["ab", "ab#2", "ab#3"], 2: ["x1", "x2"], 3: ["cd", "cd#2"]}
        async with db.engine.begin() as conn:
            for seq, line_refs in refs.items():
                row = message_row(at_ms=T0, seq=seq, state=State.SENT)
                await conn.execute(insert(tables.messages).values(**row))
                await conn.execute(
                    insert(tables.message_parts),
                    [
                        {"message_id": row["id"], "seq": i, "line": "smsc", "line_ref": ref,
                         "status_code": 0 if seq == 3 else None}
                        for i, ref in enumerate(line_refs)
                    ],
                )  # fmt: skip
        await migrations.upgrade(db)
        async with db.engine.connect() as conn:
            rows = await conn.execute(
                select(tables.message_parts.c.line_ref).order_by(
                    tables.message_parts.c.message_id, tables.message_parts.c.seq
                )
            )
            got = [r for (r,) in rows]
    finally:
        await db.close()
    # Reported parts keep what they had (nothing waits on them); other messages are untouched.
    assert got == ["ab", "ab", "ab", "x1", "x2", "cd", "cd#2"]


async def test_gateway_users_from_before_roles_are_account_users(empty_url: str) -> None:
    """0010 (issue 14 item 1): an upgrade must not leave every old user able to control
    every port; operators are promoted with ``simgate users role``."""
    db = Database(empty_url)
    await db.open()
    try:
        await upgrade_all_but(db, "0010_tenants", then="0004_dinstar")
        async with db.engine.begin() as conn:
            await conn.execute(
                insert(tables.accounts).values(
                    id=1, name="old", currency="USD", timezone="UTC", balance_micros=0,
                    gift_micros=0, credit_micros=0, locked=False, created_ms=5,
                )
            )  # fmt: skip
            await conn.execute(
                text(
                    "INSERT INTO gateway_users (username, password_hash, digest_md5,"
                    " digest_sha256, account_id, created_ms) VALUES ('gw', 'h', 'm', 's', 1, 5)"
                )
            )
            await conn.execute(
                text(
                    "INSERT INTO dinstar_ussd (line, port, text, updated_ms)"
                    " VALUES ('sim', 0, 'x', 5)"
                )
            )
        await migrations.upgrade(db)
        store = Store(db, SecretBox("test-master-key-0123456789"))
        async with db.read() as conn:
            user = await store.accounts.get_user(conn, "gw")
            asker = (await conn.execute(text("SELECT account_id FROM dinstar_ussd"))).scalar_one()
    finally:
        await db.close()
    assert user is not None
    assert user.role is GatewayRole.ACCOUNT
    assert asker is None  # an old reply: operators only


async def test_a_database_from_a_newer_release_is_refused(empty_url: str) -> None:
    """The shortcut for a database already at the heads must not wave through one whose
    revision this release does not know (written by a newer simgate): alembic refuses it."""
    db = Database(empty_url)
    await db.open()
    try:
        await migrations.upgrade(db)
        async with db.engine.begin() as conn:
            # One row per head (areas branch off a common base): a newer release's single head.
            await conn.execute(text("DELETE FROM alembic_version"))
            await conn.execute(text("INSERT INTO alembic_version VALUES ('9999_future')"))
        with pytest.raises(CommandError, match="9999_future"):
            await migrations.upgrade(db)
    finally:
        await db.close()


async def test_pushes_from_before_get_the_account_and_subject_their_key_names(
    empty_url: str,
) -> None:
    """0014 (issue 19): a push keyed ``msg:<id>`` / ``inbound:<id>`` / ``call:<id>`` belongs to
    that record's account and lists on its page; a shared key stays the operator's."""
    db = Database(empty_url)
    await db.open()
    try:
        await upgrade_all_but(db, "0014_push_owners")
        message = message_row(at_ms=T0, seq=1, state=State.DELIVERED)  # account 1
        sms_id = message["id"] + 1
        async with db.engine.begin() as conn:
            await conn.execute(insert(tables.messages).values(**message))
            await conn.execute(
                insert(tables.inbound).values(
                    id=sms_id, account_id=2, line="sim", port=0, sender="1", recipient="2",
                    text="t", smsc="", imsi="", parts=1, received_ms=T0, read=False,
                )
            )  # fmt: skip
            keys = [f"msg:{message['id']}", f"msg:{sms_id}", f"inbound:{sms_id}",
                    "dinstar:sms-status", "msg:12ab", "msg:", "msg:" + "9" * 19, None]  # fmt: skip
            await conn.execute(
                insert(push_tables.pushes),
                [
                    {"id": i + 1, "uid": f"u{i}", "endpoint": "http://h:80", "order_key": key,
                     "method": "GET", "url": "http://h/", "state": 1, "next_attempt_ms": 0,
                     "created_ms": 0, "since_ms": 0, "updated_ms": 0}
                    for i, key in enumerate(keys)
                ],
            )  # fmt: skip
        await migrations.upgrade(db)
        async with db.engine.connect() as conn:
            p, s = push_tables.pushes.c, push_tables.push_subjects.c
            owners = list(await conn.execute(select(p.id, p.account_id).order_by(p.id)))
            subjects = set(await conn.execute(select(s.record_id, s.push_id)))
    finally:
        await db.close()
    assert [tuple(r) for r in owners] == [(1, 1), (2, 2), (3, 2), (4, None), (5, None),
                                          (6, None), (7, None), (8, None)]  # fmt: skip
    assert subjects == {(message["id"], 1), (sms_id, 2), (sms_id, 3)}


async def test_replay_records_from_before_0016_stay_and_new_keys_fit(empty_url: str) -> None:
    """0016 (issue 15): records keep their 64-digit keys (their replays are still answered
    until they expire: store/dialects/itnio.py ``legacy_until``), and a 77-character key,
    Timestamp then digest, now fits the column (PostgreSQL refused it before)."""
    db = Database(empty_url)
    await db.open()
    try:
        await upgrade_all_but(db, "0016_itnio_replay_key")
        old, new = "a" * 64, "1700000000000" + "b" * 64
        async with db.engine.begin() as conn:
            await conn.execute(
                insert(tables.itnio_replays).values(
                    fingerprint=old, expires_ms=900, response="old", created_ms=5
                )
            )
        await migrations.upgrade(db)
        async with db.engine.begin() as conn:
            await conn.execute(
                insert(tables.itnio_replays).values(
                    fingerprint=new, expires_ms=800, response="new", created_ms=6
                )
            )
            rows = await conn.execute(
                select(tables.itnio_replays.c.fingerprint, tables.itnio_replays.c.response)
            )
            got = sorted(tuple(r) for r in rows)
            until = await ReplayRepo().legacy_until(conn)
    finally:
        await db.close()
    assert got == [(new, "new"), (old, "old")]
    assert until == 900  # the old record's expiry, not the newer (earlier) one's
