"""pushVoiceReport of the itniotech dialect (spec §1.16, §7).

The push engine calls :meth:`VoicePushPlanner.plan` inside the transaction that finished the
calls (``CallDone`` events); the planner reads the records through that connection. The
URL is the voice app's ``push["voice_url"]``. §7: the single-object form by default, one POST
per call; an app with ``push["voice_batch"] == "true"`` (``simgate apps update --voice-batch``)
gets the batch form instead, ``{"array": [...]}`` with every call of the app that finished in
this transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.api.dialects.itnio.voice_render import push_item
from simgate.domain.accounts import App, AppKind
from simgate.domain.calls import CallRecord, CallState
from simgate.domain.events import CallDone, DomainEvent
from simgate.push.base import PlannedPush, PushRequest
from simgate.store import Store

HEADERS = {"Content-Type": "application/json;charset=UTF-8"}
KIND = "itnio.voice"


def batched(app: App) -> bool:
    return app.push.get("voice_batch") == "true"


def _planned(app: App, body: dict[str, Any], first_call: int) -> PlannedPush:
    return PlannedPush(
        request=PushRequest("POST", app.push["voice_url"], dict(HEADERS), orjson.dumps(body)),
        # A call finishes once; the key keeps a re-planned result behind an earlier one.
        order_key=f"call:{first_call}",
        # Opt-in Standard Webhooks signature, as for the SMS pushes.
        signing_secret=app.push.get("signing_secret") or None,
        kind=KIND,
    )


def voice_push(r: CallRecord, app: App) -> PlannedPush:
    """The single form: one JSON object per call."""
    return _planned(app, push_item(r), r.id)


def voice_batch_push(records: Sequence[CallRecord], app: App) -> PlannedPush:
    """The batch form: ``{"array": [...]}`` (spec §1.16, pushVoiceReportBatch)."""
    assert records, "a batch push needs at least one call"
    ordered = sorted(records, key=lambda r: r.id)
    return _planned(app, {"array": [push_item(r) for r in ordered]}, ordered[0].id)


def plan_for(records: Sequence[CallRecord], apps: dict[int, App | None]) -> list[PlannedPush]:
    """Pure: the pushes owed for finished calls, given their apps (by primary key)."""
    per_app: dict[int, list[CallRecord]] = {}
    for r in sorted(records, key=lambda r: r.id):
        app = apps.get(r.app_id)
        if r.state is not CallState.DONE or app is None or app.kind is not AppKind.VOICE:
            continue
        if app.push.get("voice_url"):
            per_app.setdefault(app.id, []).append(r)
    out: list[PlannedPush] = []
    for app_pk, calls in per_app.items():
        app = apps[app_pk]
        assert app is not None
        if batched(app):
            out.append(voice_batch_push(calls, app))
        else:
            out.extend(voice_push(r, app) for r in calls)
    return out


class VoicePushPlanner:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def plan(self, conn: AsyncConnection, events: Sequence[DomainEvent]) -> list[PlannedPush]:
        wanted = sorted({e.call_id for e in events if isinstance(e, CallDone)})
        if not wanted:
            return []
        records = await self._store.calls.get(conn, wanted)
        apps: dict[int, App | None] = {}
        for r in records:
            if r.app_id not in apps:
                apps[r.app_id] = await self._store.accounts.get_app_by_pk(conn, r.app_id)
        return plan_for(records, apps)
