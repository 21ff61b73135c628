"""The event bus's read of a batch of changed messages: records, accounts and apps at once.

The bus (services/events.py) builds each message's event from its record, its account and its
app, read in the transaction of the change. As four statements (the dialects of the changed
messages, the records of those some subscriber reads, their accounts, their apps) they were
four round trips per recorded batch on PostgreSQL, each a statement prepared anew for every
batch size it met (an ``IN`` list), and on SQLite four Core constructions and compilations
(issue 15: a quarter of the worker's CPU in ``simgate run`` under HTTP sends, py-spy). Here
it is one statement: the records of the ids (of the dialects asked for) joined with their
account and, if any, their app, the ids and dialects as one parameter each
(store/listed.py), its text made once per shape. A message whose account is gone comes
back without it, as before (the bus drops its event). An account or app shared by the
messages is built once, from its first row.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.domain.accounts import Account, App, AppKind
from simgate.domain.pushes import Interest
from simgate.domain.records import MessageRecord
from simgate.store.accounts import ACCOUNT_COLUMNS, account_of_row
from simgate.store.listed import in_list, listed
from simgate.store.messages import RECORD_COLUMN_NAMES, record_of
from simgate.store.tables import apps as apps_table
from simgate.store.tables import kv

__all__ = ["MessageOwners", "docs", "messages_of_owners", "messages_with_owners", "push_settings"]

# App fields in its constructor's order, as columns of its table (an account's: store/
# accounts.py ACCOUNT_COLUMNS).
_APP_COLUMNS = ("id", "app_id", "account_id", "kind", "name", "push_json")
_RECORD_END = len(RECORD_COLUMN_NAMES)
_ACCOUNT_END = _RECORD_END + len(ACCOUNT_COLUMNS)


@dataclass(slots=True)
class MessageOwners:
    """What :func:`messages_with_owners` read: records, and accounts and apps by id."""

    records: dict[int, MessageRecord] = field(default_factory=dict)
    accounts: dict[int, Account] = field(default_factory=dict)
    apps: dict[int, App] = field(default_factory=dict)


@functools.cache
def _sql(dialect: str, by_dialect: bool) -> str:
    """Parameters: the ids, then (``by_dialect``) the dialects."""
    columns = [
        *(f"m.{c}" for c in RECORD_COLUMN_NAMES),
        *(f"a.{c}" for c in ACCOUNT_COLUMNS),
        *(f"p.{c}" for c in _APP_COLUMNS),
    ]
    where = in_list(dialect, "m.id", 1, "bigint")
    if by_dialect:
        where += " AND " + in_list(dialect, "m.dialect", 2, "text")
    return (
        f"SELECT {', '.join(columns)} FROM messages AS m "
        "LEFT JOIN accounts AS a ON a.id = m.account_id "
        "LEFT JOIN apps AS p ON p.id = m.app_id "
        f"WHERE {where}"
    )


@functools.cache
def _owners_sql(dialect: str) -> str:
    """Parameters: the ids; the dialects read whole; ``dialect:account_id`` and
    ``dialect:app_pk`` keys of the owners whose messages are read."""
    base = _sql(dialect, False)
    return (
        f"{base} AND ({in_list(dialect, 'm.dialect', 2, 'text')}"
        f" OR {in_list(dialect, _key('m.account_id'), 3, 'text')}"
        f" OR {in_list(dialect, _key('m.app_id'), 4, 'text')})"
    )


def _key(column: str) -> str:
    return f"(m.dialect || ':' || {column})"


async def messages_of_owners(
    conn: AsyncConnection, ids: Sequence[int], interest: Interest
) -> MessageOwners:
    """As :func:`messages_with_owners`, of the messages ``interest`` names: of a dialect it
    names whole, or of an account or app it names for their dialect. Nothing named: no
    statement at all (the worker's batches when no push is configured, issue 15)."""
    whole = sorted(d for d, o in interest.items() if o.every)
    by_account = [f"{d}:{a}" for d, o in interest.items() if not o.every for a in o.accounts]
    by_app = [f"{d}:{a}" for d, o in interest.items() if not o.every for a in o.apps]
    if not by_account and not by_app:
        return await messages_with_owners(conn, ids, whole)
    out = MessageOwners()
    if not ids:
        return out
    name = conn.dialect.name
    params = tuple(listed(name, v) for v in (ids, whole, sorted(by_account), sorted(by_app)))
    return _owners_of(await conn.exec_driver_sql(_owners_sql(name), params), out)


async def messages_with_owners(
    conn: AsyncConnection, ids: Sequence[int], dialects: Collection[str] | None
) -> MessageOwners:
    """The records of those of ``ids`` that exist (and are of ``dialects``; None: any), with
    the accounts and apps they name, in one statement."""
    out = MessageOwners()
    if not ids or (dialects is not None and not dialects):
        return out
    name = conn.dialect.name
    params: tuple[Any, ...] = (listed(name, ids),)
    if dialects is not None:
        params += (listed(name, sorted(dialects)),)
    return _owners_of(await conn.exec_driver_sql(_sql(name, dialects is not None), params), out)


def _owners_of(rows: Iterable[Any], out: MessageOwners) -> MessageOwners:
    records, accounts, apps = out.records, out.accounts, out.apps
    for row in rows:
        record = record_of(row[:_RECORD_END])
        records[record.id] = record
        account_id = row[_RECORD_END]
        if account_id is not None and account_id not in accounts:
            accounts[account_id] = account_of_row(row[_RECORD_END:_ACCOUNT_END])
        app_pk = row[_ACCOUNT_END]
        if app_pk is not None and app_pk not in apps:
            apps[app_pk] = _app(row[_ACCOUNT_END:])
    return out


async def push_settings(
    conn: AsyncConnection, prefixes: Collection[str]
) -> tuple[dict[str, dict[str, Any]], list[App]]:
    """Every stored document whose key starts with one of ``prefixes``, and every app with
    push settings: what the push formats decide their interest from (services/
    push_interest.py reads them at most once a poll interval, so through Core)."""
    found: dict[str, dict[str, Any]] = {}
    if prefixes:
        keys = or_(*(kv.c.key.startswith(p, autoescape=True) for p in sorted(prefixes)))
        for key, value in await conn.execute(select(kv.c.key, kv.c.value).where(keys)):
            found[key] = json.loads(value)
    columns = [apps_table.c[c] for c in _APP_COLUMNS]
    rows = await conn.execute(select(*columns).where(apps_table.c.push_json.not_in(["", "{}"])))
    return found, [_app(row) for row in rows]


def _app(values: Sequence[Any]) -> App:
    """As store/accounts.py ``_app``, from a row of :data:`_APP_COLUMNS`."""
    id_, app_id, account_id, kind, name, push_json = values
    return App(
        id=id_,
        app_id=app_id,
        account_id=account_id,
        kind=AppKind(kind),
        name=name,
        push=json.loads(push_json or "{}"),
    )


@functools.cache
def _docs_sql(dialect: str) -> str:
    keys = in_list(dialect, "key", 1, "text")
    return f"SELECT key, value FROM kv WHERE {keys}"


async def docs(conn: AsyncConnection, keys: Collection[str]) -> dict[str, dict[str, Any] | None]:
    """The stored documents of ``keys`` (None where there is none), as store/accounts.py
    ``get_doc`` reads each, in one statement for all of them: the push outbox reads the
    documents its formats ask for in every recorded batch (issue 15)."""
    out: dict[str, dict[str, Any] | None] = dict.fromkeys(keys)
    if not out:
        return out
    name = conn.dialect.name
    rows: Iterable[Any] = await conn.exec_driver_sql(_docs_sql(name), (listed(name, sorted(out)),))
    for key, value in rows:
        out[key] = json.loads(value)
    return out
